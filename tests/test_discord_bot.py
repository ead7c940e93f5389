"""The Discord bot (issue 10 point 1): prefix commands through dpytest, slash commands and buttons
through an Interaction double; every decision read back from the store.

The bot runs over a real service (fake forge on a real bare repository, render validation off), with
a cost ceiling of $5 so a new team waits for a human.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_automation.service import CrewService

from .discord_fakes import FakeInteraction, Guild, discord_guild
from .helpers import service_for

D3 = '!team request 8 tasks need interactive d3.js charts --skill d3.js --skill "data visualization"'


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CrewService]:
    with service_for(tmp_path, monthly_cost_ceiling_usd=5, discord_approver_roles="reviewers, leads") as built:
        yield built


def stored(service: CrewService, request_id: str) -> Any:
    """The request as the store has it now (not as the bot said)."""
    return service.store.require_request(request_id)


def embed_of(payload: dict[str, Any]) -> dict[str, Any]:
    (embed,) = payload["embeds"]
    return embed


def fields_of(payload: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed_of(payload).get("fields", [])}


def request_id_in(payload: dict[str, Any]) -> str:
    return embed_of(payload)["title"].split(":")[0]


def run(scenario: Any) -> Any:
    return asyncio.run(scenario)


async def _submit(g: Guild, member: Any) -> str:
    await g.say(D3, member)
    replies = g.replies()
    return request_id_in(replies[-1])


def test_a_request_is_answered_with_buttons_then_edited_with_the_outcome(service: CrewService) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with discord_guild(service) as g:
            await g.say(D3, g.alice)
            return g.replies()

    replies = run(scenario())
    first, last = replies[0], replies[-1]
    assert first["op"] == "send" and last["op"] == "edit"
    assert fields_of(first)["State"] == "received"
    buttons = [c["custom_id"] for row in first["components"] for c in row["components"]]
    rid = request_id_in(first)
    assert buttons == [f"devops-crew:approve:{rid}", f"devops-crew:reject:{rid}"]
    fields = fields_of(last)
    assert fields["State"] == "awaiting_approval" and fields["Team"] != "—"
    assert fields["Cost"].startswith("$") and fields["Risk"] in {"low", "medium", "high"}
    assert "cost-ceiling" in fields["Decision"]
    request = stored(service, rid)
    assert request.state.value == "awaiting_approval"
    assert request.requester is not None and request.requester.key == f"discord:{request.requester.id}"
    assert request.gap.required_skills == ["d3.js", "data visualization"]
    assert all(p["allowed_mentions"] == {"parse": []} for p in replies)


def test_four_eyes_the_requester_cannot_approve_and_another_reviewer_can(service: CrewService) -> None:
    async def scenario() -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        async with discord_guild(service) as g:
            rid = await _submit(g, g.alice)  # alice holds the approver role, and asked for it
            await g.say("!team pending", g.carol)
            await g.say(f"!team status {rid}", g.carol)
            pending, status = g.replies()
            assert embed_of(pending)["fields"][0]["name"] == f"{rid}: awaiting_approval"
            assert fields_of(status)["State"] == "awaiting_approval" and status["components"]  # buttons again
            await g.say(f"!team approve {rid}", g.alice)
            by_alice = g.replies()
            await g.say(f"!team approve {rid} worth it", g.carol)  # no approver role
            by_carol = g.replies()
            await g.say(f"!team approve {rid} worth it", g.bob)
            return rid, by_alice, by_carol, g.replies()

    rid, by_alice, by_carol, by_bob = run(scenario())
    assert "four eyes" in by_alice[-1]["content"] and not by_alice[-1].get("embeds")
    assert "approver role" in by_carol[-1]["content"]
    request = stored(service, rid)
    assert fields_of(by_bob[-1])["State"] == "published"
    assert fields_of(by_bob[-1])["Pull request"] == f"#{request.pr_number}"  # the fake forge's URL is no link
    assert request.state.value == "published"
    assert [(a.by.channel, a.kind.value, a.reason) for a in request.approvals] == [("discord", "cost", "worth it")]
    assert request.approvals[0].by.id != request.requester.id


def test_override_and_reject_by_prefix_command_need_a_reason_and_land_in_the_store(tmp_path: Path) -> None:
    with service_for(tmp_path, rate_limit_per_day=0, discord_approver_roles="Reviewers") as service:

        async def scenario() -> tuple[str, str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
            async with discord_guild(service) as g:
                limited = await _submit(g, g.alice)
                await g.say("!team request Nobody can build kotlin apps --skill kotlin", g.carol)
                other = request_id_in(g.replies()[-1])
                await g.say(f"!team override {limited}", g.bob)
                no_reason = g.replies()
                await g.say(f"!team override {limited} launch day", g.bob)
                overridden = g.replies()
                await g.say(f"!team reject {other} we have an app team for this", g.bob)
                return limited, other, no_reason, overridden, g.replies()

        limited, other, no_reason, overridden, rejected = run(scenario())
        assert "needs a request id and a reason" in no_reason[-1]["content"] and "Usage" in no_reason[-1]["content"]
        assert fields_of(overridden[-1])["State"] == "published"
        request = stored(service, limited)
        assert request.state.value == "published"
        assert [(a.kind.value, a.reason) for a in request.approvals] == [("override", "launch day")]
        assert fields_of(rejected[-1])["State"] == "rejected" and not rejected[-1].get("components")
        assert stored(service, other).state.value == "rejected"
        assert "we have an app team" in (stored(service, other).error or "")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("!team", "Usage"),
        ("!team frobnicate", "Usage"),
        ("!team request", "say what nobody can do yet"),
        ('!team request charts "unbalanced', "unbalanced quotes"),
        ("!team request charts --skill", "--skill needs a value"),
        ("!team approve", "which request?"),
        ("!team status ../../etc/passwd", "not a request id"),
        ("!team status req-000000000000", "no request"),
        ("!team reject req-000000000000", "needs a request id and a reason"),
    ],
)
def test_usage_errors_are_one_short_message_never_a_trace(service: CrewService, command: str, expected: str) -> None:
    async def scenario() -> list[dict[str, Any]]:
        async with discord_guild(service) as g:
            await g.say(command, g.bob)
            return g.replies()

    (reply,) = run(scenario())
    assert expected.lower() in reply["content"].lower()
    assert "Traceback" not in reply["content"] and len(reply["content"]) < 600
    assert service.store.list_requests(limit=10) == []


def _slash(bot: Any, name: str) -> Any:
    group = bot.tree.get_command("team")
    assert group is not None and group.guild_only
    return group.get_command(name)


def _buttons(view: Any) -> dict[str, Any]:
    return {item.item.label: item for item in view.children}


def test_slash_request_then_buttons_four_eyes_then_approve(service: CrewService) -> None:
    from devops_automation.discord_bot.views import ApproveButton

    async def scenario() -> tuple[str, FakeInteraction, FakeInteraction, FakeInteraction, FakeInteraction]:
        async with discord_guild(service) as g:
            asked = FakeInteraction(g.bot, g.alice)
            await _slash(g.bot, "request").callback(asked, description="8 tasks need d3.js charts", skills="d3.js, svg")
            first_view = asked.edits[0]["view"]
            rid = _buttons(first_view)["Approve"].request_id
            own = FakeInteraction(g.bot, g.alice)
            await _buttons(first_view)["Approve"].callback(own)
            waiting = stored(service, rid).state.value
            outsider = FakeInteraction(g.bot, g.carol)
            await ApproveButton(rid).callback(outsider)
            other = FakeInteraction(g.bot, g.bob)
            await ApproveButton(rid).callback(other)
            assert waiting == "awaiting_approval"
            return rid, asked, own, outsider, other

    rid, asked, own, outsider, other = run(scenario())
    assert asked.response.calls == [("defer", {"thinking": True})]
    assert [e["embed"].fields[1].value for e in asked.edits] == ["received", "awaiting_approval"]
    assert all(e["allowed_mentions"].everyone is False for e in asked.edits)
    assert own.response.calls == [("defer", {})] and own.edits == []
    assert "four eyes" in own.followup.sent[0]["content"] and own.followup.sent[0]["ephemeral"] is True
    assert "approver role" in outsider.last_text() and outsider.followup.sent[0]["ephemeral"] is True
    (edit,) = other.edits
    assert edit["embed"].fields[1].value == "published" and edit["view"] is None  # buttons gone
    request = stored(service, rid)
    assert request.state.value == "published" and request.gap.required_skills == ["d3.js", "svg"]
    assert [(a.by.id, a.by.channel) for a in request.approvals] == [(str(other.user.id), "discord")]


def test_reject_button_opens_a_form_and_its_reason_is_stored(service: CrewService) -> None:
    from devops_automation.discord_bot.views import RejectButton, RejectModal

    async def scenario() -> tuple[str, FakeInteraction, FakeInteraction, FakeInteraction]:
        async with discord_guild(service) as g:
            rid = await _submit(g, g.alice)
            outsider_click = FakeInteraction(g.bot, g.carol)
            await RejectButton(rid).callback(outsider_click)
            outsider_form = outsider_click.response.modal
            assert isinstance(outsider_form, RejectModal)
            outsider_form.reason._value = "I do not like it"
            outsider = FakeInteraction(g.bot, g.carol)
            await outsider_form.on_submit(outsider)
            click = FakeInteraction(g.bot, g.bob)
            await RejectButton(rid).callback(click)
            form = click.response.modal
            form.reason._value = "analytics has a charts team @everyone"
            submitted = FakeInteraction(g.bot, g.bob)
            await form.on_submit(submitted)
            return rid, outsider, click, submitted

    rid, outsider, click, submitted = run(scenario())
    assert "approver role" in outsider.last_text()
    assert click.response.calls == [("send_modal", {})]
    (edit,) = submitted.edits
    assert edit["embed"].fields[1].value == "rejected" and edit["view"] is None
    request = stored(service, rid)
    assert request.state.value == "rejected" and "analytics has a charts team" in (request.error or "")


def test_slash_status_pending_override_reject_and_errors(tmp_path: Path) -> None:
    with service_for(tmp_path, rate_limit_per_day=0, discord_approver_roles="Reviewers") as service:

        async def scenario() -> dict[str, FakeInteraction]:
            async with discord_guild(service) as g:
                seen: dict[str, FakeInteraction] = {}

                async def call(name: str, member: Any, **kwargs: Any) -> None:
                    seen[name] = FakeInteraction(g.bot, member)
                    await _slash(g.bot, name.split(":")[0]).callback(seen[name], **kwargs)

                await call("request", g.alice, description="Nobody can build kotlin apps", skills="kotlin")
                rid = seen["request"].edits[0]["view"].children[0].request_id
                await call("pending", g.carol)
                await call("status:one", g.carol, request_id=rid)
                await call("status:bad", g.carol, request_id="no such thing")
                await call("override:own", g.alice, request_id=rid, reason="I want it")
                await call("override", g.bob, request_id=rid, reason="launch day")
                await call("status", g.carol)
                await call("reject", g.bob, request_id=rid, reason="too late")
                seen["rid"] = rid  # type: ignore[assignment]
                return seen

        seen = run(scenario())
        rid = seen.pop("rid")
        pending = seen["pending"].edits[-1]["embed"]
        assert pending.title == "Waiting for a human" and pending.fields[0].name == f"{rid}: refused"
        assert seen["status:one"].edits[-1]["embed"].title == f"{rid}: refused"
        assert "not a request id" in seen["status:bad"].last_text()
        assert "four eyes" in seen["override:own"].last_text()
        assert seen["override"].edits[-1]["embed"].fields[1].value == "published"
        assert seen["status"].edits[-1]["embed"].fields[0].name == f"{rid}: published"
        assert "only waiting, refused or failed requests can be rejected" in seen["reject"].last_text()
        request = stored(service, rid)
        assert request.state.value == "published"  # a published request is not rejected from Discord
        assert [(a.kind.value, a.reason) for a in request.approvals] == [("override", "launch day")]


def test_buttons_survive_a_restart(service: CrewService) -> None:
    """A new bot over the same store rebuilds a button from its custom_id alone and it approves."""
    from devops_automation.discord_bot.views import ApproveButton

    async def first_run() -> str:
        async with discord_guild(service) as g:
            return await _submit(g, g.alice)

    rid = run(first_run())

    async def after_restart() -> FakeInteraction:
        async with discord_guild(service) as g:
            store = g.bot._connection._view_store
            custom_id = f"devops-crew:approve:{rid}"
            (pattern, item_class), *_ = [(p, c) for p, c in store._dynamic_items.items() if p.fullmatch(custom_id)]
            clicked = FakeInteraction(g.bot, g.bob)
            item = await item_class.from_custom_id(clicked, None, pattern.fullmatch(custom_id))
            assert isinstance(item, ApproveButton) and item.request_id == rid
            await item.callback(clicked)
            return clicked

    clicked = run(after_restart())
    assert clicked.edits[-1]["embed"].fields[1].value == "published"
    assert stored(service, rid).state.value == "published"


def test_serve_runs_the_bot_on_its_loop_with_the_servers_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With DISCORD_TOKEN, ``serve``'s lifespan starts the bot (Discord's gateway replaced: it is the
    external boundary), and a command through it runs on the server's pool and lands in its store."""
    import httpx
    from asgi_lifespan import LifespanManager

    from devops_automation.discord_bot import DiscordBot
    from devops_automation.server.asgi import create_app

    from .discord_fakes import FakeMember, FakeRole, RecordingResponder
    from .helpers import fast_settings

    tokens: list[str] = []

    async def gateway(self: DiscordBot, token: str, *, reconnect: bool = True) -> None:
        tokens.append(token)
        await self.setup_hook()

    monkeypatch.setattr(DiscordBot, "start", gateway)
    settings = fast_settings(
        tmp_path, discord_token="bot-token-0123456789", discord_sync_commands=False, discord_approver_roles="ops"
    )

    async def scenario() -> tuple[Any, RecordingResponder, RecordingResponder, int]:
        app = create_app(settings)
        async with LifespanManager(app):
            rt = app.state.runtime
            bot = rt.discord
            assert isinstance(bot, DiscordBot) and bot.actions.service is rt.service
            await asyncio.sleep(0)  # the connect task runs
            asked = RecordingResponder()
            await bot.actions.request(FakeMember(7, "Ann"), "Nobody can build kotlin apps", ["kotlin"], asked)
            status = RecordingResponder()
            await bot.actions.status(FakeMember(8, "Ben", roles=[FakeRole("OPS")]), None, status)
            rt.draining.set()  # a server shutting down takes no new request from Discord either
            late = RecordingResponder()
            await bot.actions.request(FakeMember(7, "Ann"), "Nobody can build swift apps", ["swift"], late)
            assert late.refused and "shutting down" in late.refused[0] and not late.shown
            assert len(rt.service.store.list_requests(limit=10)) == 1  # nothing recorded
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                health = (await client.get("/healthz")).status_code
            return rt, asked, status, health

    rt, asked, status, health = run(scenario())
    assert tokens == ["bot-token-0123456789"] and health == 200
    assert [e.fields[1].value for e in asked.shown] == ["received", "published"]
    rid = asked.shown[-1].title.split(":")[0]
    assert status.shown[-1].fields[0].name == f"{rid}: published"
    feed = [(e.kind, e.request_id, e.summary["state"]) for e in rt.hub.recent if e.kind == "state"]
    assert feed == [("state", rid, "received"), ("state", rid, "published")]  # the dashboard's feed saw it
    assert rt.service.store.require_request(rid).requester.key == "discord:7"


