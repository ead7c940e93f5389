"""The engine on the in-memory fake forge: the same steps and rules as over HTTP, in seconds.

Real git (clone, commit, push into a bare repository, merge commits made with ``git merge-tree``),
real cookiecutter renders, the real store; pull requests live in the fake forge's memory. The slow
validators (generated tests, kubernetes-validate, hadolint) are off here; ``test_pipeline.py`` runs them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from git import Repo

from devops_automation.app import App, build_app
from devops_automation.errors import ActionRefused
from devops_automation.forge.fake import FakeForge
from devops_automation.models import CapabilityGap, RequestState

from .conftest import make_settings
from .helpers import NEW_TEAM_GAP, changed_paths, fast_settings, new_gap


def fast_app(tmp_path: Path, **overrides: object) -> App:
    return build_app(fast_settings(tmp_path, **overrides))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    built = fast_app(tmp_path)
    yield built
    built.close()


def fake(app: App) -> FakeForge:
    assert isinstance(app.forge, FakeForge)
    return app.forge


def heads(app: App) -> set[str]:
    return {h.name for h in Repo(fake(app).bare).heads}


def test_a_gap_becomes_one_branch_and_one_pull_request(app: App) -> None:
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error
    assert heads(app) == {"main", request.branch}
    pr = fake(app).get_pull_request(request.pr_number)
    assert pr.head_ref == request.branch and pr.state == "open" and "risk:low" in pr.labels
    assert "8 tasks need interactive d3.js charts" in pr.body and request.id in pr.body
    assert changed_paths(fake(app).bare, request.branch) == sorted(request.files)
    again = app.engine.submit(NEW_TEAM_GAP.model_copy())
    assert again.duplicate and len(fake(app).pulls) == 1


def test_a_failed_pull_request_call_fails_the_step_and_resume_finishes_it(app: App) -> None:
    fake(app).fail("ensure_pull_request")
    failed = app.engine.submit(new_gap(1)).request
    assert failed.state is RequestState.failed and failed.resume_state is RequestState.scaffolded
    assert "injected failure" in (failed.error or "") and failed.commit_sha
    done = app.engine.run(failed.id)
    assert done.state is RequestState.published and len(fake(app).pulls) == 1
    assert heads(app) == {"main", done.branch}


def test_track_follows_merge_and_close_and_the_registry_sees_the_merged_team(app: App) -> None:
    merged = app.engine.submit(new_gap(1)).request
    closed = app.engine.submit(new_gap(2)).request
    fake(app).merge_pull_request(merged.pr_number, merged.commit_sha)
    fake(app).close_pull_request(closed.pr_number)
    results = {r.request_id: r.after for r in app.lifecycle.track()}
    assert results == {merged.id: "merged", closed.id: "rejected"}
    reuse = app.engine.submit(
        CapabilityGap(description="We need native kotlin and swift apps built", required_skills=["kotlin", "swift"])
    ).request
    assert reuse.state is RequestState.reuse_existing and reuse.matched_team == "mobile_team_1"


def test_rollback_opens_a_revert_pull_request_once(app: App) -> None:
    request = app.engine.submit(new_gap(1)).request
    with pytest.raises(ActionRefused, match="only merged teams"):
        app.lifecycle.rollback(request.id, by="carol")
    fake(app).merge_pull_request(request.pr_number, request.commit_sha)
    app.lifecycle.track()
    rolled = app.lifecycle.rollback(request.id, by="carol")
    again = app.lifecycle.rollback(request.id, by="carol")
    assert rolled.rollback_pr_number == again.rollback_pr_number and len(fake(app).pulls) == 2
    tree = Repo(fake(app).bare).commit(rolled.rollback_branch).tree
    assert "mobile_team_1" not in [t.name for t in (tree / "teams").trees]


def test_auto_merge_needs_green_checks_and_the_exact_commit(tmp_path: Path) -> None:
    app = fast_app(tmp_path, auto_merge_low_risk=True)
    try:
        request = app.engine.submit(new_gap(1)).request
        assert "checks are pending" in app.lifecycle.track()[0].note
        fake(app).statuses[request.commit_sha] = "failure"
        assert "checks are failure" in app.lifecycle.track()[0].note
        fake(app).statuses[request.commit_sha] = "success"
        result = app.lifecycle.track()[0]
        assert result.after == "merged" and result.note.startswith("auto-merged")
    finally:
        app.close()


def test_rate_limit_override_and_cost_ceiling(tmp_path: Path) -> None:
    app = fast_app(tmp_path, rate_limit_per_day=1, monthly_cost_ceiling_usd=5)
    try:
        waiting = app.engine.submit(new_gap(1)).request
        assert waiting.state is RequestState.awaiting_approval
        assert app.engine.approve(waiting.id, by="bob").state is RequestState.published
        limited = app.engine.submit(new_gap(2)).request
        assert limited.state is RequestState.awaiting_approval  # cost first, then the slot
        approved = app.engine.approve(limited.id, by="bob")
        assert approved.state is RequestState.refused and approved.decision.rule == "rate-limit"
        overridden = app.engine.approve(limited.id, by="dave", override=True, reason="launch")
        assert overridden.state is RequestState.published and overridden.decision.risk_level.value == "high"
        assert fake(app).get_pull_request(overridden.pr_number).draft  # high risk: a draft
        assert [a.kind.value for a in overridden.approvals] == ["cost", "override"]
    finally:
        app.close()


def test_a_stale_git_lock_left_by_a_crash_does_not_block_the_request(app: App) -> None:
    app.target.team_files()  # clones
    git_dir = app.settings.checkout_dir / ".git"
    (git_dir / "index.lock").write_text("")
    (git_dir / "refs" / "heads" / "main.lock").write_text("")
    request = app.engine.submit(new_gap(1)).request
    assert request.state is RequestState.published, request.error
    assert not (git_dir / "index.lock").exists()
    rows = app.store.iter_audit()
    removed = [r.target for r in rows if r.action == "git.remove_stale_lock" and r.phase == "succeeded"]
    assert sorted(removed) == [".git/index.lock", ".git/refs/heads/main.lock"]


def test_a_git_failure_is_a_resumable_step_failure_with_gits_own_words(app: App) -> None:
    request = app.engine.submit(new_gap(1)).request
    fake(app).git("update-ref", "-d", f"refs/heads/{request.branch}")  # the branch vanished on the forge
    shutil.move(str(fake(app).bare), str(fake(app).bare) + ".gone")  # and then the whole repository
    second = app.engine.submit(new_gap(2)).request
    assert second.state is RequestState.failed and second.resume_state is RequestState.received
    # The forge says the base branch is not there; git, asked next, says why, in its own words.
    assert "cannot fetch the target repository" in (second.error or "") and "remote" in (second.error or "")
    shutil.move(str(fake(app).bare) + ".gone", str(fake(app).bare))
    assert app.engine.run(second.id).state is RequestState.published


def test_rejecting_a_pushed_request_closes_its_pr_and_deletes_only_the_crews_branch(app: App) -> None:
    fake(app).fail("ensure_pull_request", times=2)
    first = app.engine.submit(new_gap(1)).request
    second = app.engine.submit(new_gap(2)).request
    assert first.state is second.state is RequestState.failed and first.commit_sha and second.commit_sha
    # someone opened the first one's pull request by hand; someone pushed onto the second's branch
    from devops_automation.forge.base import PRContent

    opened = fake(app).ensure_pull_request(
        head=first.branch, base="main", compose=lambda: PRContent(title="t", body="b"), labels=[]
    )
    work = Repo.clone_from(fake(app).bare, app.settings.home / "human", branch=second.branch)
    (Path(work.working_dir) / "teams" / "mobile_team_2" / "NOTES.md").write_text("a human's notes\n")
    work.git.add(A=True)
    work.git.commit("-m", "notes", "--author", "Hu Man <h@example.com>")
    work.git.push("origin", second.branch)
    assert app.engine.reject(first.id, by="erin").state is RequestState.rejected
    assert fake(app).get_pull_request(opened.number).state == "closed"
    assert first.branch not in heads(app)
    assert app.engine.reject(second.id, by="erin").state is RequestState.rejected
    assert second.branch in heads(app)  # it holds a human's commit: kept
    assert [r.action for r in app.store.iter_audit(second.id)].count("forge.branch_kept") == 1


def test_a_base_branch_that_does_not_exist_fails_the_step_instead_of_crashing(tmp_path: Path) -> None:
    fast_app(tmp_path).close()  # the forge's repository has only main
    app = fast_app(tmp_path, base_branch="develop")
    try:
        request = app.engine.submit(new_gap(1)).request
        assert request.state is RequestState.failed and request.resume_state is RequestState.received
        assert "develop" in (request.error or "")
    finally:
        app.close()


def test_a_branch_someone_else_made_under_the_requests_name_is_left_alone(tmp_path: Path) -> None:
    """The request's branch name exists on the forge with commits that are not the request's (a human, or
    another installation): it is never overwritten; the request publishes under a fresh name."""
    from devops_automation.engine import Hooks

    pause = __import__("threading").Event()
    app = build_app(
        make_settings(tmp_path / "home", forge="fake", validate_render=False),
        hooks=Hooks(
            draining=pause, on_step=lambda _s, _t, r, _u: pause.set() if r.state.value == "scaffolded" else None
        ),
    )
    try:
        request = app.engine.submit(new_gap(7)).request
        assert request.state is RequestState.scaffolded and request.branch
        forge = fake(app)
        main = forge.git("rev-parse", "refs/heads/main")
        squatter = forge.git("commit-tree", forge.git("rev-parse", f"{main}^{{tree}}"), "-p", main, "-m", "mine")
        forge.git("update-ref", f"refs/heads/{request.branch}", squatter)
        __import__("time").sleep(1.1)  # the fresh name carries a new timestamp
        pause.clear()
        published = app.engine.run(request.id)
        assert published.state is RequestState.published, published.error
        assert published.branch != request.branch
        assert forge.git("rev-parse", f"refs/heads/{request.branch}") == squatter  # untouched
        actions = [r.action for r in app.store.iter_audit(request.id)]
        assert "publish.branch_taken" in actions
    finally:
        app.close()


def test_the_operators_git_configuration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A global git config with a failing pre-push hook, forced signing, a push alias and another
    identity: the bot's commits are the same and they succeed."""
    home = tmp_path / "operator"
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    for name in ("pre-push", "pre-commit", "post-checkout"):
        (hooks / name).write_text("#!/bin/sh\necho operator hook ran >&2\nexit 1\n")
        (hooks / name).chmod(0o755)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Operator\n\temail = op@example.com\n[core]\n\thooksPath = " + str(hooks) + "\n"
        "[commit]\n\tgpgsign = true\n[push]\n\tdefault = nothing\n[alias]\n\tpush = !false\n"
        '[url "file:///nowhere/"]\n\tinsteadOf = /\n'
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    app = fast_app(tmp_path)
    try:
        request = app.engine.submit(new_gap(8)).request
        assert request.state is RequestState.published, request.error
        commit = Repo(fake(app).bare).commit(request.branch)
        assert commit.author.name == app.settings.bot_name and commit.committer.email == app.settings.bot_email
        assert not commit.gpgsig
    finally:
        app.close()


