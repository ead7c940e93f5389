"""Human decisions are remembered: a team reviewers rejected, or whose pull request they closed, is not
proposed again by a reworded gap, until a human reconsiders (four eyes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devops_automation.authz import Actor, Channel, Role
from devops_automation.errors import PermissionDenied
from devops_automation.models import CapabilityGap, RequestState

from .helpers import NEW_TEAM_GAP, service_for
from .test_cli import run

ALICE = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.requester, Role.approver, Role.viewer}))
BOB = Actor(id="bob", channel=Channel.web, roles=frozenset({Role.approver, Role.operator, Role.viewer}))
REWORDED = CapabilityGap(
    id="gap-d3-again",
    description="Eight tasks need interactive d3.js charts for the quarterly dashboards",
    required_skills=["D3.js", "Data Visualization"],  # the same skills, cased differently
    requesting_team="analytics",
)


def test_a_closed_pull_request_is_not_reopened_by_a_reworded_gap(tmp_path: Path) -> None:
    service = service_for(tmp_path)
    first = service.submit(ALICE, NEW_TEAM_GAP)
    assert first["state"] == "published"
    service.app.forge.close_pull_request(first["pull_request"]["number"])
    service.track(BOB)
    assert service.get(BOB, first["id"])["state"] == "rejected"

    again = service.submit(ALICE, REWORDED)
    assert again["state"] == "refused"
    decision = again["decision"]
    assert decision["rule"] == "previously-rejected"
    assert first["id"] in decision["message"] and "closed without merging" in decision["message"]
    assert f"devops-crew approve {again['id']} --reconsider" in decision["remedy"]  # this request, not "ID"
    assert again["pull_request"] is None and again["branch"] is None
    forge = service.app.forge
    assert forge.find_pull_request(first["branch"]).number == first["pull_request"]["number"]  # one PR in all

    # unrelated gaps are untouched
    other = service.submit(ALICE, CapabilityGap(description="Need a team for kotlin apps", required_skills=["kotlin"]))
    assert other["state"] == "published"


def test_a_human_rejection_names_the_reviewer_and_reason_and_matches_by_name(tmp_path: Path) -> None:
    service = service_for(tmp_path, monthly_cost_ceiling_usd=1)
    first = service.submit(ALICE, NEW_TEAM_GAP)
    assert first["state"] == "awaiting_approval"
    service.reject(BOB, first["id"], reason="we chart with Grafana")
    # different skills, same proposed team name
    renamed = CapabilityGap(
        description="Charts again please",
        required_skills=["svg"],
        proposed_name=first["team"],
    )
    again = service.submit(ALICE, renamed)
    assert again["decision"]["rule"] == "previously-rejected"
    assert "web:bob" in again["decision"]["message"] and "we chart with Grafana" in again["decision"]["message"]


def test_reconsider_needs_another_human_and_then_proceeds(tmp_path: Path) -> None:
    service = service_for(tmp_path)
    first = service.submit(ALICE, NEW_TEAM_GAP)
    service.app.forge.close_pull_request(first["pull_request"]["number"])
    service.track(BOB)
    again = service.submit(ALICE, REWORDED)
    assert again["decision"]["rule"] == "previously-rejected"

    with pytest.raises(PermissionDenied, match="four eyes"):
        service.approve(ALICE, again["id"], reconsider=True)  # the requester cannot reopen it
    # an ordinary approval is not a reconsideration
    refusal = r"not awaiting approval \(refused by rule previously-rejected: reopen it with --reconsider"
    with pytest.raises(Exception, match=refusal):
        service.approve(BOB, again["id"])
    done = service.approve(BOB, again["id"], reconsider=True, reason="the charts are needed after all")
    assert done["state"] == "published"
    assert [a["kind"] for a in done["approvals"]] == ["reconsider"]
    rows = service.audit(Actor(id="root", channel=Channel.cli, roles=frozenset({Role.admin})), request_id=again["id"])
    assert any(r["action"] == "policy.reconsidered" for r in rows)
    # a reconsidered request cannot be reconsidered twice
    with pytest.raises(Exception, match="not refused as previously rejected"):
        service.approve(BOB, done["id"], reconsider=True)


def test_cli_approve_reconsider(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"DEVOPS_CREW_FORGE": "fake", "DEVOPS_CREW_VALIDATE_RENDER": "false", "DEVOPS_CREW_COST_CEILING_USD": "1"}
    # One person at the shell: requester and reviewer at once, so their rejection is a reviewer's (remembered),
    # not a withdrawal.
    env["DEVOPS_CREW_ALLOW_SELF_APPROVAL"] = "true"
    gap = ["request", "--json", "--skill", "d3.js", "8 tasks need interactive d3.js charts"]
    first = json.loads(run(home, *gap, **env).stdout)["request"]
    assert first["state"] == "awaiting_approval"
    run(home, "reject", first["id"], "--reason", "not now", **env)
    again = run(home, "request", "--json", "--skill", "D3.js", "Eight tasks need interactive d3.js charts", **env)
    refused = json.loads(again.stdout)["request"]
    assert refused["decision"]["rule"] == "previously-rejected"
    reopened = run(home, "approve", refused["id"], "--reconsider", "--json", **env)
    assert json.loads(reopened.stdout)["request"]["state"] == "awaiting_approval"  # on to the cost ceiling again


def test_a_withdrawal_is_not_remembered_as_a_rejection(tmp_path: Path) -> None:
    """The requester taking their own request back is a change of mind, not a reviewer's verdict: the same
    skills filed again are not refused as previously-rejected (a reviewer's no still is)."""
    carol = Actor(id="carol", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
    service = service_for(tmp_path, monthly_cost_ceiling_usd=1)
    first = service.submit(carol, NEW_TEAM_GAP)
    assert first["state"] == "awaiting_approval"
    withdrawn = service.reject(carol, first["id"])  # no reason needed to take one's own request back
    assert withdrawn["state"] == "rejected" and withdrawn["error"] == "withdrawn by carol, its requester"
    root = Actor(id="root", channel=Channel.cli, roles=frozenset({Role.admin}))
    rows = service.audit(root, request_id=first["id"], limit=100)
    assert [r["detail"]["withdrawn"] for r in rows if r["action"] == "policy.human_rejection"] == [True]

    again = service.submit(carol, REWORDED)  # the same skills, reworded
    assert again["state"] == "awaiting_approval", again["decision"]
    service.reject(BOB, again["id"], reason="we chart with Grafana")  # now a reviewer says no
    third = service.submit(carol, REWORDED.model_copy(update={"id": "gap-d3-third"}))
    assert third["state"] == "refused" and third["decision"]["rule"] == "previously-rejected"
    assert again["id"] in third["decision"]["message"] and "we chart with Grafana" in third["decision"]["message"]


def test_no_number_of_withdrawals_hides_a_reviewers_no(tmp_path: Path) -> None:
    """Withdrawals are left out in the query itself: a requester who withdraws the refused copies again and
    again (each a new gap id, no slot, no reason needed) never reaches a request past the rule."""
    carol = Actor(id="carol", channel=Channel.a2a, roles=frozenset({Role.requester, Role.viewer}))
    service = service_for(tmp_path, monthly_cost_ceiling_usd=1)
    first = service.submit(carol, NEW_TEAM_GAP)
    service.reject(BOB, first["id"], reason="we chart with Grafana")
    for n in range(25):
        copy = service.submit(carol, REWORDED.model_copy(update={"id": f"gap-flood-{n}"}))
        assert copy["state"] == "refused" and copy["decision"]["rule"] == "previously-rejected", (n, copy["decision"])
        assert first["id"] in copy["decision"]["message"]  # always the reviewer's no, never a withdrawal
        service.reject(carol, copy["id"])
    last = service.submit(carol, REWORDED.model_copy(update={"id": "gap-flood-last"}))
    assert last["state"] == "refused" and last["decision"]["rule"] == "previously-rejected"


def test_a_pull_request_reviewers_closed_stays_a_rejection_when_its_requester_withdraws(tmp_path: Path) -> None:
    carol = Actor(id="carol", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
    service = service_for(tmp_path)
    first = service.submit(carol, NEW_TEAM_GAP)
    assert first["state"] == "published"
    store = service.app.store
    request = store.get_request(first["id"])
    assert request is not None
    request.error, request.resume_state = "the forge failed after the pull request opened", request.state
    store.save_request(request, RequestState.failed)  # as a failure after the PR opened leaves it
    service.app.forge.close_pull_request(first["pull_request"]["number"])  # reviewers say no on the forge
    done = service.reject(carol, first["id"])
    assert done["state"] == "rejected" and done["error"].startswith("rejected by carol")  # not a withdrawal
    again = service.submit(carol, REWORDED)
    assert again["state"] == "refused" and again["decision"]["rule"] == "previously-rejected"