def test_serve_keeps_serving_when_discord_refuses_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import discord
    import httpx
    from asgi_lifespan import LifespanManager

    from devops_automation.discord_bot import DiscordBot
    from devops_automation.server.asgi import create_app

    from .helpers import fast_settings

    async def refused(self: DiscordBot, token: str) -> None:
        raise discord.LoginFailure("Improper token has been passed.")

    monkeypatch.setattr(DiscordBot, "login", refused)
    settings = fast_settings(tmp_path, discord_token="not-a-valid-token-000", discord_sync_commands=False)

    async def scenario() -> int:
        app = create_app(settings)
        async with LifespanManager(app):
            await asyncio.sleep(0.05)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                return (await client.get("/healthz")).status_code

    assert run(scenario()) == 200
    assert any("DISCORD_TOKEN was refused" in r.getMessage() for r in caplog.records)
    assert "not-a-valid-token-000" not in caplog.text


def test_roles_come_from_guild_roles_and_direct_messages_are_refused(tmp_path: Path) -> None:
    from devops_automation.authz import Channel, Role
    from devops_automation.discord_bot.identity import UsageError, actor_for

    from .discord_fakes import FakeGuild, FakeMember, FakeRole
    from .helpers import fast_settings

    settings = fast_settings(tmp_path, discord_approver_roles="Reviewers", discord_requester_roles="crew, ops")
    reviewer = actor_for(FakeMember(42, "Rita", roles=[FakeRole("reviewers")]), settings)
    assert reviewer.key == "discord:42" and reviewer.channel is Channel.discord and reviewer.display_name == "Rita"
    assert reviewer.roles == {Role.viewer, Role.approver}  # not in a requester role
    crew = actor_for(FakeMember(43, "Cy\u202eevil", roles=[FakeRole("Crew")]), settings)
    assert crew.roles == {Role.viewer, Role.requester} and crew.display_name == "Cyevil"
    with pytest.raises(UsageError, match="direct messages"):
        actor_for(FakeMember(44, "Dee", guild=None), settings)
    pinned = fast_settings(tmp_path, discord_guild_id=99)
    with pytest.raises(UsageError, match="this server"):
        actor_for(FakeMember(45, "Eve", guild=FakeGuild(1), roles=[FakeRole("Reviewers")]), pinned)
    assert Role.requester in actor_for(FakeMember(45, "Eve", guild=FakeGuild(99)), pinned).roles