def test_overridden_teams_count_for_every_later_request(tmp_path: Path) -> None:
    """An override lifts the rate limit and cooldown for its own request only: the team it made counts
    toward the 24 h window and the cooldown of every request after it."""
    from devops_automation import report

    app = fast_app(tmp_path, rate_limit_per_day=2, cooldown_seconds=0)
    try:
        for n in (1, 2):
            assert app.engine.submit(new_gap(n)).request.state is RequestState.published
        third = app.engine.submit(new_gap(3)).request
        assert third.state is RequestState.refused and third.decision and third.decision.rule == "rate-limit"
        assert f"devops-crew approve {third.id} --override --reason TEXT" in third.decision.remedy
        overridden = app.engine.approve(third.id, by="bob", override=True, reason="incident")
        assert overridden.state is RequestState.published
        fourth = app.engine.submit(new_gap(4)).request
        assert fourth.decision and fourth.decision.rule == "rate-limit"
        assert "3 teams were proposed in the last 24 h; the limit is 2" in fourth.decision.message
        assert "(in 23 h)" in report.describe(report.request_summary(fourth))  # relative to now, when shown
    finally:
        app.close()
    cooled = fast_app(tmp_path / "second", cooldown_seconds=300)
    try:
        assert cooled.engine.submit(new_gap(5)).request.state is RequestState.published
        waiting = cooled.engine.submit(new_gap(6)).request
        assert waiting.decision and waiting.decision.rule == "cooldown"
        cooled.engine.approve(waiting.id, by="bob", override=True, reason="incident")
        later = cooled.engine.submit(new_gap(7)).request
        assert later.decision and later.decision.rule == "cooldown"
        overridden_at = cooled.store.ledger()[-1]
        assert f"proposed at {overridden_at:%Y-%m-%d %H:%M:%S} UTC" in later.decision.message  # the override's
        assert " s ago" not in later.decision.message  # no wait frozen into the stored text
    finally:
        cooled.close()


def test_relative_times_are_computed_when_shown() -> None:
    from datetime import UTC, datetime

    from devops_automation.report import with_relative_times

    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert with_relative_times("Retry after 2026-12-01 12:00:45 UTC, or", now).endswith("UTC (in 45 s), or")
    assert "(in 30 min)" in with_relative_times("Retry after 2026-12-01 12:30 UTC", now)
    assert "(now)" in with_relative_times("Retry after 2026-12-01 11:00 UTC", now)


def test_a_request_between_steps_is_shown_with_how_to_continue_it(tmp_path: Path) -> None:
    """A request left between steps (accepted and never driven here; or its run killed) says how to go on,
    in the CLI's words; resuming it then publishes it."""
    from devops_automation import report

    app = fast_app(tmp_path)
    try:
        accepted = app.engine.accept(new_gap(1)).request
        shown = report.describe(report.request_summary(accepted))
        assert shown == (
            f"{accepted.id}: received\n"
            f"    if no run is at it any more: `devops-crew resume {accepted.id}` continues from this step"
        )
        resumed = app.engine.run(accepted.id)
        assert resumed.state is RequestState.published
        assert "devops-crew resume" not in report.describe(report.request_summary(resumed))
    finally:
        app.close()
