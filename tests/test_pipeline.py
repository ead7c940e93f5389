"""The whole path on embedded defaults: real git repositories, the real scaffold and validators."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from git import Repo

from devops_automation.app import App, build_app
from devops_automation.models import CapabilityGap, RequestState
from devops_automation.settings import Settings

from .conftest import make_settings
from .helpers import (
    COVERED_GAP,
    NEW_TEAM_GAP,
    bare,
    changed_paths,
    gh_pull,
    new_gap,
    pull_count,
    remote_branches,
    swap,
)

pytestmark = pytest.mark.slow


def test_a_new_gap_becomes_a_branch_and_a_pull_request(app: App, settings: Settings) -> None:
    submission = app.engine.submit(NEW_TEAM_GAP)
    request = submission.request
    assert request.state is RequestState.published, request.error
    assert request.spec is not None and request.spec.name == "d3_js_data_visualization"
    assert request.branch and request.branch.startswith("auto/team-d3_js_data_visualization-")
    branches = remote_branches(bare(app))
    assert set(branches) == {"main", request.branch}
    paths = changed_paths(bare(app), request.branch)
    assert paths == sorted(request.files) and paths
    assert all(p.startswith(("teams/d3_js_data_visualization/", "k8s/teams/d3_js_data_visualization/")) for p in paths)
    commit = Repo(bare(app)).commit(request.branch)
    assert commit.author.name == settings.bot_name
    assert "gap-d3" in commit.message and request.id in commit.message
    ref = app.forge.find_pull_request(request.branch)
    assert ref is not None and ref.number == request.pr_number
    pr = gh_pull(app, ref.number)
    assert "8 tasks need interactive d3.js charts" in pr.body and request.id in pr.body
    assert pr.head.ref == request.branch and pr.base.ref == "main" and pr.state == "open"
    assert {label.name for label in pr.labels} == {"automated", "new-team", "needs-review", "risk:low"}
    assert [t.slug for t in pr.get_review_requests()[1]] == ["platform-team"]
    body = pr.body
    assert "| `lead` | yes |" in body and "| `d3_js_specialist` |" in body  # the proposed team table
    assert f"**${request.spec.monthly_cost_usd:,.2f} per month**" in body  # the cost estimate
    assert f"## Files ({len(request.files)})" in body
    assert all(f"- `{path}`" in body for path in request.files)
    assert body.count("- [ ] ") == 5 and "Nothing outside `teams/d3_js_data_visualization/`" in body
    assert "Drafted by: offline drafter" in body and "No language model was used." in body
    import urllib.request

    with urllib.request.urlopen(pr.html_url, timeout=5) as page:  # noqa: S310 - the forge on 127.0.0.1
        html_page = page.read().decode()
    assert page.status == 200 and f"#{pr.number}" in html_page and "auto/team-d3_js_data_visualization-" in html_page
    assert "teams/d3_js_data_visualization/team.yaml" in html_page and "<script" not in html_page
    actions = [(r.action, r.phase) for r in app.store.iter_audit(request.id)]
    for action in ("repo.write_files", "git.commit", "git.push", "forge.open_pull_request"):
        assert (action, "initiated") in actions and (action, "succeeded") in actions


def test_a_covered_gap_reuses_the_existing_team_and_creates_nothing(app: App, settings: Settings) -> None:
    request = app.engine.submit(COVERED_GAP).request
    assert request.state is RequestState.reuse_existing
    assert request.matched_team == "customer_support"
    assert set(remote_branches(bare(app))) == {"main"}
    assert pull_count(app) == 0


def test_submitting_the_same_gap_twice_makes_one_branch_and_one_pr(app: App, settings: Settings) -> None:
    first = app.engine.submit(NEW_TEAM_GAP)
    second = app.engine.submit(NEW_TEAM_GAP.model_copy())
    assert second.duplicate and second.request.id == first.request.id
    assert len(remote_branches(bare(app))) == 2
    assert pull_count(app) == 1


def test_a_reserved_name_is_refused_and_nothing_is_written(app: App, settings: Settings) -> None:
    gap = CapabilityGap(description="take over the CI", required_skills=["github actions"], proposed_name="workflows")
    request = app.engine.submit(gap).request
    assert request.state is RequestState.refused
    assert request.decision is not None and request.decision.rule == "reserved-name"
    assert set(remote_branches(bare(app))) == {"main"}
    with pytest.raises(Exception, match="only lifts the rate limit"):
        app.engine.approve(request.id, by="alice", override=True)


def test_rate_limit_holds_across_restarts_and_a_human_can_override(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", rate_limit_per_day=1)
    first = build_app(settings)
    assert first.engine.submit(new_gap(1)).request.state is RequestState.published
    first.close()
    again = build_app(make_settings(tmp_path / "home", rate_limit_per_day=1))  # restarted: same store
    refused = again.engine.submit(new_gap(2)).request
    assert refused.state is RequestState.refused and refused.decision.rule == "rate-limit"
    assert "--override" in refused.decision.remedy
    assert again.engine.run(refused.id).state is RequestState.refused  # still refused on retry
    approved = again.engine.approve(refused.id, by="alice", override=True, reason="launch day")
    assert approved.state is RequestState.published and approved.override_approved_by == "alice"
    assert approved.decision.risk_level.value == "high"
    events = [json.loads(r.detail) for r in again.store.iter_audit(refused.id) if r.action == "policy.human_approval"]
    assert events[0].pop("run").startswith("run-")  # the engine run the approval started
    assert events == [
        {
            "by": "alice",
            "channel": "cli",
            "kind": "override",
            "override": True,
            "reason": "launch day",
            "self_approval": False,
        }
    ]
    assert [(a.by.id, a.kind.value, a.reason) for a in approved.approvals] == [("alice", "override", "launch day")]
    again.close()


def test_cooldown_refuses_a_second_team_too_soon(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path / "home", cooldown_seconds=3600))
    assert app.engine.submit(new_gap(1)).request.state is RequestState.published
    second = app.engine.submit(new_gap(2)).request
    assert second.state is RequestState.refused and second.decision.rule == "cooldown"
    app.close()


def test_cost_ceiling_waits_for_a_human(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path / "home", monthly_cost_ceiling_usd=5))
    waiting = app.engine.submit(new_gap(1)).request
    assert waiting.state is RequestState.awaiting_approval and waiting.decision.rule == "cost-ceiling"
    assert app.engine.run(waiting.id).state is RequestState.awaiting_approval
    assert app.engine.approve(waiting.id, by="bob").state is RequestState.published
    other = app.engine.submit(new_gap(2)).request
    rejected = app.engine.reject(other.id, by="bob", reason="too expensive")
    assert rejected.state is RequestState.rejected
    assert len(remote_branches(bare(app))) == 2  # main + the approved one
    app.close()


def test_the_commit_staged_beside_the_team_tests_is_the_one_pushed_after_one_fetch(tmp_path: Path) -> None:
    """The scaffold step stages the commit (fetch and build, no push) while the generated team's tests
    run; the publish step pushes exactly that commit: one fetch and one commit for the request."""
    app = build_app(make_settings(tmp_path / "home"))
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error
    actions = [r.action for r in app.store.iter_audit() if r.phase == "initiated"]  # the app's only request
    assert actions.count("git.fetch") == 1 and actions.count("git.commit") == 1 and actions.count("git.push") == 1
    assert actions.index("git.commit") < actions.index("git.push")
    (commit,) = [r for r in app.store.iter_audit() if r.action == "git.commit" and r.phase == "succeeded"]
    assert remote_branches(bare(app))[request.branch] == request.commit_sha
    assert json.loads(commit.detail)["commit"] == request.commit_sha
    (push,) = [r for r in app.store.iter_audit() if r.action == "git.push" and r.phase == "initiated"]
    assert json.loads(push.detail)["create_only"] is True  # the staged push, not a publish from scratch
    app.close()


def test_the_next_runs_test_child_warms_up_after_the_push_and_the_pull_request(tmp_path: Path) -> None:
    """No spare team-test child is forked while a request's push and pull request wait for its tests (its
    warm-up would share the CPUs with them); the engine forks it when the run has ended."""
    from devops_automation.engine import Hooks
    from devops_automation.scaffold import team_tests

    team_tests.warm_spare()  # a spare an earlier test left warming must be warm, so this run takes it
    team_tests.spare_ready(60)
    during: list[object] = []

    def on_step(step: str, _seconds: float, _request: object, _spent: object) -> None:
        if step in {"approved_by_policy", "scaffolded"}:  # the render and tests, then the push and PR
            during.append(team_tests._spares._spare)

    app = build_app(make_settings(tmp_path / "home"), hooks=Hooks(on_step=on_step))
    try:
        request = app.engine.submit(NEW_TEAM_GAP).request
        assert request.state is RequestState.published, request.error
        assert during == [None, None]
        assert team_tests.spare_ready(60)
    finally:
        app.close()


def test_a_branch_created_between_the_stage_and_the_push_is_left_alone(tmp_path: Path) -> None:
    """Someone creates the request's branch on the remote after the commit was staged (here at the base
    commit, which our push would fast-forward): the create-only push is refused, and the publish starts
    over, sees the branch is not ours, and publishes under a fresh name."""
    from devops_automation.engine import Hooks

    created: list[str] = []

    def on_step(step: str, _seconds: float, after: object, *_: object) -> None:
        branch = getattr(after, "branch", None)
        if step == RequestState.approved_by_policy.value and branch and not created:
            repo = Repo(bare(app))
            repo.git.update_ref(f"refs/heads/{branch}", repo.commit("main").hexsha)
            created.append(branch)

    app = build_app(make_settings(tmp_path / "home"), hooks=Hooks(on_step=on_step))
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert created, "the scaffold step did not run"
    if request.state is RequestState.failed:  # the fresh name would be the same second's: a resume gets it
        assert "without this request's commit; left alone" in (request.error or "")
        assert request.resume_state is RequestState.scaffolded
        time.sleep(1.1)
        request = app.engine.run(request.id)
    assert request.state is RequestState.published, request.error
    branches = remote_branches(bare(app))
    assert request.branch != created[0] and branches[created[0]] == Repo(bare(app)).commit("main").hexsha
    assert branches[request.branch] == request.commit_sha
    pushes = [r for r in app.store.iter_audit() if r.action == "git.push" and r.request_id == request.id]
    assert [r.phase for r in pushes][:2] == ["initiated", "failed"]
    app.close()


def test_an_invalid_render_never_reaches_git(tmp_path: Path) -> None:
    # No schema exists for this Kubernetes version: manifest validation must fail, not pass silently.
    app = build_app(make_settings(tmp_path / "home", kubernetes_version="1.99"))
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.failed and "validation" in (request.error or "")
    assert request.resume_state is RequestState.approved_by_policy
    assert set(remote_branches(bare(app))) == {"main"}
    assert not [r for r in app.store.iter_audit() if r.action in {"git.push", "git.commit"}]
    app.close()


def test_a_dirty_checkout_is_cleaned_before_writing(app: App, settings: Settings) -> None:
    app.target.team_files()  # clones
    (settings.checkout_dir / "stray.txt").write_text("left by a crash")
    (settings.checkout_dir / "README.md").write_text("edited by someone")
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published
    assert "stray.txt" not in changed_paths(bare(app), request.branch)
    assert "README.md" not in changed_paths(bare(app), request.branch)


def test_a_missing_target_repo_fails_with_a_clear_error(tmp_path: Path) -> None:
    from devops_automation.forge.github import ForgeError
    from localforge import LocalForge

    with LocalForge(tmp_path / "gh", token="t0ken-for-tests") as github:
        settings = make_settings(
            tmp_path / "home",
            github_api_url=github.base_url,
            github_token="t0ken-for-tests",
            target_repo="acme/missing",
        )
        with pytest.raises(ForgeError, match="target repository acme/missing not found"):
            build_app(settings)


def test_the_store_can_be_postgresql(tmp_path: Path, pg_url: str) -> None:
    app = build_app(make_settings(tmp_path / "home", database_url=pg_url))
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published and app.store.dialect == "postgresql"
    app.close()


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from devops_automation.app import build_app
    from devops_automation.forge.github import GitHubForge
    from devops_automation.settings import Settings
    from tests.helpers import NEW_TEAM_GAP

    def die(self, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies after the push, before the PR

    GitHubForge.ensure_pull_request = die
    settings = Settings(_env_file=None, home=Path(sys.argv[1]), cooldown_seconds=0)
    build_app(settings).engine.submit(NEW_TEAM_GAP)
    """
)


