"""After the pull request: tracking merges and closes, the registry seeing merged teams, rollback."""

from __future__ import annotations

from pathlib import Path

import pytest
from git import Repo

from devops_automation import report
from devops_automation.app import App, build_app
from devops_automation.errors import ActionRefused
from devops_automation.models import CapabilityGap, RequestState

from .helpers import bare, changed_paths, forge_approve, gh_pull, new_gap, review_and_pass_ci

pytestmark = pytest.mark.slow


def test_track_follows_merged_and_closed_pull_requests(app: App) -> None:
    merged = app.engine.submit(new_gap(1)).request
    closed = app.engine.submit(new_gap(2)).request
    untouched = app.engine.submit(new_gap(3)).request
    review_and_pass_ci(app, merged.pr_number).merge(merge_method="merge")  # a human merges one...
    gh_pull(app, closed.pr_number).edit(state="closed")  # ...and closes another
    results = {r.request_id: r for r in app.lifecycle.track()}
    assert results[merged.id].after == "merged" and results[closed.id].after == "rejected"
    assert results[untouched.id].after == "published"
    stored = app.store.get_request(merged.id)
    assert stored.state is RequestState.merged and stored.merge_commit_sha
    assert app.store.get_request(closed.id).error == f"pull request #{closed.pr_number} was closed without merging"
    assert app.lifecycle.track() and all(r.request_id == untouched.id for r in app.lifecycle.track())


def test_the_registry_sees_a_merged_team(app: App) -> None:
    first = app.engine.submit(new_gap(1)).request
    review_and_pass_ci(app, first.pr_number).merge(merge_method="merge")
    app.lifecycle.track()
    again = app.engine.submit(
        CapabilityGap(description="We need native kotlin and swift apps built", required_skills=["kotlin", "swift"])
    ).request
    assert again.state is RequestState.reuse_existing and again.matched_team == "mobile_team_1"


def test_rollback_opens_a_revert_pr_and_never_rewrites_main(app: App) -> None:
    request = app.engine.submit(new_gap(1)).request
    with pytest.raises(ActionRefused, match="only merged teams"):
        app.lifecycle.rollback(request.id, by="carol")
    review_and_pass_ci(app, request.pr_number).merge(merge_method="merge")
    app.lifecycle.track()
    main_before = Repo(bare(app)).commit("main").hexsha
    rolled = app.lifecycle.rollback(request.id, by="carol")
    assert rolled.rollback_branch.startswith("auto/revert-team-mobile_team_1-")
    assert Repo(bare(app)).commit("main").hexsha == main_before  # nothing forced onto main
    revert = gh_pull(app, rolled.rollback_pr_number)
    assert revert.title == "Revert team mobile_team_1" and "rollback" in {label.name for label in revert.labels}
    removed = changed_paths(bare(app), rolled.rollback_branch)
    assert removed and all(p.startswith(("teams/mobile_team_1/", "k8s/teams/mobile_team_1/")) for p in removed)
    tree = Repo(bare(app)).commit(rolled.rollback_branch).tree
    assert "mobile_team_1" not in [t.name for t in (tree / "teams").trees]
    again = app.lifecycle.rollback(request.id, by="carol")  # idempotent: same branch, same PR
    assert again.rollback_pr_number == rolled.rollback_pr_number
    assert app.forge.repo.get_pulls(state="all").totalCount == 2
    assert [r.note for r in app.lifecycle.track()] == []  # the revert is still under review
    summary = report.request_summary(app.store.require_request(request.id))
    assert summary["rollback"]["pull_request"]["number"] == revert.number
    assert f"revert pull request #{revert.number} open" in report.describe(summary)
    review_and_pass_ci(app, revert.number).merge(merge_method="merge")
    tracked = app.lifecycle.track()
    assert [(r.request_id, r.after, r.pr_number) for r in tracked] == [(request.id, "rolled_back", revert.number)]
    final = app.store.require_request(request.id)
    assert final.state is RequestState.rolled_back
    assert "rolled back by revert pull request" in report.describe(report.request_summary(final))
    assert app.lifecycle.track() == []  # nothing left to follow