def test_untrusted_text_cannot_ping_or_format(service: CrewService) -> None:
    """A gap's words and a display name reach embeds escaped, and nothing is sent that may mention."""
    from devops_automation.discord_bot.embeds import request_embed, safe

    async def scenario() -> list[dict[str, Any]]:
        async with discord_guild(service) as g:
            await g.say(f"!team request @everyone **urgent** <@{g.bob.id}> needs kotlin apps --skill kotlin", g.carol)
            rid = request_id_in(g.replies()[-1])
            await g.say(f"!team reject {rid} @here no", g.bob)
            return g.replies()

    replies = run(scenario())
    assert all(p["allowed_mentions"] == {"parse": []} for p in replies)
    assert "@\u200bhere no" in json.dumps(replies[-1], ensure_ascii=False)  # the reason is shown ...
    assert not any("@everyone" in json.dumps(p) or "@here" in json.dumps(p) for p in replies)  # ... escaped
    assert safe("@everyone **x** <@123456789012345678>") == "@\u200beveryone \\*\\*x\\*\\* <@\u200b123456789012345678>"
    summary = {
        "id": "req-1",
        "state": "failed",
        "error": "@everyone [click](https://evil.example)",
        "requester": {"id": "1", "display_name": "@here"},
        "pull_request": {"number": 3, "url": "https://x/pr/3 (y)"},
    }
    embed = request_embed(summary)
    values = {f.name: f.value for f in embed.fields}
    assert values["Error"] == "@\u200beveryone \\[click](https://evil.example)"  # no masked link
    assert values["Requested by"] == "@\u200bhere" and values["Pull request"] == "#3"  # no odd link
    linked = request_embed({**summary, "pull_request": {"number": 3, "url": "https://forge/pulls/3"}})
    assert {f.name: f.value for f in linked.fields}["Pull request"] == "[#3](https://forge/pulls/3)"