def test_killed_between_push_and_pr_the_rerun_finishes_with_one_branch_and_one_pr(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(home)], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr
    app = build_app(make_settings(home))
    stuck = app.store.get_request_by_gap("gap-d3")
    assert stuck is not None and stuck.state is RequestState.scaffolded and stuck.commit_sha
    pushed = remote_branches(bare(app))
    assert stuck.branch in pushed
    finished = app.engine.submit(NEW_TEAM_GAP).request
    assert finished.state is RequestState.published
    assert remote_branches(bare(app)) == pushed  # same branch, same commit, nothing new
    assert pull_count(app) == 1
    app.close()


def test_pending_lists_what_a_schedule_should_retry(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path / "home", rate_limit_per_day=1))
    done = app.engine.submit(new_gap(1)).request
    limited = app.engine.submit(new_gap(2)).request
    reserved = app.engine.submit(
        CapabilityGap(description="ci takeover", required_skills=["ci"], proposed_name="workflows")
    ).request
    assert done.state is RequestState.published and limited.state is RequestState.refused
    assert [r.id for r in app.engine.pending()] == [limited.id]
    assert reserved.state is RequestState.refused
    app.close()


class CountingReviser:
    """Stands in for the scaffolder agent: returns the spec it is given, optionally renamed."""

    def __init__(self, rename: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.rename = rename

    def revise(self, gap: CapabilityGap, spec: object, errors: list[str]) -> object:
        from devops_automation.drafting.base import Drafted
        from devops_automation.models import LLMUsage

        self.calls.append(errors)
        new = spec.model_copy(update={"name": self.rename}) if self.rename else spec  # type: ignore[attr-defined]
        return Drafted(spec=new, usage=LLMUsage(calls=1, prompt_tokens=100, completion_tokens=50, cost_usd=0.001))


def test_a_failed_validation_is_revised_at_most_twice(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path / "home", kubernetes_version="1.99"))
    reviser = CountingReviser()
    swap(app, reviser=reviser)
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.failed and request.revisions == 2
    assert len(reviser.calls) == 2 and all(any("kubernetes" in e for e in errs) for errs in reviser.calls)
    assert request.llm_usage.calls == 2 and request.llm_usage.prompt_tokens == 200
    app.close()


