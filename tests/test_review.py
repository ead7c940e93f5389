"""What a reviewer sees of a request (``CrewService.review``, :mod:`devops_automation.review`) and the
dashboard's merge (``CrewService.merge``), on the fake forge over a real bare repository."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from git import Actor as GitActor
from git import Repo

from devops_automation.authz import Actor, Channel, Role
from devops_automation.errors import ActionRefused, NotFound, PermissionDenied
from devops_automation.models import CapabilityGap, PolicyDecision, RequestState, TeamCreationRequest
from devops_automation.review import commit_files, decisions
from devops_automation.scaffold.render import expected_files
from devops_automation.service import CrewService

from .helpers import COVERED_GAP, new_gap, service_for

ALICE = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
BOB = Actor(id="bob", channel=Channel.web, roles=frozenset({Role.approver, Role.viewer}))
CAROL = Actor(id="carol", channel=Channel.web, roles=frozenset({Role.approver, Role.requester, Role.viewer}))
OSCAR = Actor(id="oscar", channel=Channel.web, roles=frozenset({Role.auditor, Role.viewer}))
NOBODY = Actor(id="nobody", channel=Channel.web, roles=frozenset())
CRON = Actor(id="cron", channel=Channel.scheduler, roles=frozenset({Role.admin}))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CrewService]:
    """Every offline-drafted team costs more than $5 a month: requests wait for a human."""
    with service_for(tmp_path, monthly_cost_ceiling_usd=5) as built:
        yield built


@pytest.fixture
def open_service(tmp_path: Path) -> Iterator[CrewService]:
    """The default ceiling: requests are published at once, low risk (not drafts)."""
    with service_for(tmp_path) as built:
        yield built


def test_a_waiting_request_is_previewed_from_its_stored_spec(service: CrewService) -> None:
    rid = service.submit(CAROL, new_gap(1))["id"]
    before = sorted(p.relative_to(service.settings.home) for p in service.settings.home.rglob("*"))
    review = service.review(BOB, rid)
    after = sorted(p.relative_to(service.settings.home) for p in service.settings.home.rglob("*"))
    assert before == after  # the preview renders into a temporary directory, nothing under the home

    request = service.store.require_request(rid)
    assert request.spec is not None
    files = review["files"]
    assert files["source"] == "preview" and "not validated" in files["note"] and files["commit"] is None
    assert [f["path"] for f in files["items"]] == expected_files(request.spec)
    assert {f["status"] for f in files["items"]} == {"added"}
    team_yaml = next(f for f in files["items"] if f["path"].endswith("/team.yaml"))
    assert "name: mobile_team_1" in team_yaml["text"] and team_yaml["additions"] == len(team_yaml["text"].splitlines())
    pull = review["pull_request"]
    assert pull["source"] == "preview" and pull["number"] is None
    assert "```text\nGap number 1 needs kotlin and swift apps\n```" in pull["body"]
    assert pull["title"] == "Add team mobile_team_1 for capability gap gap-n1" and "risk:high" in pull["labels"]
    assert review["cost"] == {"monthly_usd": request.spec.monthly_cost_usd, "ceiling_usd": 5.0, "above_ceiling": True}
    assert review["llm_usage"] == request.llm_usage.model_dump() and review["llm_usage"]["calls"] == 0
    assert review["request"]["id"] == rid and review["gap"]["id"] == "gap-n1" and review["notes"] == []
    assert review["decisions"]["approve"] == {"applies": True, "allowed": True, "reason": "", "rule": "role"}
    assert review["decisions"]["merge"]["applies"] is False


def test_the_requester_is_told_why_she_may_not_approve_and_viewers_why_they_may_not_decide(
    service: CrewService,
) -> None:
    rid = service.submit(CAROL, new_gap(1))["id"]
    mine = service.review(CAROL, rid)["decisions"]
    assert mine["approve"] == {
        "applies": True,
        "allowed": False,
        "reason": f"web:carol requested {rid} and may not approve it: another approver must (four eyes)",
        "rule": "four-eyes",
    }
    assert mine["reject"]["allowed"] and mine["reject"]["rule"] == "withdraw"  # she may withdraw it
    viewer = service.review(Actor(id="vic", channel=Channel.web, roles=frozenset({Role.viewer})), rid)["decisions"]
    assert viewer["approve"]["reason"] == "web:vic may not approve: it needs the approver role"
    assert viewer["override"]["applies"] is False
    assert viewer["override"]["reason"].endswith("an override only lifts the rate limit and cooldown")


def test_a_published_request_shows_the_crews_commit_and_the_forges_pull_request(service: CrewService) -> None:
    rid = service.submit(ALICE, new_gap(1))["id"]
    published = service.approve(BOB, rid, reason="worth it")
    assert published["state"] == "published"
    review = service.review(OSCAR, rid)
    files = review["files"]
    assert files["source"] == "commit" and files["commit"] == published["commit"]
    request = service.store.require_request(rid)
    assert [f["path"] for f in files["items"]] == sorted(request.files)
    forge = service.app.forge
    for item in files["items"]:
        assert item["status"] == "added" and item["patch"] is None
        assert item["text"] == forge.git("show", f"{published['commit']}:{item['path']}") + "\n"  # git strips one
    pull = review["pull_request"]
    assert pull["source"] == "forge" and pull["body"] == forge.pulls[1].body and pull["number"] == 1
    assert pull["head_moved"] is False and pull["draft"] is True  # above the ceiling: high risk, a draft
    actions = [(row["action"], row["phase"]) for row in review["audit"]]
    assert ("policy.human_approval", "recorded") in actions and ("git.push", "succeeded") in actions
    assert all(row["request_id"] == rid for row in review["audit"])
    hidden = service.review(BOB, rid)  # an approver sees the history of what he decides on
    assert hidden["audit"] == review["audit"]
    viewer = service.review(Actor(id="vic", channel=Channel.web, roles=frozenset({Role.viewer})), rid)
    assert viewer["audit"] is None and viewer["audit_note"].endswith("it needs the auditor role.")
    merge = hidden["decisions"]["merge"]
    assert merge["applies"] and not merge["allowed"] and "is a draft" in merge["reason"]


def test_a_commit_the_checkout_lost_is_listed_from_the_forge(open_service: CrewService) -> None:
    view = open_service.submit(ALICE, new_gap(1))
    request = open_service.store.require_request(view["id"])
    request.commit_sha = "f" * 40  # a commit neither the checkout nor a fetch can bring back
    open_service.store.save_request(request)
    shutil.rmtree(open_service.app.target.path)  # and a fresh clone on the way
    review = open_service.review(BOB, view["id"])
    assert review["files"]["source"] == "forge"
    request = open_service.store.require_request(view["id"])
    assert [f["path"] for f in review["files"]["items"]] == sorted(request.files)
    assert {(f["status"], f["text"]) for f in review["files"]["items"]} == {("changed", None)}
    assert review["pull_request"]["source"] == "forge" and review["pull_request"]["head_moved"]
    assert (open_service.app.target.path / ".git").is_dir()  # the checkout was cloned again to look


def test_a_moved_branch_is_reported_and_never_merged(open_service: CrewService) -> None:
    view = open_service.submit(ALICE, new_gap(1))
    forge = open_service.app.forge
    head = forge.git("rev-parse", f"refs/heads/{view['branch']}")
    moved = forge.git("commit-tree", forge.git("rev-parse", f"{head}^{{tree}}"), "-p", head, "-m", "a human's change")
    forge.git("update-ref", f"refs/heads/{view['branch']}", moved, head)
    review = open_service.review(BOB, view["id"])
    assert review["pull_request"]["head_moved"] and review["pull_request"]["head_sha"] == moved
    assert any("branch moved to" in note for note in review["notes"])
    assert review["files"]["commit"] == view["commit"]  # still the crew's commit that is shown
    merge = review["decisions"]["merge"]
    assert merge["applies"] and not merge["allowed"] and merge["rule"] == "pull-request"
    with pytest.raises(ActionRefused, match=r"branch moved to .* review and merge it on the forge"):
        open_service.merge(BOB, view["id"])
    assert open_service.get(BOB, view["id"])["state"] == "published" and not forge.pulls[1].merged


def test_a_request_without_a_new_team_has_no_files(service: CrewService) -> None:
    view = service.submit(ALICE, COVERED_GAP)
    assert view["state"] == "reuse_existing"
    review = service.review(BOB, view["id"])
    assert review["files"]["source"] == "none" and review["files"]["items"] == []
    assert view["matched_team"] in review["files"]["note"]
    assert review["pull_request"] is None and review["spec"] is None and review["cost"] is None
    assert not any(choice["applies"] for choice in review["decisions"].values())


def test_review_needs_the_read_role_and_an_existing_request(service: CrewService) -> None:
    rid = service.submit(ALICE, new_gap(1))["id"]
    with pytest.raises(PermissionDenied, match="needs the viewer role"):
        service.review(NOBODY, rid)
    with pytest.raises(NotFound):
        service.review(BOB, "req-doesnotexist")
    with pytest.raises(NotFound):
        service.review(BOB, "../../etc/passwd")


def test_merge_needs_an_approver_four_eyes_and_the_embedded_forge(open_service: CrewService) -> None:
    rid = open_service.submit(CAROL, new_gap(1))["id"]
    with pytest.raises(PermissionDenied, match="four eyes") as refused:
        open_service.merge(CAROL, rid)
    assert refused.value.rule == "four-eyes"
    with pytest.raises(PermissionDenied, match="needs the approver role"):
        open_service.merge(ALICE, rid)
    with pytest.raises(PermissionDenied, match="the scheduler may only resume, track and review gaps"):
        open_service.merge(CRON, rid)
    forge = open_service.app.forge
    forge.embedded = False  # as GitHub would be
    try:
        with pytest.raises(ActionRefused, match="is not the embedded forge"):
            open_service.merge(BOB, rid)
    finally:
        forge.embedded = True
    merged = open_service.merge(BOB, rid)
    assert merged["state"] == "merged" and forge.pulls[1].merged
    request = open_service.store.require_request(rid)
    assert request.merge_commit_sha == forge.pulls[1].merge_commit_sha
    rows = open_service.audit(OSCAR, request_id=rid, limit=100)
    merge_rows = [(r["action"], r["phase"]) for r in rows if "merge" in r["action"]]
    assert merge_rows == [
        ("forge.merge_pull_request", "initiated"),
        ("forge.merge_pull_request", "succeeded"),
        ("request.merged", "recorded"),
    ]
    assert rows[-1]["detail"]["by"] == "bob" and rows[-1]["detail"]["actor"] == "bob"
    with pytest.raises(ActionRefused, match="is merged; only a published request can be merged"):
        open_service.merge(BOB, rid)


def test_merge_records_a_pull_request_merged_on_the_forge_without_merging_again(open_service: CrewService) -> None:
    view = open_service.submit(ALICE, new_gap(1))
    forge = open_service.app.forge
    forge.merge_pull_request(1, view["commit"])  # someone pressed the forge's own button first
    calls = len(forge.calls)
    assert open_service.merge(BOB, view["id"])["state"] == "merged"
    assert "merge_pull_request" not in forge.calls[calls:]


def test_merge_refuses_a_draft(service: CrewService) -> None:
    rid = service.submit(ALICE, new_gap(1))["id"]
    service.approve(BOB, rid)  # above the ceiling: high risk, opened as a draft
    with pytest.raises(ActionRefused, match="is a draft"):
        service.merge(BOB, rid)


def test_decisions_follow_the_state_rules() -> None:
    gap = CapabilityGap(description="needs go apps", required_skills=["go"])
    limited = TeamCreationRequest(
        id="req-1",
        gap=gap,
        state=RequestState.refused,
        decision=PolicyDecision(outcome="refused", rule="rate-limit", message="5 per day"),
        requester=ALICE.ref(),
    )
    choices = decisions(BOB, limited, allow_self_approval=False, embedded=True)
    assert choices["override"] == {"applies": True, "allowed": True, "reason": "", "rule": "role"}
    assert not choices["approve"]["applies"] and choices["reject"]["applies"] and not choices["merge"]["applies"]
    named = limited.model_copy(update={"decision": PolicyDecision(outcome="refused", rule="team-name")})
    assert not decisions(BOB, named, allow_self_approval=False, embedded=True)["override"]["applies"]
    published = limited.model_copy(update={"state": RequestState.published, "pr_number": 3})
    assert decisions(BOB, published, allow_self_approval=False, embedded=True)["merge"]["allowed"]
    off = decisions(BOB, published, allow_self_approval=False, embedded=False)["merge"]
    assert not off["applies"] and "embedded forge only" in off["reason"]
    own = decisions(
        ALICE.model_copy(update={"roles": frozenset({Role.admin})}), published, allow_self_approval=True, embedded=True
    )["merge"]
    assert own["allowed"] and own["rule"] == "self-approval"


def _repo(tmp_path: Path) -> tuple[Repo, GitActor]:
    repo = Repo.init(tmp_path / "repo")
    return repo, GitActor("t", "t@example.invalid")


def test_commit_files_reads_additions_changes_deletions_and_binaries(tmp_path: Path) -> None:
    repo, who = _repo(tmp_path)
    root = Path(repo.working_tree_dir or "")
    (root / "a.txt").write_text("one\ntwo\n")
    (root / "b.txt").write_text("gone\n")
    repo.index.add(["a.txt", "b.txt"])
    first = repo.index.commit("first", author=who, committer=who)
    added = commit_files(root, first.hexsha)  # a root commit: everything added
    assert added is not None and [(f["path"], f["status"], f["text"]) for f in added] == [
        ("a.txt", "added", "one\ntwo\n"),
        ("b.txt", "added", "gone\n"),
    ]
    (root / "a.txt").write_text("one\n<script>2</script>\n")
    (root / "c.bin").write_bytes(b"\x00\x01binary")
    repo.index.add(["a.txt", "c.bin"])
    repo.index.remove(["b.txt"], working_tree=True)
    second = repo.index.commit("second", author=who, committer=who)
    files = {f["path"]: f for f in commit_files(root, second.hexsha) or []}
    assert files["a.txt"]["status"] == "modified" and files["a.txt"]["text"] is None
    assert "-two" in files["a.txt"]["patch"] and "+<script>2</script>" in files["a.txt"]["patch"]
    assert (files["a.txt"]["additions"], files["a.txt"]["deletions"]) == (1, 1)
    assert files["b.txt"]["status"] == "deleted" and files["b.txt"]["deletions"] == 1
    assert files["c.bin"]["status"] == "added" and files["c.bin"]["binary"] and files["c.bin"]["text"] is None
    assert commit_files(root, "0" * 40) is None
    assert commit_files(tmp_path / "not-a-repo", second.hexsha) is None
