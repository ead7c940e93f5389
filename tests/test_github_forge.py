"""GitHub mode: the same PyGithub client against a GitHub-shaped server on 127.0.0.1 (the local forge
run as a stand-in for github.com), with faults injected at the HTTP boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_automation.app import App, build_app
from devops_automation.forge.codeowners import reviewers_for
from devops_automation.forge.github import BroadTokenError
from devops_automation.models import RequestState
from devops_automation.registry import SEED_DIR
from localforge import LocalForge

from .conftest import make_settings
from .helpers import NEW_TEAM_GAP, gh_pull, new_gap

TOKEN = "ghp_" + "A1b2C3d4" * 5  # shaped like a real GitHub token

pytestmark = pytest.mark.slow


@pytest.fixture
def github(tmp_path: Path) -> Iterator[LocalForge]:
    with LocalForge(tmp_path / "github", token=TOKEN, owner_login="crew-bot") as forge:
        forge.create_repo("acme/teams", seed_from=SEED_DIR)
        yield forge


def github_app(tmp_path: Path, github: LocalForge, **overrides: object) -> App:
    values: dict[str, object] = {
        "github_api_url": github.base_url,
        "github_token": TOKEN,
        "target_repo": "acme/teams",
        "allow_broad_token": True,
        "retry_max_wait_seconds": 2,
    }
    values.update(overrides)
    return build_app(make_settings(tmp_path / "home", **values))


def posts(github: LocalForge, path_fragment: str) -> int:
    return sum(1 for method, path, _ in github.request_log if method == "POST" and path_fragment in path)


def test_github_mode_publishes_and_the_token_never_leaks(tmp_path: Path, github: LocalForge) -> None:
    app = github_app(tmp_path, github)
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error
    pr = gh_pull(app, request.pr_number)
    assert pr.head.ref == request.branch and pr.html_url.startswith(github.web_url)
    assert "GitHub (" in app.forge.label
    rows = "\n".join(r.target + r.detail for r in app.store.iter_audit())
    assert TOKEN not in rows
    git_config = (app.settings.checkout_dir / ".git" / "config").read_text()
    assert TOKEN not in git_config and "x-access-token" not in git_config
    app.close()


def test_transient_failures_are_retried_with_backoff(tmp_path: Path, github: LocalForge) -> None:
    github.inject_fault("POST", r"/repos/acme/teams/pulls$", 502, times=2)
    github.inject_fault(
        "POST",
        r"/issues/\d+/labels",
        403,
        times=1,
        retry_after=1,
        body={"message": "You have exceeded a secondary rate limit."},
    )
    app = github_app(tmp_path, github)
    request = app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error
    assert posts(github, "/repos/acme/teams/pulls") == 3  # two 502s, then the PR
    assert posts(github, "/labels") == 2  # the rate-limited call, then the retry after Retry-After
    assert app.forge.repo.get_pulls(state="all").totalCount == 1
    app.close()


def test_a_4xx_that_will_not_change_is_not_retried(tmp_path: Path, github: LocalForge) -> None:
    github.inject_fault("POST", r"/repos/acme/teams/pulls$", 404, times=1)
    app = github_app(tmp_path, github)
    failed = app.engine.submit(NEW_TEAM_GAP).request
    assert failed.state is RequestState.failed and "404" in (failed.error or "")
    assert posts(github, "/repos/acme/teams/pulls") == 1
    finished = app.engine.run(failed.id)  # the fault is gone: resuming finishes the request
    assert finished.state is RequestState.published
    assert app.forge.repo.get_pulls(state="all").totalCount == 1
    app.close()


def test_token_scope_is_checked_at_start(tmp_path: Path, github: LocalForge) -> None:
    with pytest.raises(BroadTokenError, match="administer acme/teams"):
        github_app(tmp_path, github, allow_broad_token=False)  # the owner's token
    github_app(tmp_path, github, allow_broad_token=True).close()
    collaborator = "ghp_" + "Z9y8X7w6" * 5
    github.add_user("crew-collaborator", token=collaborator)
    with pytest.raises(BroadTokenError, match="main is not protected"):
        github_app(tmp_path, github, allow_broad_token=False, github_token=collaborator)
    github.protect_branch("acme/teams", "main")
    app = github_app(tmp_path, github, allow_broad_token=False, github_token=collaborator)
    request = app.engine.submit(NEW_TEAM_GAP).request  # a narrow token still does the whole job
    assert request.state is RequestState.published, request.error
    app.close()


RACE_SCRIPT = """
import json, sys
from devops_automation.cli import main
sys.exit(main(["request", "racing gap for kotlin apps", "--skill", "kotlin", "--name", "kotlin_apps",
               "--gap-id", "race-1", "--json", "-q"]))