def test_a_revision_may_not_rename_the_approved_team(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path / "home", kubernetes_version="1.99"))
    swap(app, reviser=CountingReviser(rename="github_takeover"))
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.failed and "may not rename" in (request.error or "")
    assert set(remote_branches(bare(app))) == {"main"}
    app.close()


def test_a_pr_writer_supplies_title_and_summary_inside_the_fixed_body(app: App) -> None:
    from devops_automation.models import LLMUsage, PRText

    class Writer:
        def write(self, request: object, spec: object, files: list[str]) -> tuple[PRText, LLMUsage]:
            return PRText(title="Add d3 team", summary="```\\n</details><script>x</script>"), LLMUsage(calls=1)

    swap(app, pr_writer=Writer())
    request = app.engine.submit(NEW_TEAM_GAP).request
    pr = gh_pull(app, request.pr_number)
    body = pr.body
    assert pr.title == "Add d3 team"
    assert "````text\n```\\n</details><script>x</script>\n````" in body  # fenced: cannot escape
    assert "Tracking id: `" + request.id in body and "LLM use so far: 1 calls" in body
    import urllib.request

    with urllib.request.urlopen(pr.html_url, timeout=5) as page:  # noqa: S310 - the forge on 127.0.0.1
        html_page = page.read().decode()
    assert "<script>x" not in html_page and "&lt;script&gt;x&lt;/script&gt;" in html_page