def test_engine_work_never_blocks_the_bots_loop(service: CrewService) -> None:
    """While a request's run holds a thread, the bot still answers another command on its loop."""
    import threading

    from .discord_fakes import FakeMember, RecordingResponder

    release = threading.Event()
    advance = service.advance

    def slow_advance(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(30), "the status command was never answered while the run was going"
        return advance(*args, **kwargs)

    service.advance = slow_advance  # type: ignore[method-assign]

    async def scenario() -> tuple[RecordingResponder, RecordingResponder]:
        async with discord_guild(service) as g:
            asked, status = RecordingResponder(), RecordingResponder()
            running = asyncio.create_task(
                g.bot.actions.request(FakeMember(7, "Ann"), "Nobody can build kotlin apps", ["kotlin"], asked)
            )
            while not asked.shown:
                await asyncio.sleep(0.01)
            await asyncio.wait_for(g.bot.actions.status(FakeMember(8, "Ben"), None, status), timeout=10)
            release.set()
            await asyncio.wait_for(running, timeout=60)
            return asked, status

    asked, status = run(scenario())
    assert status.shown[0].fields[0].name.endswith(": received")  # answered while the run waited
    assert [e.fields[1].value for e in asked.shown] == ["received", "awaiting_approval"]


def test_post_notice_goes_to_the_configured_channel_with_buttons_for_waiting_requests(tmp_path: Path) -> None:
    from devops_automation.errors import ConfigurationError

    with service_for(tmp_path, monthly_cost_ceiling_usd=5) as service:

        async def scenario() -> tuple[list[dict[str, Any]], int, str]:
            async with discord_guild(service) as g:
                rid = await _submit(g, g.alice)
                g.bot.settings = g.bot.settings.model_copy(update={"discord_channel_id": g.channel.id})
                view = await asyncio.to_thread(service.list, _viewer(), limit=1)
                message_id = await g.bot.post_notice(
                    "A request waits for a human", "cost above the ceiling @everyone", summary=view[0]
                )
                with_url = await g.bot.post_notice("Pull request opened", url="https://forge/pulls/1")
                return g.replies(), message_id + with_url, rid

        replies, ids, rid = run(scenario())
        notice, opened = replies
        assert ids > 0 and notice["allowed_mentions"] == {"parse": []}
        assert embed_of(notice)["title"] == "A request waits for a human"
        assert embed_of(notice)["description"] == "cost above the ceiling @\u200beveryone"
        assert fields_of(notice)["State"] == "awaiting_approval"
        buttons = [c["custom_id"] for row in notice["components"] for c in row["components"]]
        assert buttons == [f"devops-crew:approve:{rid}", f"devops-crew:reject:{rid}"]
        assert embed_of(opened)["url"] == "https://forge/pulls/1" and not opened.get("components")

        async def unconfigured() -> None:
            async with discord_guild(service) as g:
                with pytest.raises(ConfigurationError, match="CHANNEL_ID"):
                    await g.bot.post_notice("x")

        run(unconfigured())


def _viewer() -> Any:
    from devops_automation.authz import Actor, Channel, Role

    return Actor(id="test", channel=Channel.cli, roles=frozenset({Role.viewer}))


def test_the_discord_command_needs_a_token_and_says_so_in_one_line(tmp_path: Path) -> None:
    import contextlib
    import io

    from devops_automation.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["discord"])
    assert code == 2 and err.getvalue().strip().count("\n") == 0
    assert "DISCORD_TOKEN is not set" in err.getvalue()