"""


def test_two_processes_racing_on_one_gap_make_one_pr(tmp_path: Path, github: LocalForge) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "GITHUB_"))}
    env.update(
        DEVOPS_CREW_HOME=str(tmp_path / "home"),
        GITHUB_API_URL=github.base_url,
        GITHUB_TOKEN=TOKEN,
        TARGET_REPO="acme/teams",
        DEVOPS_CREW_ALLOW_BROAD_TOKEN="true",
        DEVOPS_CREW_COOLDOWN_SECONDS="0",
    )
    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_SCRIPT],
            env=env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    summaries = [json.loads(out)["request"] for out, _ in outputs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    assert summaries[0]["id"] == summaries[1]["id"]
    assert summaries[0]["pull_request"] == summaries[1]["pull_request"]
    assert sum(1 for s in summaries if s["duplicate"]) == 1
    assert posts(github, "/repos/acme/teams/pulls") == 1


def test_codeowners_last_matching_rule_wins() -> None:
    text = """
    # comment
    *            @acme/everyone
    /teams/      @acme/platform-team @alice
    /teams/payments/ @bob
    /k8s/        @acme/sre @other-org/ignored
    """
    reviewers = reviewers_for(text, ["teams/new_team/team.yaml", "k8s/teams/new_team/deployment.yaml"], "acme")
    assert reviewers.users == ["alice"]
    assert reviewers.teams == ["platform-team", "sre"]
    assert reviewers_for(text, ["teams/payments/x.py"], "acme").users == ["bob"]


def test_a_second_installation_adopts_the_branch_and_pr_of_the_first(tmp_path: Path, github: LocalForge) -> None:
    """Two state stores (two pods, or a lost store) against one GitHub: the forge is the truth."""
    first = github_app(tmp_path / "one", github)
    published = first.engine.submit(NEW_TEAM_GAP).request
    first.close()
    second = github_app(tmp_path / "two", github)
    again = second.engine.submit(NEW_TEAM_GAP).request
    assert again.id != published.id  # a different store knows nothing of the first request...
    assert again.state is RequestState.published
    assert (again.branch, again.pr_number) == (published.branch, published.pr_number)  # ...the forge does
    assert posts(github, "/repos/acme/teams/pulls") == 1
    assert "publish.adopt_branch" in [r.action for r in second.store.iter_audit(again.id)]
    second.close()


def test_github_rate_limit_rules_are_followed(tmp_path: Path, github: LocalForge) -> None:
    """GitHub's documented rules: a secondary limit without Retry-After waits at least a minute (longer than
    this worker may block: the step fails at once, resumable, saying when); a primary limit
    (x-ratelimit-remaining: 0) waits until x-ratelimit-reset."""
    import time
    from datetime import UTC, datetime

    github.inject_fault(
        "POST", r"/repos/acme/teams/pulls$", 403, times=1, body={"message": "You have exceeded a secondary rate limit."}
    )
    app = github_app(tmp_path, github)
    started = time.monotonic()
    failed = app.engine.submit(NEW_TEAM_GAP).request
    assert time.monotonic() - started < 10
    assert failed.state is RequestState.failed and "rate limited: retry after" in (failed.error or ""), failed.error
    assert posts(github, "/repos/acme/teams/pulls") == 1  # not hammered with retries 0.2 s apart

    reset = int(time.time()) + 2
    github.inject_fault(
        "POST",
        r"/repos/acme/teams/pulls$",
        403,
        times=1,
        body={"message": "API rate limit exceeded for user ID 1."},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset), "x-ratelimit-limit": "5000"},
    )
    started = time.monotonic()
    finished = app.engine.run(failed.id)
    assert finished.state is RequestState.published, finished.error
    assert time.time() >= reset and time.monotonic() - started < 10  # waited for the reset, not a minute
    assert posts(github, "/repos/acme/teams/pulls") == 3

    far = int(time.time()) + 3600
    github.inject_fault(
        "GET",
        r"/pulls/\d+$",
        403,
        times=1,
        body={"message": "API rate limit exceeded for user ID 1."},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(far)},
    )
    from devops_automation.errors import ForgeError

    with pytest.raises(ForgeError) as refused:
        app.forge.get_pull_request(finished.pr_number or 0)
    lifts = datetime.fromtimestamp(far + 1, UTC).strftime("%Y-%m-%dT%H:%M")
    assert lifts in str(refused.value) and refused.value.status == 403
    app.close()


def test_rate_limit_wait_reads_each_header() -> None:
    from github import GithubException

    from devops_automation.forge.github import rate_limit_wait

    def exc(status: int, headers: dict[str, str], message: str = "") -> GithubException:
        return GithubException(status, {"message": message}, headers)

    assert rate_limit_wait(exc(403, {"Retry-After": "7"}), 1, 0) == 7
    assert rate_limit_wait(exc(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "100"}), 1, 40) == 61
    assert rate_limit_wait(exc(429, {}), 1, 0) == 60 and rate_limit_wait(exc(429, {}), 3, 0) == 240
    assert rate_limit_wait(exc(403, {}, "You have exceeded a secondary rate limit"), 2, 0) == 120
    assert rate_limit_wait(exc(403, {}, "Resource not accessible by integration"), 1, 0) is None
    assert rate_limit_wait(exc(404, {"Retry-After": "1"}), 1, 0) is None


def test_codeowners_reviewers_are_read_beside_the_tests_once_per_base_commit(
    tmp_path: Path, github: LocalForge
) -> None:
    """The pull request's CODEOWNERS reviewers are read while the generated team's tests run, at the commit
    the branch was built on (audited ``forge.read_codeowners``, before the push), and a base commit's file is
    read once: the second request on the same base asks the forge nothing about CODEOWNERS. The branch the
    staged push just created has no pull request to look for, so none is looked for before it is opened."""
    from git import Repo

    github.add_user("alice", token="ghp_" + "alice123" * 5)
    work = Repo.clone_from(github.repo_path("acme/teams"), tmp_path / "owner-clone")
    (tmp_path / "owner-clone" / ".github").mkdir(exist_ok=True)
    (tmp_path / "owner-clone" / ".github" / "CODEOWNERS").write_text("/teams/ @alice\n")
    work.git.add(A=True)
    work.git.commit("-m", "CODEOWNERS", "--author", "Owner <o@example.com>")
    work.git.push("origin", "main")
    app = github_app(tmp_path, github)
    try:
        first = app.engine.submit(NEW_TEAM_GAP).request
        assert first.state is RequestState.published, first.error
        assert [r.login for r in gh_pull(app, first.pr_number).get_review_requests()[0]] == ["alice"]
        rows = [(r.action, r.phase) for r in app.store.iter_audit(first.id)]
        read = rows.index(("forge.read_codeowners", "succeeded"))
        assert read < rows.index(("git.push", "initiated")), rows
        log = github.request_log
        opened = next(i for i, (method, path, _) in enumerate(log) if method == "POST" and path.endswith("/pulls"))
        assert not [entry for entry in log[:opened] if entry[0] == "GET" and entry[1].endswith("/pulls")]

        contents_before = sum(1 for _, path, _ in github.request_log if "/contents/" in path)
        second = app.engine.submit(new_gap(2)).request
        assert second.state is RequestState.published, second.error
        assert sum(1 for _, path, _ in github.request_log if "/contents/" in path) == contents_before
        assert [r.login for r in gh_pull(app, second.pr_number).get_review_requests()[0]] == ["alice"]
        # The audit says which read asked the forge and which was answered from the cache.
        cached = [
            json.loads(r.detail)["cached"]
            for request in (first, second)
            for r in app.store.iter_audit(request.id)
            if (r.action, r.phase) == ("forge.read_codeowners", "succeeded")
        ]
        assert cached == [False, True]
    finally:
        app.close()


def test_reviewers_are_read_again_when_the_base_moved_after_the_stage(
    tmp_path: Path, github: LocalForge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CODEOWNERS changes on the base branch between the stage (reviewers read: alice) and the push: the
    staged commit is not pushed, the publish builds on the new base and requests the reviewers the new
    CODEOWNERS names (bob), not the ones read beside the tests."""
    from functools import partial

    from git import Repo

    from devops_automation.engine import Hooks

    for login in ("alice", "bob"):
        github.add_user(login)
    work = Repo.clone_from(github.repo_path("acme/teams"), tmp_path / "owner-clone")
    codeowners = tmp_path / "owner-clone" / ".github" / "CODEOWNERS"
    codeowners.parent.mkdir(exist_ok=True)

    def set_owner(login: str) -> None:
        codeowners.write_text(f"/teams/ @{login}\n")
        work.git.add(A=True)
        work.git.commit("-m", f"CODEOWNERS: {login}", "--author", "Owner <o@example.com>")
        work.git.push("origin", "main")

    set_owner("alice")

    def on_step(step: str, *_: object) -> None:
        if step == "approved_by_policy":  # the render, its tests and the stage are done; the push is next
            set_owner("bob")

    settings = make_settings(
        tmp_path / "home",
        github_api_url=github.base_url,
        github_token=TOKEN,
        target_repo="acme/teams",
        allow_broad_token=True,
    )
    app = build_app(settings, hooks=Hooks(on_step=on_step))
    monkeypatch.setattr(app.target, "push_staged", partial(app.target.push_staged, fresh_for=0.0))  # look again
    try:
        request = app.engine.submit(NEW_TEAM_GAP).request
        assert request.state is RequestState.published, request.error
        rows = [(r.action, r.phase) for r in app.store.iter_audit(request.id)]
        assert ("forge.read_codeowners", "succeeded") in rows and ("publish.staged_push_abandoned", "recorded") in rows
        assert [r.login for r in gh_pull(app, request.pr_number).get_review_requests()[0]] == ["bob"]
    finally:
        app.close()