def test_two_open_requests_may_not_propose_the_same_team(app: App) -> None:
    first = app.engine.submit(
        CapabilityGap(description="refund desk one", required_skills=["refunds"], proposed_name="refund_desk")
    ).request
    second = app.engine.submit(
        CapabilityGap(description="another refund desk", required_skills=["disputes"], proposed_name="refund_desk")
    ).request
    assert first.state is RequestState.published
    assert second.state is RequestState.refused and second.decision.rule == "existing-team"
    assert first.id in second.decision.message and pull_count(app) == 1


def test_a_failed_request_can_be_rejected_and_gives_its_slot_back(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path / "home", kubernetes_version="1.99", rate_limit_per_day=1))
    failed = app.engine.submit(new_gap(1)).request
    assert failed.state is RequestState.failed and len(app.store.ledger()) == 1
    rejected = app.engine.reject(failed.id, by="erin", reason="template broken")
    assert rejected.state is RequestState.rejected and app.store.ledger() == []
    assert app.engine.pending() == []
    app.close()


def test_long_skills_never_collide_as_task_names(app: App) -> None:
    gap = CapabilityGap(
        description="consensus work",
        required_skills=[
            "distributed consensus protocol engineering a",
            "distributed consensus protocol engineering b",
        ],
    )
    request = app.engine.submit(gap).request
    assert request.state is RequestState.published, request.error
    assert len({t.name for t in request.spec.tasks}) == len(request.spec.tasks) == 3


def test_markdown_in_untrusted_cells_cannot_form_links_or_mentions(app: App) -> None:
    gap = NEW_TEAM_GAP.model_copy(update={"requesting_team": "[Approve](https://evil.example/x) @acme/admins"})
    request = app.engine.submit(gap).request
    body = gh_pull(app, request.pr_number).body
    assert "[Approve](" not in body and " @acme" not in body
    assert r"\[Approve\]\(https\:\/\/evil\.example\/x\) \@acme\/admins" in body
