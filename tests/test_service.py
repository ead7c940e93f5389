"""The service layer: one API, an actor on every call, authorisation in one place (four eyes).

Runs on the in-memory fake forge over a real bare repository, with rendering but without the slow
validators: the whole file takes seconds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_automation.authz import Action, Actor, Channel, Role, parse_roles, permission_allowed
from devops_automation.errors import ActionRefused, InvalidInput, NotFound, PermissionDenied
from devops_automation.service import CrewService

from .helpers import new_gap, service_for

ALICE = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
BOB = Actor(id="bob", channel=Channel.web, roles=frozenset({Role.approver, Role.viewer}))
ADMIN_ALICE = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.admin}))
ALICE_ON_DISCORD = Actor(id="alice", channel=Channel.discord, roles=frozenset({Role.admin}))
CRON = Actor(id="cronjob", channel=Channel.scheduler, roles=frozenset({Role.admin}))
VIEWER = Actor(id="vic", channel=Channel.web, roles=frozenset({Role.viewer}))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CrewService]:
    with service_for(tmp_path, monthly_cost_ceiling_usd=5) as built:
        yield built


def test_submit_returns_a_plain_view_and_stores_the_requester(service: CrewService) -> None:
    view = service.submit(ALICE, new_gap(1))
    json.dumps(view)  # plain data all the way down
    assert view["state"] == "awaiting_approval" and view["duplicate"] is False
    assert view["requester"] == {"id": "alice", "channel": "web", "display_name": ""}
    assert service.get(BOB, view["id"])["requester"]["id"] == "alice"


def test_the_requester_cannot_approve_on_any_path(service: CrewService) -> None:
    waiting = service.submit(ADMIN_ALICE, new_gap(1))  # alice even holds every role
    with pytest.raises(PermissionDenied, match="four eyes") as refused:
        service.approve(ADMIN_ALICE, waiting["id"])
    assert refused.value.rule == "four-eyes"
    with pytest.raises(PermissionDenied, match="four eyes"):
        service.override(ADMIN_ALICE, waiting["id"], reason="I really want it")
    assert service.get(BOB, waiting["id"])["state"] == "awaiting_approval"  # nothing changed
    assert service.get(BOB, waiting["id"])["approvals"] == []
    approved = service.approve(BOB, waiting["id"], reason="worth it")
    assert approved["state"] == "published"
    assert [(a["by"]["id"], a["kind"], a["reason"]) for a in approved["approvals"]] == [("bob", "cost", "worth it")]


def test_identity_is_per_channel(service: CrewService) -> None:
    """The same name on another channel is another actor: four eyes compares channel and id."""
    waiting = service.submit(ALICE, new_gap(1))
    assert service.approve(ALICE_ON_DISCORD, waiting["id"])["state"] == "published"


def test_an_override_needs_an_approver_a_reason_and_other_eyes(tmp_path: Path) -> None:
    with service_for(tmp_path, rate_limit_per_day=1) as service:
        assert service.submit(ALICE, new_gap(1))["state"] == "published"
        limited = service.submit(ALICE, new_gap(2))
        assert limited["state"] == "refused" and limited["decision"]["rule"] == "rate-limit"
        with pytest.raises(PermissionDenied, match="approver"):
            service.override(ALICE, limited["id"], reason="urgent")
        with pytest.raises(PermissionDenied, match="needs a reason"):
            service.override(BOB, limited["id"], reason="   ")
        with pytest.raises(ActionRefused, match="refused by rule rate-limit: lift it with --override and a --reason"):
            service.approve(BOB, limited["id"])  # a plain approval says which approval it needs
        done = service.override(BOB, limited["id"], reason="launch day")
        assert done["state"] == "published" and done["decision"]["risk_level"] == "high"
        assert done["approvals"][0]["kind"] == "override" and done["approvals"][0]["reason"] == "launch day"


def test_self_approval_for_single_person_setups_is_allowed_and_audited(tmp_path: Path) -> None:
    with service_for(tmp_path, monthly_cost_ceiling_usd=5, allow_self_approval=True) as service:
        waiting = service.submit(ADMIN_ALICE, new_gap(1))
        approved = service.approve(ADMIN_ALICE, waiting["id"])
        assert approved["state"] == "published" and approved["approvals"][0]["self_approval"] is True
        rows = service.audit(ADMIN_ALICE, request_id=waiting["id"])
        rows = [r for r in rows if r["action"] == "policy.human_approval"]
        assert rows[0]["detail"]["self_approval"] is True and rows[0]["detail"]["by"] == "alice"


def test_the_scheduler_may_only_resume_and_track(service: CrewService) -> None:
    waiting = service.submit(ALICE, new_gap(1))
    for call in (
        lambda: service.approve(CRON, waiting["id"]),
        lambda: service.override(CRON, waiting["id"], reason="r"),
        lambda: service.reject(CRON, waiting["id"]),
        lambda: service.submit(CRON, new_gap(2)),
        lambda: service.get(CRON, waiting["id"]),
        lambda: service.rollback(CRON, waiting["id"]),
        lambda: service.audit(CRON),
    ):
        with pytest.raises(PermissionDenied, match="scheduler may only"):
            call()
    assert service.resume_pending(CRON) == []  # allowed; a request waiting for a human is not pending
    assert service.track(CRON) == []


def test_roles_are_required(service: CrewService) -> None:
    waiting = service.submit(ALICE, new_gap(1))
    with pytest.raises(PermissionDenied, match="requester role"):
        service.submit(VIEWER, new_gap(2))
    with pytest.raises(PermissionDenied, match="approver role"):
        service.approve(VIEWER, waiting["id"])
    with pytest.raises(PermissionDenied, match="auditor role"):
        service.verify_audit(VIEWER)
    with pytest.raises(PermissionDenied, match="operator role"):
        service.resume(BOB, waiting["id"])


def test_a_requester_may_withdraw_but_not_reject_others(service: CrewService) -> None:
    mine = service.submit(ALICE, new_gap(1))
    other = service.submit(Actor(id="carol", channel=Channel.web, roles=frozenset({Role.requester})), new_gap(2))
    with pytest.raises(PermissionDenied):
        service.reject(ALICE, other["id"], reason="not mine")
    assert service.reject(ALICE, mine["id"], reason="changed my mind")["state"] == "rejected"


def test_a_rejection_needs_a_reason_on_every_path_but_a_withdrawal_or_a_triage(service: CrewService) -> None:
    """The dashboard and Discord asked for a reason; the CLI and the JSON API took none (the rule is here now)."""
    waiting = service.submit(ALICE, new_gap(1))
    for reason in ("", "   "):
        with pytest.raises(InvalidInput, match="a rejection needs a reason"):
            service.reject(BOB, waiting["id"], reason=reason)
    assert service.get(BOB, waiting["id"])["state"] == "awaiting_approval"  # nothing changed
    with pytest.raises(PermissionDenied):  # who may reject is decided before the reason is asked for
        service.reject(VIEWER, waiting["id"])
    assert service.reject(ALICE, waiting["id"])["state"] == "rejected"  # the requester withdraws: no reason
    triaged = service.submit(ALICE, new_gap(2))
    with pytest.raises(ActionRefused, match="no registered team 'no_such_team'"):  # the team, not the reason
        service.reject(BOB, triaged["id"], use_team="no_such_team")
    with pytest.raises(ActionRefused, match="only waiting, refused or failed"):  # its state, not a missing reason
        service.reject(BOB, waiting["id"])  # rejected already


def test_actor_and_channel_are_in_the_audit_rows(service: CrewService) -> None:
    waiting = service.submit(ALICE, new_gap(1))
    service.approve(BOB, waiting["id"])
    rows = service.audit(ADMIN_ALICE, request_id=waiting["id"], limit=1000)
    by_action = {r["action"]: r["detail"] for r in rows}
    assert by_action["request.received"]["actor"] == "alice" and by_action["request.received"]["channel"] == "web"
    assert by_action["policy.human_approval"]["actor"] == "bob"
    pushes = [r["detail"] for r in rows if r["action"] == "git.push"]
    assert pushes and all(d["actor"] == "bob" and d["channel"] == "web" and d["run"].startswith("run-") for d in pushes)
    runs = {r["detail"].get("run") for r in rows if r["detail"].get("actor") == "bob"}
    assert len(runs) == 1  # one run of the engine, one stable id in all its rows
    assert service.verify_audit(ADMIN_ALICE)["ok"]


def test_bad_input_and_unknown_requests_are_clear_errors(service: CrewService) -> None:
    with pytest.raises(InvalidInput, match="description"):
        service.submit(ALICE, {"description": ""})
    with pytest.raises(InvalidInput, match="proposed_name"):
        service.submit(ALICE, {"description": "x", "proposed_name": "../../.github"})
    with pytest.raises(NotFound):
        service.approve(BOB, "req-nope")
    with pytest.raises(InvalidInput, match="limit"):
        service.list(BOB, limit=10**20)
    published = service.submit(ALICE, new_gap(1))
    service.approve(BOB, published["id"])
    with pytest.raises(ActionRefused, match="not awaiting approval"):
        service.approve(BOB, published["id"])


def test_progress_goes_to_each_callers_own_callback(tmp_path: Path) -> None:
    """Two threads share one service; each sees only its own run's progress."""
    with service_for(tmp_path) as service:
        seen: dict[int, list] = {1: [], 2: []}
        threads = [
            threading.Thread(target=lambda n=n: service.submit(ALICE, new_gap(n), progress=seen[n].append))
            for n in (1, 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        ids = {n: {e.request_id for e in events} for n, events in seen.items()}
        assert all(len(v) == 1 for v in ids.values()) and ids[1] != ids[2]
        assert all(len({e.run_id for e in events}) == 1 for events in seen.values())
        assert any("rendering" in e.message for e in seen[1]) and any("rendering" in e.message for e in seen[2])


def test_permission_rules_as_a_table() -> None:
    assert parse_roles("all") == frozenset({Role.admin})
    with pytest.raises(ValueError, match="unknown role"):
        parse_roles("approver,god")
    assert permission_allowed(BOB, Action.approve).allowed
    assert not permission_allowed(ALICE, Action.approve).allowed
    assert permission_allowed(CRON, Action.track).allowed and not permission_allowed(CRON, Action.read).allowed
    with pytest.raises(ValueError, match="control"):
        Actor(id="bob\u202e", channel=Channel.web)


def test_a_request_without_a_recorded_requester_cannot_be_approved(service: CrewService) -> None:
    """Requests stored before requesters were recorded: four eyes cannot be checked, so nobody approves."""
    legacy = service.app.engine.submit(new_gap(1)).request  # the engine itself records no requester
    assert legacy.requester is None and legacy.state.value == "awaiting_approval"
    with pytest.raises(PermissionDenied, match="records no requester"):
        service.approve(BOB, legacy.id)
    assert service.reject(BOB, legacy.id, reason="resubmit")["state"] == "rejected"
