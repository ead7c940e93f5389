"""(c) Failures as PyGithub sees them: bad token, unknown routes, 422s, races, injected faults."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import REPO, TOKEN, ForgeUnderTest, Pusher, git, make_github, write_seed
from github import BadCredentialsException, GithubException, RateLimitExceededException, UnknownObjectException

from localforge import LocalForge


def test_wrong_token_is_bad_credentials(forge: ForgeUnderTest) -> None:
    wrong = make_github(forge, token="not-the-token", retry=None)
    with pytest.raises(BadCredentialsException) as exc:
        wrong.get_repo(REPO)
    assert exc.value.status == 401
    assert exc.value.data["message"] == "Bad credentials"
    assert exc.value.data["documentation_url"].startswith("https://docs.github.com/")


def test_unknown_route_and_unknown_objects_are_404_json(forge: ForgeUnderTest) -> None:
    gh = make_github(forge, retry=None)
    with pytest.raises(UnknownObjectException) as route:
        gh.requester.requestJsonAndCheck("GET", "/repos/acme/teams/frobnicate")
    assert route.value.data == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
        "status": "404",
    }
    with pytest.raises(UnknownObjectException):
        gh.get_repo("acme/missing")
    with pytest.raises(UnknownObjectException):
        gh.get_repo(REPO).get_pull(42)
    with pytest.raises(UnknownObjectException):
        gh.get_repo(REPO).get_contents("no/such/file.yaml")


def test_duplicate_pull_request_is_422(forge: ForgeUnderTest, gh: object, push: Pusher) -> None:
    repo = make_github(forge).get_repo(REPO)
    push("auto/dup", {"dup.txt": "x\n"})
    first = repo.create_pull(base="main", head="auto/dup", title="First")
    with pytest.raises(GithubException) as exc:
        repo.create_pull(base="main", head="auto/dup", title="Second")
    assert exc.value.status == 422
    assert exc.value.data["message"] == "Validation Failed"
    assert exc.value.data["errors"][0]["message"] == "A pull request already exists for acme:auto/dup."
    first.edit(state="closed")  # once closed, a new one may be opened for the same head
    assert repo.create_pull(base="main", head="auto/dup", title="Third").number == first.number + 1


def test_other_pull_request_validation(forge: ForgeUnderTest, push: Pusher) -> None:
    repo = make_github(forge).get_repo(REPO)
    for kwargs, expected in (
        ({"head": "no-such-branch"}, {"resource": "PullRequest", "field": "head", "code": "invalid"}),
        (
            {"head": "main"},
            {"resource": "PullRequest", "code": "custom", "message": "No commits between main and main"},
        ),
        ({"head": "someone-else:main"}, {"resource": "PullRequest", "field": "head", "code": "invalid"}),
    ):
        with pytest.raises(GithubException) as exc:
            repo.create_pull(base="main", title="t", **kwargs)
        assert exc.value.status == 422
        assert exc.value.data["errors"] == [expected]


def test_racing_clients_get_one_pull_request_and_422s(forge: ForgeUnderTest, push: Pusher) -> None:
    push("auto/race", {"race.txt": "go\n"})
    clients = [make_github(forge, retry=None).get_repo(REPO) for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    outcomes: list[object] = []

    def race(repo: object) -> None:
        barrier.wait()
        try:
            outcomes.append(repo.create_pull(base="main", head="auto/race", title="Race").number)  # type: ignore[attr-defined]
        except GithubException as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=race, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes, key=str) == sorted([1] + [422] * (len(clients) - 1), key=str)
    assert [p.number for p in clients[0].get_pulls(state="all")] == [1]


def test_a_502_is_retried_by_pygithub_and_succeeds(forge: ForgeUnderTest, push: Pusher) -> None:
    push("auto/flaky", {"f.txt": "f\n"})
    gh = make_github(forge)  # PyGithub's default GithubRetry
    repo = gh.get_repo(REPO)
    pr = repo.create_pull(base="main", head="auto/flaky", title="Flaky")
    forge.inject_fault("GET", rf"^/repos/{REPO}/pulls/{pr.number}$", 502)
    assert repo.get_pull(pr.number).title == "Flaky"
    tail = [entry for entry in forge.request_log if entry[1] == f"/repos/{REPO}/pulls/{pr.number}"]
    assert [status for _, _, status in tail] == [502, 200]

    no_retry = make_github(forge, retry=None).get_repo(REPO)
    forge.inject_fault("GET", rf"/pulls/{pr.number}$", 502, times=2)
    for _ in range(2):
        with pytest.raises(GithubException) as exc:
            no_retry.get_pull(pr.number)
        assert exc.value.status == 502
    assert no_retry.get_pull(pr.number).number == pr.number
    assert forge.faults.pending() == 0


def test_a_failed_write_changes_nothing(forge: ForgeUnderTest, push: Pusher) -> None:
    push("auto/labels", {"l.txt": "l\n"})
    repo = make_github(forge, retry=None).get_repo(REPO)
    pr = repo.create_pull(base="main", head="auto/labels", title="Labels")
    forge.inject_fault("POST", r"/issues/\d+/labels$", 502)
    with pytest.raises(GithubException):
        pr.add_to_labels("new-team")
    assert list(repo.get_pull(pr.number).get_labels()) == []
    pr.add_to_labels("new-team")
    assert [lb.name for lb in repo.get_pull(pr.number).get_labels()] == ["new-team"]


def test_secondary_rate_limit_with_retry_after(forge: ForgeUnderTest, push: Pusher) -> None:
    push("auto/limited", {"x.txt": "x\n"})
    forge.inject_fault("POST", rf"^/repos/{REPO}/pulls$", 403, retry_after=1)
    repo = make_github(forge).get_repo(REPO)
    started = time.monotonic()
    pr = repo.create_pull(base="main", head="auto/limited", title="Limited")
    assert time.monotonic() - started >= 1.0  # PyGithub honoured Retry-After
    posts = [status for method, path, status in forge.request_log if method == "POST" and path.endswith("/pulls")]
    assert posts == [403, 201]
    assert pr.number == 1 and len(list(repo.get_pulls(state="all"))) == 1

    forge.inject_fault("GET", r"/pulls/1$", 403, retry_after=30)
    with pytest.raises(RateLimitExceededException) as exc:
        make_github(forge, retry=None).get_repo(REPO).get_pull(1)
    assert exc.value.headers.get("retry-after") == "30"
    assert "secondary rate limit" in exc.value.data["message"]

    forge.inject_fault("*", r"/pulls/1$", 429, retry_after=1)
    assert repo.get_pull(1).number == 1  # 429 + Retry-After is retried as well


def test_primary_rate_limit(tmp_path: Path) -> None:
    with LocalForge(tmp_path / "f", token=TOKEN, rate_limit=2) as forge:
        gh = make_github(forge, retry=None)
        gh.get_user().login  # noqa: B018 - one call
        assert gh.rate_limiting[0] == 1
        gh.get_user().login  # noqa: B018
        with pytest.raises(RateLimitExceededException):
            gh.requester.requestJsonAndCheck("GET", "/user")
        assert gh.get_rate_limit().resources.core.remaining == 0


def test_branch_changes_from_git_are_seen(forge: ForgeUnderTest, push: Pusher) -> None:
    repo = make_github(forge).get_repo(REPO)
    first = push("auto/moving", {"a.txt": "1\n"})
    pr = repo.create_pull(base="main", head="auto/moving", title="Moving")
    second = push("auto/moving", {"b.txt": "2\n"}, base="auto/moving")
    again = repo.get_pull(pr.number)
    assert (again.head.sha, again.commits, again.changed_files) == (second, 2, 2)
    assert first != second
    bare = forge.repo_path(REPO)
    assert git("--git-dir", str(bare), "rev-parse", f"refs/pull/{pr.number}/head") == second

    # deleting the head branch with git closes the pull request, as on GitHub
    git("--git-dir", str(bare), "update-ref", "-d", "refs/heads/auto/moving")
    closed = repo.get_pull(pr.number)
    assert (closed.state, closed.merged) == ("closed", False)
    with pytest.raises(GithubException) as exc:
        closed.edit(state="open")
    assert exc.value.status == 422

    # a head that reaches its base by a push counts as merged
    ff = push("auto/ff", {"ff.txt": "ff\n"})
    pr_ff = repo.create_pull(base="main", head="auto/ff", title="Fast-forward")
    git("--git-dir", str(bare), "update-ref", "refs/heads/main", ff)
    merged = repo.get_pull(pr_ff.number)
    assert (merged.state, merged.merged, merged.merge_commit_sha) == ("closed", True, ff)


def test_head_filter_needs_the_owner_prefix(forge: ForgeUnderTest, push: Pusher) -> None:
    repo = make_github(forge).get_repo(REPO)
    push("auto/one", {"1.txt": "1\n"})
    push("auto/two", {"2.txt": "2\n"})
    repo.create_pull(base="main", head="auto/one", title="One")
    repo.create_pull(base="main", head="auto/two", title="Two")
    assert [p.title for p in repo.get_pulls(head="acme:auto/one")] == ["One"]
    assert [p.title for p in repo.get_pulls(head="other:auto/one")] == []
    assert sorted(p.title for p in repo.get_pulls(head="auto/one")) == ["One", "Two"]  # GitHub's trap
    assert [p.title for p in repo.get_pulls(direction="asc")] == ["One", "Two"]


def test_merge_refusals(forge: ForgeUnderTest, push: Pusher) -> None:
    repo = make_github(forge, retry=None).get_repo(REPO)
    sha = push("auto/conflict", {"README.md": "mine\n"})
    push("auto/theirs", {"README.md": "theirs\n"})
    repo.create_pull(base="main", head="auto/theirs", title="Theirs").merge()
    pr = repo.create_pull(base="main", head="auto/conflict", title="Conflict")
    assert repo.get_pull(pr.number).mergeable is False
    assert repo.get_pull(pr.number).mergeable_state == "dirty"
    with pytest.raises(GithubException) as stale:
        pr.merge(sha="0" * 40)
    assert (stale.value.status, stale.value.data["message"]) == (
        409,
        "Head branch was modified. Review and try the merge again.",
    )
    with pytest.raises(GithubException) as conflict:
        pr.merge(sha=sha)
    assert (conflict.value.status, conflict.value.data["message"]) == (405, "Pull Request is not mergeable")
    assert not repo.get_pull(pr.number).merged


def test_reviewer_rules(forge: ForgeUnderTest, push: Pusher) -> None:
    repo = make_github(forge, retry=None).get_repo(REPO)
    push("auto/review", {"r.txt": "r\n"})
    pr = repo.create_pull(base="main", head="auto/review", title="Review")
    with pytest.raises(GithubException) as author:
        pr.create_review_request(reviewers=["devops-crew-bot"])
    assert author.value.data["message"] == "Review cannot be requested from pull request author."
    with pytest.raises(GithubException) as stranger:
        pr.create_review_request(reviewers=["mallory"])
    assert stranger.value.status == 422 and "collaborator" in stranger.value.data["message"]
    with pytest.raises(GithubException):
        pr.create_review_request(team_reviewers=["no-such-team"])
    pr.create_review_request(reviewers=["bob"])
    assert [u.login for u in repo.get_pull(pr.number).requested_reviewers] == ["bob"]


def test_git_smart_http_clone_and_push(forge: ForgeUnderTest, tmp_path: Path) -> None:
    clone = tmp_path / "http-clone"
    git("clone", "--quiet", forge.clone_url(REPO), str(clone))
    assert (clone / "CODEOWNERS").exists()
    (clone / "new.txt").write_text("over http\n")
    git("add", "new.txt", cwd=clone)
    git("commit", "--quiet", "-m", "over http", cwd=clone)
    with pytest.raises(AssertionError, match=r"Authentication|401|could not read Username"):
        git("push", "--quiet", "origin", "HEAD:refs/heads/http-branch", cwd=clone)
    authed = forge.clone_url(REPO).replace("http://", f"http://x-access-token:{TOKEN}@")
    git("push", "--quiet", authed, "HEAD:refs/heads/http-branch", cwd=clone)
    sha = git("rev-parse", "HEAD", cwd=clone)
    assert make_github(forge).get_repo(REPO).get_branch("http-branch").commit.sha == sha
    raw = requests.get(f"{forge.web_url}/{REPO}/raw/{sha}/new.txt", timeout=10)
    assert raw.status_code == 200 and raw.text == "over http\n"


def test_state_survives_a_restart(tmp_path: Path, seed_dir: Path) -> None:
    data = tmp_path / "data"
    with LocalForge(data, token=TOKEN) as first:
        first.create_repo(REPO, seed_from=seed_dir)
        bare = first.repo_path(REPO)
        work = tmp_path / "w"
        git("clone", "--quiet", str(bare), str(work))
        (work / "x.txt").write_text("x\n")
        git("add", "x.txt", cwd=work)
        git("commit", "--quiet", "-m", "x", cwd=work)
        git("push", "--quiet", "origin", "HEAD:refs/heads/auto/x", cwd=work)
        repo = make_github(first).get_repo(REPO)
        repo.create_pull(base="main", head="auto/x", title="Before restart").add_to_labels("kept")
    with LocalForge(data, token="a-new-token") as second:
        assert second.create_repo(REPO) == bare  # idempotent
        repo = make_github(second, token="a-new-token").get_repo(REPO)
        pr = repo.get_pull(1)
        assert (pr.title, [lb.name for lb in pr.labels]) == ("Before restart", ["kept"])
        with pytest.raises(BadCredentialsException):
            make_github(second, retry=None).get_user().login  # noqa: B018 - old tokens are not kept


def test_repository_seeding_modes(tmp_path: Path) -> None:
    seed = write_seed(tmp_path / "plain")
    work = tmp_path / "worktree"
    git("init", "--quiet", "--initial-branch=trunk", str(work))
    (work / "a.txt").write_text("a\n")
    git("add", "a.txt", cwd=work)
    git("commit", "--quiet", "-m", "a", cwd=work)
    bare = tmp_path / "existing.git"
    git("clone", "--quiet", "--bare", str(work), str(bare))
    with LocalForge(tmp_path / "data", token=TOKEN) as forge:
        forge.create_repo("acme/plain", seed_from=seed)
        forge.create_repo("acme/cloned", default_branch="trunk", seed_from=work)
        assert forge.create_repo("acme/adopted", default_branch="trunk", seed_from=bare) == bare.resolve()
        forge.create_repo("devops-crew-bot/empty")
        gh = make_github(forge, retry=None)
        assert gh.get_repo("acme/plain").get_contents("teams/platform/team.yaml").decoded_content.startswith(b"name")
        assert gh.get_repo("acme/cloned").get_branch("trunk").commit.commit.message == "a"
        adopted = gh.get_repo("acme/adopted")
        assert adopted.default_branch == "trunk" and adopted.organization.login == "acme"
        with pytest.raises(GithubException) as empty:
            gh.get_repo("devops-crew-bot/empty").get_contents("README.md")
        assert (empty.value.status, empty.value.data["message"]) == (404, "This repository is empty.")
        with pytest.raises(ValueError):
            forge.create_repo("no-slash")


def test_serve_forever_in_the_foreground_and_stop(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "fg", token=TOKEN)
    ready: list[str] = []
    thread = threading.Thread(target=forge.serve_forever, kwargs={"ready": ready.append}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not ready and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ready and ready[0].startswith("http://127.0.0.1:") and ready[0].endswith("/api/v3")
    assert make_github(forge).get_user().login == "devops-crew-bot"
    with pytest.raises(RuntimeError):
        forge.start()  # one server per forge
    forge.stop()
    thread.join(5)
    assert not thread.is_alive()
    forge.close()


def test_an_interrupt_while_ready_runs_ends_the_server_and_close_returns(tmp_path: Path) -> None:
    """SIGTERM right after the URL is printed (``devops-crew forge serve`` raises KeyboardInterrupt from its
    handler) lands inside ``ready``: the server ends, and closing it must not wait for a loop that never ran."""
    forge = LocalForge(tmp_path / "interrupted", token=TOKEN)

    def interrupted(_url: str) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(KeyboardInterrupt):  # before the fix it escaped here, then close() hung
        forge.serve_forever(ready=interrupted)
    closing = threading.Thread(target=forge.close, daemon=True)
    closing.start()
    closing.join(10)
    assert not closing.is_alive()  # it hung forever in socketserver's shutdown() before


def test_repository_size_is_reread_only_when_its_reading_is_older_than_the_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``size`` (KiB on disk, which GitHub recalculates hourly) is one ``git count-objects`` a minute, not
    one per payload; once the reading is stale, a grown repository reports its new size."""
    import os
    import subprocess

    from localforge import gitrepo

    repo = gitrepo.BareRepo.init(tmp_path / "r.git", "main")
    before = repo.size_kib()
    subprocess.run(
        ["git", "--git-dir", str(repo.path), "hash-object", "-w", "--stdin"],
        input=os.urandom(256 * 1024),
        check=True,
        capture_output=True,
    )
    assert repo.size_kib() == before  # within the TTL: the cached reading
    monkeypatch.setattr(gitrepo, "SIZE_TTL_SECONDS", 0.0)
    assert repo.size_kib() >= before + 200  # stale: read again, and it grew by the 256 KiB blob