def test_auto_merge_waits_for_green_checks_and_low_risk(tmp_path: Path) -> None:
    from .conftest import make_settings

    app = build_app(make_settings(tmp_path / "home", auto_merge_low_risk=True, rate_limit_per_day=1))
    low = app.engine.submit(new_gap(1)).request
    assert low.decision.risk_level.value == "low"
    limited = app.engine.submit(new_gap(2)).request
    high = app.engine.approve(limited.id, by="dave", override=True)  # an override makes it high risk
    assert high.state is RequestState.published and gh_pull(app, high.pr_number).draft
    local = app.forge.server
    assert local is not None
    notes = {r.request_id: r for r in app.lifecycle.track()}
    assert notes[low.id].after == "published" and "checks are pending" in notes[low.id].note
    local.set_status("local/teams", low.branch, "failure")
    assert "checks are failure" in {r.request_id: r for r in app.lifecycle.track()}[low.id].note
    local.set_status("local/teams", low.branch, "success")
    local.set_status("local/teams", high.branch, "success")
    unreviewed = {r.request_id: r for r in app.lifecycle.track()}[low.id]  # green, but nobody else approved
    assert unreviewed.after == "published" and "At least 1 approving review is required" in unreviewed.note
    forge_approve(app, low.pr_number)  # the protected base needs a review from someone other than the crew
    notes = {r.request_id: r for r in app.lifecycle.track()}
    assert notes[low.id].after == "merged" and notes[low.id].note.startswith("auto-merged")
    assert notes[high.id].after == "published"  # high risk is never merged by the crew
    # the refused attempt (initiated, failed) and the merge (initiated, succeeded)
    assert [r.action for r in app.store.iter_audit(low.id)].count("forge.merge_pull_request") == 4
    app.close()


def _push_to(bare_path: Path, branch: str, files: dict[str, str], tmp: Path, symlinks: dict[str, str] | None = None):
    """Someone else pushes a commit to ``branch`` of the target repo (straight to the bare repo)."""
    work = Repo.clone_from(bare_path, tmp, branch=branch)
    for rel, text in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(text)
    for rel, target in (symlinks or {}).items():
        (tmp / rel).symlink_to(target)
    work.git.add(A=True)
    work.git.commit("-m", "someone else's change", "--author", "Mallory <m@example.com>")
    work.git.push("origin", branch)


def test_auto_merge_refuses_a_branch_someone_else_changed(tmp_path: Path) -> None:
    from .conftest import make_settings

    app = build_app(make_settings(tmp_path / "home", auto_merge_low_risk=True))
    request = app.engine.submit(new_gap(1)).request
    _push_to(
        bare(app),
        request.branch,
        {".github/workflows/evil.yml": "on: push\n", "CODEOWNERS": "* @mallory\n"},
        tmp_path / "mallory",
    )
    app.forge.server.set_status("local/teams", request.branch, "success")
    note = {r.request_id: r for r in app.lifecycle.track()}[request.id]
    assert note.after == "published" and note.note.startswith("auto-merge refused: the branch moved")
    main_files = [b.path for b in Repo(bare(app)).commit("main").tree.traverse()]
    assert ".github/workflows/evil.yml" not in main_files
    app.close()


def test_a_symlink_on_the_base_branch_cannot_carry_writes_outside(app: App, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    _push_to(bare(app), "main", {}, tmp_path / "mallory", symlinks={"k8s": str(outside)})
    request = app.engine.submit(new_gap(1)).request
    assert request.state is RequestState.failed and "symbolic link" in (request.error or "")
    assert list(outside.rglob("*")) == []
    assert request.branch not in [h.name for h in Repo(bare(app)).heads]


def test_one_untrackable_pull_request_does_not_stop_the_others(app: App) -> None:
    good = app.engine.submit(new_gap(1)).request
    lost = app.engine.submit(new_gap(2)).request
    review_and_pass_ci(app, good.pr_number).merge(merge_method="merge")
    app.forge.server.inject_fault("GET", rf"/pulls/{lost.pr_number}$", 404, times=5)
    results = {r.request_id: r for r in app.lifecycle.track()}
    assert results[good.id].after == "merged"
    assert results[lost.id].after == "published" and results[lost.id].note.startswith("could not be tracked")


def test_auto_merge_also_reads_check_runs(tmp_path: Path) -> None:
    from .conftest import make_settings

    app = build_app(make_settings(tmp_path / "home", auto_merge_low_risk=True))
    request = app.engine.submit(new_gap(1)).request
    local = app.forge.server
    local.set_check_run("local/teams", request.branch, "build", conclusion="failure")
    assert "checks are failure" in app.lifecycle.track()[0].note
    local.set_check_run("local/teams", request.branch, "build", conclusion="success")
    local.set_status("local/teams", request.branch, "success")
    forge_approve(app, request.pr_number)
    assert app.lifecycle.track()[0].after == "merged"
    app.close()
