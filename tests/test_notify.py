"""Notifications: each event reaches each configured channel once (a real local webhook endpoint and a
real SMTP server), a failing channel is retried with backoff and never fails the request, and nothing is
lost or repeated across a crash and a resume."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from devops_automation.authz import Actor, Channel, Role
from devops_automation.models import CapabilityGap
from devops_automation.notify.channels import escape_markdown
from devops_automation.notify.outbox import Outbox
from devops_automation.service import CrewService

from .helpers import NEW_TEAM_GAP, fast_settings, service_for
from .notify_fixtures import free_port, smtp_server, webhook_server

ALICE = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
BOB = Actor(id="bob", channel=Channel.web, roles=frozenset({Role.approver, Role.operator, Role.viewer}))


def _kinds(posts: list[dict]) -> list[str]:
    return [p["embeds"][0]["title"].split(":")[0] for p in posts]


def _sends(service: CrewService) -> list[tuple[str, str]]:
    return [
        (r["phase"], r["target"])
        for r in service.audit(BOB.model_copy(update={"roles": frozenset({Role.admin})}), limit=500)
        if r["action"] == "notify.send"
    ]


def test_pr_opened_reaches_discord_and_email_with_link_and_checklist(tmp_path: Path) -> None:
    with webhook_server() as hook, smtp_server() as mail:
        service = service_for(
            tmp_path,
            notify_discord_webhook=hook.url,
            smtp_host="127.0.0.1",
            smtp_port=mail.port,
            smtp_starttls=False,
            notify_email_to="reviewers@example.org, lead@example.org",
        )
        view = service.submit(ALICE, NEW_TEAM_GAP)
        assert view["state"] == "published"
        url = view["pull_request"]["url"]

        assert len(hook.posts) == 1
        post = hook.posts[0]
        assert post["allowed_mentions"] == {"parse": []}
        embed = post["embeds"][0]
        assert embed["title"] == f"Pull request opened: {view['team']}"
        assert embed["url"] == url
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert fields["Team"] == escape_markdown(view["team"])
        assert fields["State"] == "published" and fields["Risk"] in {"low", "medium", "high"}
        assert fields["Cost"].startswith("$")

        assert len(mail.messages) == 1
        msg = mail.messages[0]
        assert sorted(mail.envelopes[0].rcpt_tos) == ["lead@example.org", "reviewers@example.org"]
        assert view["team"] in msg["Subject"]
        plain = msg.get_body(preferencelist=("plain",)).get_content()
        rich = msg.get_body(preferencelist=("html",)).get_content()
        for text in (plain, rich):
            assert url in text
            assert "Cost estimate and resources are acceptable" in text
        assert "Review checklist" in plain and "<h3>Review checklist</h3>" in rich

        sends = _sends(service)
        assert ("succeeded", "discord:pr_opened") in sends and ("succeeded", "email:pr_opened") in sends
        feed = service.feed(BOB, request_id=view["id"])
        assert [e["kind"] for e in feed] == ["pr_opened"]
        assert {c: d["status"] for c, d in feed[0]["deliveries"].items()} == {"discord": "sent", "email": "sent"}


def test_failing_channel_never_fails_the_request_and_is_retried_with_backoff(tmp_path: Path) -> None:
    with webhook_server() as hook:
        hook.status = 500
        service = service_for(tmp_path, notify_discord_webhook=hook.url, notify_backoff_seconds=0.3)
        view = service.submit(ALICE, NEW_TEAM_GAP)
        assert view["state"] == "published"  # the channel failed; the request did not
        [event] = service.feed(BOB, request_id=view["id"])
        delivery = event["deliveries"]["discord"]
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        assert "HTTP 500" in delivery["error"]
        assert ("failed", "discord:pr_opened") in _sends(service)

        hook.status = 200
        assert service.deliver_notifications(BOB)["sent"] == 0  # not due yet: the backoff holds it
        time.sleep(0.35)
        assert service.deliver_notifications(BOB)["sent"] == 1
        assert len(hook.posts) == 1
        assert service.deliver_notifications(BOB)["sent"] == 0  # sent once, never again
        assert len(hook.posts) == 1

        # the next event still goes out: the reviewer closes the PR, track sees it
        service.app.forge.close_pull_request(view["pull_request"]["number"])
        service.track(BOB)
        assert _kinds(hook.posts) == ["Pull request opened", "Pull request closed without merging"]


def test_rate_limited_channel_honours_retry_after_and_gives_up_after_max_attempts(tmp_path: Path) -> None:
    with webhook_server() as hook:
        hook.status, hook.body = 429, {"message": "You are being rate limited.", "retry_after": 30.0}
        service = service_for(tmp_path, notify_discord_webhook=hook.url, notify_backoff_seconds=0.01)
        view = service.submit(ALICE, NEW_TEAM_GAP)
        assert Outbox(service.store).due(datetime.now(UTC)) == []  # Discord asked for 30 s
        [event] = service.feed(BOB, request_id=view["id"])
        assert event["deliveries"]["discord"]["status"] == "pending"

    with webhook_server() as gone:
        gone.status = 404  # the webhook was deleted: retrying cannot help
        service = service_for(tmp_path / "b", notify_discord_webhook=gone.url)
        view = service.submit(ALICE, NEW_TEAM_GAP)
        [event] = service.feed(BOB, request_id=view["id"])
        assert event["deliveries"]["discord"]["status"] == "dead"
        actions = [r["action"] for r in service.audit(BOB.model_copy(update={"roles": frozenset({Role.admin})}))]
        assert "notify.gave_up" in actions


def test_sent_once_across_a_crash_and_a_resume(tmp_path: Path) -> None:
    """The event is written with the state change; a process that dies before sending leaves it for the
    next one, and repeated resumes add no events."""
    with webhook_server() as hook:
        settings = fast_settings(tmp_path, notify_discord_webhook=hook.url)
        crashed = CrewService(settings)
        app = crashed.app
        # a process that saved the state and died before it could send: drive the engine directly
        request = app.engine.submit(NEW_TEAM_GAP, requester=ALICE.ref()).request
        assert request.state.value == "published" and hook.posts == []
        crashed.close()

        after = CrewService(settings)
        assert after.deliver_notifications(BOB)["sent"] == 1
        after.resume(BOB, request.id)  # nothing left to do: no new event
        after.resume(BOB, request.id)
        assert after.deliver_notifications(BOB)["sent"] == 0
        assert len(hook.posts) == 1
        assert [e["kind"] for e in after.feed(BOB)] == ["pr_opened"]


def test_failure_then_resume_tells_each_once(tmp_path: Path) -> None:
    with webhook_server() as hook:
        service = service_for(tmp_path, notify_discord_webhook=hook.url)
        forge = service.app.forge
        forge.fail("ensure_pull_request", 1)  # type: ignore[attr-defined]
        view = service.submit(ALICE, NEW_TEAM_GAP)
        assert view["state"] == "failed"
        service.resume(BOB, view["id"])
        service.resume(BOB, view["id"])
        assert _kinds(hook.posts) == ["Request failed", "Pull request opened"]


def test_two_dispatchers_racing_send_each_event_once(tmp_path: Path) -> None:
    with webhook_server() as hook:
        settings = fast_settings(tmp_path, notify_discord_webhook=hook.url)
        first = CrewService(settings)
        for n in range(4):
            first.app.engine.submit(
                CapabilityGap(id=f"gap-r{n}", description=f"Team {n} needs erlang", required_skills=[f"erlang{n}"]),
                requester=ALICE.ref(),
            )
        second = CrewService(settings)
        threads = [threading.Thread(target=s.deliver_notifications, args=(BOB,)) for s in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = [p["embeds"][0]["footer"]["text"] for p in hook.posts]
        assert len(ids) == 4 and len(set(ids)) == 4


def test_hostile_gap_text_cannot_ping_or_format_in_discord_or_email(tmp_path: Path) -> None:
    hostile = CapabilityGap(
        id="gap-hostile",
        description="@everyone <@123> [click](http://evil.example) **now** <script>alert(1)</script> needs d3",
        required_skills=["d3.js"],
    )
    with webhook_server() as hook, smtp_server() as mail:
        service = service_for(
            tmp_path,
            notify_discord_webhook=hook.url,
            smtp_host="127.0.0.1",
            smtp_port=mail.port,
            smtp_starttls=False,
            notify_email_to="r@example.org",
        )
        service.submit(ALICE, hostile)
        description = hook.posts[0]["embeds"][0]["description"]
        assert "@everyone" not in description and "[click](" not in description and "**now**" not in description
        assert hook.posts[0]["allowed_mentions"] == {"parse": []}
        rich = mail.messages[0].get_body(preferencelist=("html",)).get_content()
        assert "<script>" not in rich and "&lt;script&gt;" in rich


def test_awaiting_approval_merge_and_rollback_are_events(tmp_path: Path) -> None:
    with webhook_server() as hook:
        service = service_for(tmp_path / "a", notify_discord_webhook=hook.url, monthly_cost_ceiling_usd=1)
        view = service.submit(ALICE, NEW_TEAM_GAP)
        assert view["state"] == "awaiting_approval"
        service.approve(BOB, view["id"])
        assert _kinds(hook.posts) == ["Waiting for a human decision", "Pull request opened"]
        assert "above the ceiling" in hook.posts[0]["embeds"][0]["fields"][-1]["value"]

    with webhook_server() as hook:
        service = service_for(tmp_path / "b", notify_discord_webhook=hook.url)
        view = service.submit(ALICE, NEW_TEAM_GAP)
        number = view["pull_request"]["number"]
        forge = service.app.forge
        forge.merge_pull_request(number, forge.get_pull_request(number).head_sha)
        service.track(BOB)
        service.rollback(BOB, view["id"])
        assert _kinds(hook.posts) == ["Pull request opened", "Pull request merged", "Rollback pull request opened"]
        rollback = service.get(BOB, view["id"])["rollback"]["pull_request"]
        assert hook.posts[-1]["embeds"][0]["url"] == rollback["url"]


def test_a_notification_sent_later_carries_the_forges_link_as_it_is_then(tmp_path: Path) -> None:
    """An event made while the embedded forge had one port, sent after it moved, links to the new port."""
    from .conftest import make_settings

    first, second = free_port(), free_port()
    common = {"forge": "local", "validate_render": False, "notify_backoff_seconds": 0.01}
    with webhook_server() as hook:
        hook.status = 500
        settings = make_settings(tmp_path / "home", forge_port=first, notify_discord_webhook=hook.url, **common)
        with CrewService(settings) as service:
            view = service.submit(ALICE, NEW_TEAM_GAP)
        assert view["pull_request"]["url"].startswith(f"http://127.0.0.1:{first}/")
        hook.status = 200
        later = make_settings(tmp_path / "home", forge_port=second, notify_discord_webhook=hook.url, **common)
        with CrewService(later) as service:
            time.sleep(0.05)
            assert service.deliver_notifications(BOB)["sent"] == 1
        [post] = hook.posts
        number = view["pull_request"]["number"]
        assert post["embeds"][0]["url"] == f"http://127.0.0.1:{second}/local/teams/pull/{number}"