def test_a_refused_token_is_one_line_not_a_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io

    import discord

    from devops_automation.cli import main
    from devops_automation.discord_bot import DiscordBot

    async def refused(self: DiscordBot, token: str) -> None:  # Discord's login endpoint: the boundary
        raise discord.LoginFailure("Improper token has been passed.")

    monkeypatch.setattr(DiscordBot, "login", refused)
    monkeypatch.setenv("DISCORD_TOKEN", "a-token-discord-refuses")
    monkeypatch.setenv("DEVOPS_CREW_FORGE", "fake")
    monkeypatch.setenv("DEVOPS_CREW_VALIDATE_RENDER", "false")
    monkeypatch.setenv("DEVOPS_CREW_HOME", str(tmp_path / "home"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["discord"])
    assert code == 2, err.getvalue()
    assert err.getvalue().strip() == "devops-crew: error: DISCORD_TOKEN was refused by Discord"


def test_post_notice_from_another_thread_and_a_failing_discord_is_unavailable(tmp_path: Path) -> None:
    import discord

    from devops_automation.errors import Unavailable

    with service_for(tmp_path) as service:

        async def scenario() -> tuple[int, str, list[dict[str, Any]]]:
            async with discord_guild(service) as g:
                g.bot.settings = g.bot.settings.model_copy(update={"discord_channel_id": g.channel.id})
                posted = await asyncio.to_thread(g.bot.post_notice_threadsafe, "Merged", "team kotlin_apps")
                sent = g.replies()

                class Refused:
                    status, reason, text = 503, "Service Unavailable", "Service Unavailable"

                async def down(*_args: Any, **_kwargs: Any) -> Any:  # Discord's API answers 503
                    raise discord.HTTPException(Refused(), "Service Unavailable")  # type: ignore[arg-type]

                g.bot.http.send_message = down  # type: ignore[method-assign]
                try:
                    await g.bot.post_notice("Merged")
                except Unavailable as exc:
                    return posted, str(exc), sent
                raise AssertionError("a failing Discord must raise Unavailable")

        posted, error, sent = run(scenario())
        assert posted > 0 and embed_of(sent[0])["title"] == "Merged"
        assert error.startswith("discord did not take the notice: 503")


def test_post_notice_threadsafe_refuses_when_the_bot_is_not_running(tmp_path: Path) -> None:
    from devops_automation.discord_bot import DiscordBot
    from devops_automation.errors import Unavailable

    with service_for(tmp_path, discord_channel_id=5) as service:
        bot = DiscordBot(service.settings, service, sync_commands=False)
        with pytest.raises(Unavailable, match="not running"):
            bot.post_notice_threadsafe("x")


def test_a_click_reaches_the_button_through_discord_pys_own_dispatch(
    service: CrewService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw INTERACTION_CREATE for the Approve button of a sent message (as Discord's gateway delivers
    it) goes through discord.py's view store to ApproveButton, as the clicking member; the interaction's
    answers go to Discord's webhook endpoints, replaced here (the external boundary)."""
    from datetime import UTC, datetime

    import discord
    from discord.webhook.async_ import AsyncWebhookAdapter

    answers: list[tuple[str, Any]] = []

    async def scenario() -> tuple[str, str]:
        async with discord_guild(service) as g:
            await g.say(D3, g.alice)
            first = g.replies()[0]
            rid = request_id_in(first)
            message = {
                "id": str(discord.utils.time_snowflake(datetime.now(UTC))),
                "channel_id": str(g.channel.id),
                "author": {"id": str(g.bot.user.id), "username": "bot", "discriminator": "0", "avatar": None},
                "content": "",
                "timestamp": datetime.now(UTC).isoformat(),
                "edited_timestamp": None,
                "tts": False,
                "mention_everyone": False,
                "mentions": [],
                "mention_roles": [],
                "attachments": [],
                "embeds": first["embeds"],
                "pinned": False,
                "type": 0,
                "components": first["components"],
                "flags": 0,
            }

            async def respond(self: Any, *_a: Any, params: Any, **_k: Any) -> dict[str, Any]:
                answers.append(("respond", params.payload))
                return {"interaction": {"id": "1", "type": 3}}

            async def edit(self: Any, *_a: Any, payload: Any = None, **_k: Any) -> dict[str, Any]:
                answers.append(("edit", payload))
                return {**message, **{k: v for k, v in (payload or {}).items() if k in ("embeds", "components")}}

            async def followup(self: Any, *_a: Any, payload: Any = None, **_k: Any) -> dict[str, Any]:
                answers.append(("followup", payload))
                return message

            monkeypatch.setattr(AsyncWebhookAdapter, "create_interaction_response", respond)
            monkeypatch.setattr(AsyncWebhookAdapter, "edit_original_interaction_response", edit)
            monkeypatch.setattr(AsyncWebhookAdapter, "execute_webhook", followup)

            def click(member: discord.Member) -> None:
                g.bot._connection.parse_interaction_create(
                    {
                        "id": str(discord.utils.time_snowflake(datetime.now(UTC))),
                        "application_id": str(g.bot.user.id),
                        "type": 3,
                        "token": "interaction-token",
                        "version": 1,
                        "guild_id": str(g.channel.guild.id),
                        "channel_id": str(g.channel.id),
                        "member": {
                            "user": {
                                "id": str(member.id),
                                "username": member.name,
                                "discriminator": "0",
                                "avatar": None,
                            },
                            "roles": [str(r.id) for r in member.roles if r.id != g.channel.guild.id],
                            "joined_at": datetime.now(UTC).isoformat(),
                            "deaf": False,
                            "mute": False,
                            "flags": 0,
                        },
                        "message": message,
                        "data": {"custom_id": f"devops-crew:approve:{rid}", "component_type": 2},
                        "app_permissions": "0",
                        "locale": "en-US",
                        "entitlements": [],
                        "attachment_size_limit": 8 * 1024 * 1024,
                    }
                )

            async def settled(count: int) -> None:
                for _ in range(600):
                    if len(answers) >= count:
                        return
                    await asyncio.sleep(0.05)
                raise AssertionError(f"no answer: {answers}")

            click(g.alice)  # the requester
            await settled(2)
            after_own_click = stored(service, rid).state.value
            click(g.bob)
            await settled(4)
            return rid, after_own_click

    rid, after_own_click = run(scenario())
    assert after_own_click == "awaiting_approval"
    kinds = [kind for kind, _ in answers]
    assert kinds == ["respond", "followup", "respond", "edit"]
    assert "four eyes" in answers[1][1]["content"] and answers[1][1]["flags"] == 64  # ephemeral
    assert answers[3][1]["embeds"][0]["fields"][1]["value"] == "published"
    assert stored(service, rid).state.value == "published"


def test_notifications_go_out_through_the_bot_inside_serve(tmp_path: Path) -> None:
    """The notification layer's Discord-bot channel (server.schedule.BotChannel) posts each event once
    through the running bot to its configured channel; a bot with no channel gives up (recorded)."""
    from devops_automation.authz import Actor, Channel, Role
    from devops_automation.server.schedule import BotChannel

    from .helpers import NEW_TEAM_GAP

    admin = Actor(id="ops", channel=Channel.web, roles=frozenset({Role.admin}))
    with service_for(tmp_path) as service:

        async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            async with discord_guild(service) as g:
                g.bot.settings = g.bot.settings.model_copy(update={"discord_channel_id": g.channel.id})
                await asyncio.to_thread(service.add_notification_channel, BotChannel.name, BotChannel(g.bot))
                view = await asyncio.to_thread(service.submit, admin, NEW_TEAM_GAP)
                assert view["state"] == "published"
                await asyncio.to_thread(service.deliver_notifications, admin)  # nothing more to send
                return g.replies(), await asyncio.to_thread(service.feed, admin)

        sent, feed = run(scenario())
        [posted] = [p for p in sent if p["op"] == "send"]
        embed = embed_of(posted)
        assert embed["title"].startswith("Pull request opened: ")
        assert "State: published" in embed["description"]
        assert "url" not in embed  # the fake forge's fake:// link is no web link: shown as text only
        assert feed[0]["deliveries"]["discord-bot"]["status"] == "sent"
