"""(d) Commit statuses, check runs, permissions and branch protection, through PyGithub, raw HTTP and git.

Every response is also checked against GitHub's OpenAPI description by the ``forge`` fixture.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import GIT_ENV, REPO, TOKEN, ForgeUnderTest, Pusher, git, make_github
from github import GithubException, UnknownObjectException
from spec_check import SpecChecker

from localforge import LocalForge

ALICE = "alice-collaborator-token"
ADA = "ada-admin-token"
D_STATUS = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"


class Client:
    """Raw HTTP as one token's user; asserts the status and returns the JSON body."""

    def __init__(self, forge: ForgeUnderTest | LocalForge, token: str = TOKEN) -> None:
        self.base = forge.base_url
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"token {token}", "Accept": "application/vnd.github+json"})

    def __call__(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.session.request(method, self.base + path, timeout=10, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text[:500])
        return response.json() if response.content else None


def _collaborator(forge: ForgeUnderTest) -> Client:
    forge.add_user("alice", token=ALICE)
    return Client(forge, ALICE)


def _push_over_http(
    forge: ForgeUnderTest, tmp_path: Path, token: str, *refspecs: str, clone_name: str = "c"
) -> subprocess.CompletedProcess[str]:
    """Commit a file on top of main in a fresh HTTP clone and push ``refspecs`` with ``token``."""
    work = tmp_path / clone_name
    git("clone", "--quiet", forge.clone_url(REPO), str(work))
    (work / f"{clone_name}.txt").write_text(f"{clone_name}\n")
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "-m", f"change {clone_name}", cwd=work)
    authed = forge.clone_url(REPO).replace("http://", f"http://x-access-token:{token}@")
    return subprocess.run(
        ["git", "push", "--porcelain", authed, *refspecs],
        cwd=work,
        capture_output=True,
        text=True,
        env={**GIT_ENV, "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )


# statuses --------------------------------------------------------------------------------------------------


def test_combined_status_latest_per_context_wins(forge: ForgeUnderTest) -> None:
    gh = make_github(forge)
    repo = gh.get_repo(REPO)
    commit = repo.get_commit("main")
    combined = commit.get_combined_status()
    assert (combined.state, combined.total_count, combined.statuses) == ("pending", 0, [])  # none yet: pending

    made = commit.create_status("pending", target_url="https://ci.example.com/1", description="queued", context="ci")
    assert (made.state, made.context, made.description, made.creator.login) == (
        "pending",
        "ci",
        "queued",
        "devops-crew-bot",
    )
    assert commit.get_combined_status().state == "pending"
    commit.create_status("failure", context="ci")
    assert commit.get_combined_status().state == "failure"
    commit.create_status("success", context="ci")
    assert commit.get_combined_status().state == "success"

    commit.create_status("pending", context="lint")  # a second context: the worst latest one counts
    assert commit.get_combined_status().state == "pending"
    commit.create_status("error", context="lint")
    assert commit.get_combined_status().state == "failure"
    commit.create_status("success", context="LINT")  # contexts compare case-insensitively
    combined = commit.get_combined_status()
    assert (combined.state, combined.total_count, combined.sha) == ("success", 2, commit.sha)
    assert [(s.context, s.state) for s in combined.statuses] == [("ci", "success"), ("LINT", "success")]

    # by branch name, by sha, and the full history newest first
    by_sha = repo.get_commit(commit.sha).get_combined_status()
    assert (by_sha.state, by_sha.total_count) == ("success", 2)
    history = [(s.context, s.state) for s in commit.get_statuses()]
    assert history == [
        ("LINT", "success"),
        ("lint", "error"),
        ("lint", "pending"),
        ("ci", "success"),
        ("ci", "failure"),
        ("ci", "pending"),
    ]
    default = commit.create_status("success")
    assert (default.context, default.description, default.target_url) == ("default", None, None)


def test_set_status_simulates_ci(forge: ForgeUnderTest, push: Pusher) -> None:
    sha = push("feature", {"f.txt": "f\n"})
    assert forge.set_status(REPO, "feature", "pending", context="build") == sha
    call = Client(forge)
    assert call("GET", f"/repos/{REPO}/commits/feature/status", 200)["state"] == "pending"
    forge.set_status(REPO, sha, "failure", context="build", description="2 tests failed")
    body = call("GET", f"/repos/{REPO}/commits/{sha}/status", 200)
    assert (body["state"], body["statuses"][0]["description"]) == ("failure", "2 tests failed")
    assert body["url"] == f"{forge.base_url}/repos/{REPO}/commits/{sha}/status"
    forge.set_status(REPO, sha, "success", context="build")
    assert call("GET", f"/repos/{REPO}/commits/heads%2Ffeature/status", 200)["state"] == "success"
    with pytest.raises(ValueError, match="state must be one of"):
        forge.set_status(REPO, sha, "green")
    with pytest.raises(ValueError, match="no commit"):
        forge.set_status(REPO, "no-such-branch", "success")


def test_status_errors_are_githubs(forge: ForgeUnderTest) -> None:
    """Bodies as GitHub answers them (recorded against github.com)."""
    call = Client(forge)
    main = call("GET", f"/repos/{REPO}/branches/main", 200)["commit"]["sha"]
    url = f"/repos/{REPO}/statuses/{main}"
    bad_state = {
        "resource": "Status",
        "code": "custom",
        "field": "state",
        "message": "state is not included in the list",
    }
    assert call("POST", url, 422, json={"state": "green"}) == {
        "message": "Validation Failed",
        "errors": [bad_state],
        "documentation_url": D_STATUS,
        "status": "422",
    }
    assert call("POST", url, 422, json={})["errors"] == [bad_state]
    missing_context = {"resource": "Status", "code": "missing_field", "field": "context"}
    assert call("POST", url, 422, json={"state": "success", "context": ""})["errors"] == [missing_context]
    tree = call("GET", f"/repos/{REPO}/commits/{main}", 200)["commit"]["tree"]["sha"]
    for sha in ("0" * 40, "not-a-sha", tree, main[:10]):
        body = call("POST", f"/repos/{REPO}/statuses/{sha}", 422, json={"state": "success"})
        assert body["message"] == f"No commit found for SHA: {sha}"
    call("GET", f"/repos/{REPO}/commits/no-such-ref/status", 404)
    call("POST", f"/repos/acme/nope/statuses/{main}", 404, json={"state": "success"})
    assert call("GET", f"/repos/{REPO}/commits/main/statuses", 200) == []


# check runs ------------------------------------------------------------------------------------------------


def test_check_runs(forge: ForgeUnderTest) -> None:
    gh = make_github(forge)
    repo = gh.get_repo(REPO)
    head = repo.get_branch("main").commit.sha
    run = repo.create_check_run("unit", head, status="in_progress", output={"title": "Unit", "summary": "running"})
    assert (run.name, run.status, run.conclusion, run.app.slug) == ("unit", "in_progress", None, "localforge-ci")
    run.edit(conclusion="failure", output={"title": "Unit", "summary": "1 failed"})
    assert (run.status, run.conclusion, run.output.summary) == ("completed", "failure", "1 failed")
    assert repo.get_check_run(run.id).conclusion == "failure"
    forge.set_check_run(REPO, "main", "unit", conclusion="success")  # a re-run
    runs = list(repo.get_commit(head).get_check_runs())
    assert [(r.name, r.conclusion) for r in runs] == [("unit", "success")]  # filter=latest by default
    every = repo.get_commit(head).get_check_runs(filter="all")
    assert every.totalCount == 2
    call = Client(forge)
    call("POST", f"/repos/{REPO}/check-runs", 422, json={"name": "x"})
    call("POST", f"/repos/{REPO}/check-runs", 422, json={"name": "x", "head_sha": head, "status": "done"})
    call("POST", f"/repos/{REPO}/check-runs", 422, json={"name": "x", "head_sha": head, "status": "completed"})
    call("GET", f"/repos/{REPO}/check-runs/99999", 404)


# permissions -----------------------------------------------------------------------------------------------


def test_permissions_depend_on_the_tokens_user(forge: ForgeUnderTest) -> None:
    forge.add_user("alice", token=ALICE)
    forge.add_user("ada", token=ADA, admin=True)
    owner = make_github(forge).get_repo(REPO).permissions
    assert (owner.admin, owner.maintain, owner.push, owner.triage, owner.pull) == (True, True, True, True, True)
    collaborator = make_github(forge, token=ALICE).get_repo(REPO).permissions
    assert (collaborator.admin, collaborator.maintain) == (False, False)
    assert (collaborator.push, collaborator.triage, collaborator.pull) == (True, True, True)
    assert make_github(forge, token=ADA).get_repo(REPO).permissions.admin is True
    forge.create_repo("alice/own")  # a user's own repository: its owner administers it
    assert make_github(forge, token=ALICE).get_repo("alice/own").permissions.admin is True
    forge.add_user("ada", admin=False)  # each call sets the role
    assert make_github(forge, token=ADA).get_repo(REPO).permissions.admin is False


# branch protection -----------------------------------------------------------------------------------------


def test_protection_is_reported(forge: ForgeUnderTest) -> None:
    repo = make_github(forge).get_repo(REPO)
    assert repo.get_branch("main").protected is False
    forge.protect_branch(REPO, "main", ["ci", "lint"])
    branch = repo.get_branch("main")
    assert branch.protected is True
    assert branch.raw_data["protection"]["required_status_checks"]["contexts"] == ["ci", "lint"]
    protection = branch.get_protection()
    assert protection.required_status_checks.contexts == ["ci", "lint"]
    assert protection.enforce_admins is False
    assert branch.get_required_status_checks().contexts == ["ci", "lint"]
    assert [b.name for b in repo.get_branches() if b.protected] == ["main"]
    call = Client(forge)
    assert [b["name"] for b in call("GET", f"/repos/{REPO}/branches", 200, params={"protected": "true"})] == ["main"]
    forge.add_user("alice", token=ALICE)
    alice = make_github(forge, token=ALICE)
    with pytest.raises(UnknownObjectException):  # reading the rules needs admin rights
        alice.get_repo(REPO).get_branch("main").get_protection()
    assert alice.get_repo(REPO).get_branch("main").protected is True
    assert forge.unprotect_branch(REPO, "main") is True
    assert repo.get_branch("main").protected is False


def test_protected_branch_refuses_a_collaborators_push_over_http(forge: ForgeUnderTest, tmp_path: Path) -> None:
    forge.add_user("alice", token=ALICE)
    forge.protect_branch(REPO, "main", ["ci"])
    main_before = make_github(forge).get_repo(REPO).get_branch("main").commit.sha
    pushed = _push_over_http(forge, tmp_path, ALICE, "HEAD:refs/heads/main", "HEAD:refs/heads/alice/topic")
    assert pushed.returncode != 0
    assert "GH006: Protected branch update failed for refs/heads/main." in pushed.stderr
    assert "Changes must be made through a pull request." in pushed.stderr
    assert 'Required status check "ci" is expected.' in pushed.stderr
    assert "[remote rejected] (protected branch hook declined)" in pushed.stdout
    repo = make_github(forge).get_repo(REPO)
    assert repo.get_branch("main").commit.sha == main_before
    assert repo.get_branch("alice/topic").commit.sha != main_before  # the other ref of the push went through


def test_only_protected_branches_go_through_the_push_hook(forge: ForgeUnderTest, tmp_path: Path) -> None:
    """The hook (a Python process per push) sees the protected refs only; other branches are git's alone."""
    forge.add_user("alice", token=ALICE)
    forge.protect_branch(REPO, "main", ["ci"])

    def checked() -> list[list[str]]:
        bodies = [e.request_body for e in forge.exchanges if e.path.startswith("/_localforge/push-check/")]
        return [command[2] for body in bodies for command in json.loads(body)["commands"]]

    topic = _push_over_http(forge, tmp_path, ALICE, "HEAD:refs/heads/alice/topic", clone_name="t")
    assert topic.returncode == 0, topic.stderr
    assert checked() == []  # an unprotected branch: no hook, no question to the forge
    both = _push_over_http(forge, tmp_path, ALICE, "HEAD:refs/heads/main", "HEAD:refs/heads/mainline", clone_name="b")
    assert both.returncode != 0 and "GH006: Protected branch update failed for refs/heads/main." in both.stderr
    assert checked() == ["refs/heads/main"]  # "mainline" only shares a prefix with "main": not asked about
    repo = make_github(forge).get_repo(REPO)
    assert repo.get_branch("mainline").commit.sha != repo.get_branch("main").commit.sha  # pushed; main refused
    forge.protect_branch(REPO, "release")  # a rule added later counts from the next push on
    release = _push_over_http(forge, tmp_path, ALICE, "HEAD:refs/heads/release", clone_name="r")
    assert release.returncode != 0 and "refs/heads/release" in checked()


def test_admins_may_push_but_not_force_or_delete(forge: ForgeUnderTest, tmp_path: Path) -> None:
    forge.protect_branch(REPO, "main")
    repo = make_github(forge).get_repo(REPO)
    main_before = repo.get_branch("main").commit.sha
    ok = _push_over_http(forge, tmp_path, TOKEN, "HEAD:refs/heads/main", clone_name="a")
    assert ok.returncode == 0, ok.stderr
    assert repo.get_branch("main").commit.sha != main_before
    forced = _push_over_http(forge, tmp_path, TOKEN, "+HEAD~2:refs/heads/main", clone_name="b")  # a rewind
    assert forced.returncode != 0 and "Cannot force-push to this branch" in forced.stderr
    deleted = _push_over_http(forge, tmp_path, TOKEN, ":refs/heads/main", clone_name="d")
    assert deleted.returncode != 0 and "Cannot delete this protected branch" in deleted.stderr
    forge.protect_branch(REPO, "main", enforce_admins=True)
    enforced = _push_over_http(forge, tmp_path, TOKEN, "HEAD:refs/heads/main", clone_name="e")
    assert enforced.returncode != 0 and "Changes must be made through a pull request." in enforced.stderr


def test_protected_branch_refuses_ref_updates_over_rest(forge: ForgeUnderTest, push: Pusher) -> None:
    alice = _collaborator(forge)
    owner = Client(forge)
    main = owner("GET", f"/repos/{REPO}/branches/main", 200)["commit"]["sha"]
    ahead = push("ahead", {"a.txt": "a\n"})
    sibling = push("sibling", {"s.txt": "s\n"})
    forge.protect_branch(REPO, "main", ["ci"])
    ref = f"/repos/{REPO}/git/refs/heads/main"
    refused = alice("PATCH", ref, 422, json={"sha": ahead})
    assert refused["message"] == "Changes must be made through a pull request."
    assert alice("DELETE", ref, 422)["message"] == "Cannot delete this protected branch"
    with pytest.raises(GithubException) as exc:
        make_github(forge, token=ALICE).get_repo(REPO).get_git_ref("heads/main").edit(ahead)
    assert exc.value.status == 422
    assert owner("GET", f"/repos/{REPO}/branches/main", 200)["commit"]["sha"] == main
    assert owner("PATCH", ref, 200, json={"sha": ahead})["object"]["sha"] == ahead  # an admin may bypass
    forced = owner("PATCH", ref, 422, json={"sha": sibling, "force": True})
    assert forced["message"] == "Cannot force-push to this branch"
    assert owner("DELETE", ref, 422)["message"] == "Cannot delete this protected branch"
    alice("PATCH", f"/repos/{REPO}/git/refs/heads/ahead", 200, json={"sha": sibling, "force": True})  # unprotected
    forge.protect_branch(REPO, "release")  # a rule may name a branch before it exists
    create = {"ref": "refs/heads/release", "sha": main}
    assert alice("POST", f"/repos/{REPO}/git/refs", 422, json=create)["message"] == (
        "Changes must be made through a pull request."
    )
    owner("POST", f"/repos/{REPO}/git/refs", 201, json=create)


def test_merge_waits_for_the_required_status(forge: ForgeUnderTest, push: Pusher) -> None:
    forge.add_user("alice", token=ALICE)
    forge.protect_branch(REPO, "main", ["ci"])
    head = push("feature", {"f.txt": "f\n"})
    repo = make_github(forge, token=ALICE).get_repo(REPO)
    pr = repo.create_pull(base="main", head="feature", title="Feature")
    assert repo.get_pull(pr.number).mergeable_state == "blocked"
    with pytest.raises(GithubException) as exc:
        pr.merge()
    assert (exc.value.status, exc.value.data["message"]) == (405, 'Required status check "ci" is expected.')
    forge.set_status(REPO, head, "pending")
    forge.set_status(REPO, head, "failure")
    with pytest.raises(GithubException) as exc:
        pr.merge()
    assert (exc.value.status, exc.value.data["message"]) == (405, 'Required status check "ci" is failing.')
    forge.set_status(REPO, head, "success", context="other")  # another context does not help
    with pytest.raises(GithubException):
        pr.merge()
    repo.get_commit(head).create_status("success", context="ci")
    assert repo.get_pull(pr.number).mergeable_state == "clean"
    assert pr.merge().merged is True


def test_required_checks_by_check_run_and_admin_bypass(forge: ForgeUnderTest, push: Pusher) -> None:
    forge.add_user("alice", token=ALICE)
    forge.protect_branch(REPO, "main", ["build", "ci"])
    alice_repo = make_github(forge, token=ALICE).get_repo(REPO)
    owner_repo = make_github(forge).get_repo(REPO)
    first = push("one", {"one.txt": "1\n"})
    pr = alice_repo.create_pull(base="main", head="one", title="One")
    with pytest.raises(GithubException) as exc:
        pr.merge()
    assert exc.value.data["message"] == "2 of 2 required status checks are expected."
    forge.set_check_run(REPO, first, "build", conclusion="success")
    forge.set_status(REPO, first, "success", context="ci")
    assert pr.merge().merged is True

    push("two", {"two.txt": "2\n"}, base="main")
    pr2 = owner_repo.create_pull(base="main", head="two", title="Two")
    assert owner_repo.get_pull(pr2.number).mergeable_state == "clean"  # an admin may bypass the checks
    forge.protect_branch(REPO, "main", ["build", "ci"], enforce_admins=True)
    assert owner_repo.get_pull(pr2.number).mergeable_state == "blocked"
    with pytest.raises(GithubException) as exc:
        owner_repo.get_pull(pr2.number).merge()
    assert exc.value.status == 405
    forge.protect_branch(REPO, "main", ["build", "ci"])
    assert owner_repo.get_pull(pr2.number).merge().merged is True


def test_protection_and_statuses_survive_a_restart(tmp_path: Path, seed_dir: Path) -> None:
    data = tmp_path / "data"
    with LocalForge(data, token=TOKEN) as first:
        first.create_repo(REPO, seed_from=seed_dir)
        first.protect_branch(REPO, "main", ["ci"])
        sha = first.set_status(REPO, "main", "failure")
    with LocalForge(data, token=TOKEN) as second:
        repo = make_github(second).get_repo(REPO)
        assert repo.get_branch("main").protected is True
        assert repo.get_commit(sha).get_combined_status().state == "failure"


# conformance -----------------------------------------------------------------------------------------------

REQUIRED = {
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}", 201),
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}", 422),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/status", 200),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/status", 404),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses", 200),
    ("POST", "/repos/{owner}/{repo}/check-runs", 201),
    ("POST", "/repos/{owner}/{repo}/check-runs", 422),
    ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", 200),
    ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", 200),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", 200),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}", 200),
    ("GET", "/repos/{owner}/{repo}/branches", 200),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection", 200),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection", 404),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks", 200),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks", 404),
    ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}", 422),
    ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}", 422),
    ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", 405),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 200),
    ("GET", "/repos/{owner}/{repo}", 200),
}


def test_ci_endpoints_match_githubs_schema(forge: ForgeUnderTest, push: Pusher, spec_checker: SpecChecker) -> None:
    call, alice = Client(forge), _collaborator(forge)
    r = f"/repos/{REPO}"
    head = push("auto/ci", {"teams/ci/team.yaml": "name: ci\n"})
    forge.protect_branch(REPO, "main", ["ci"])
    status = {"state": "pending", "target_url": "https://ci.example.com/7", "description": "running", "context": "ci"}
    call("POST", f"{r}/statuses/{head}", 201, json=status)
    call("POST", f"{r}/statuses/{head}", 422, json={"state": "nope"})
    call("POST", f"{r}/statuses/{'0' * 40}", 422, json={"state": "success"})
    call("GET", f"{r}/commits/auto%2Fci/status", 200)
    call("GET", f"{r}/commits/{head}/statuses", 200)
    call("GET", f"{r}/commits/nope/status", 404)
    run = call("POST", f"{r}/check-runs", 201, json={"name": "build", "head_sha": head, "details_url": "https://ci/x"})
    call("POST", f"{r}/check-runs", 422, json={"head_sha": head})
    call("PATCH", f"{r}/check-runs/{run['id']}", 200, json={"conclusion": "success", "output": {"title": "ok"}})
    call("GET", f"{r}/check-runs/{run['id']}", 200)
    call("GET", f"{r}/commits/{head}/check-runs", 200)
    call("GET", f"{r}/branches/main", 200)
    call("GET", f"{r}/branches", 200, params={"protected": "true"})
    call("GET", f"{r}/branches/main/protection", 200)
    call("GET", f"{r}/branches/main/protection/required_status_checks", 200)
    call("GET", f"{r}/branches/auto%2Fci/protection", 404)
    alice("GET", f"{r}/branches/main/protection", 404)
    forge.protect_branch(REPO, "main")
    call("GET", f"{r}/branches/main/protection/required_status_checks", 404)
    forge.protect_branch(REPO, "main", ["ci"])
    alice("PATCH", f"{r}/git/refs/heads/main", 422, json={"sha": head})
    alice("DELETE", f"{r}/git/refs/heads/main", 422)
    alice("GET", r, 200)
    pr = alice("POST", f"{r}/pulls", 201, json={"title": "CI", "head": "auto/ci", "base": "main"})
    assert alice("GET", f"{r}/pulls/{pr['number']}", 200)["mergeable_state"] == "blocked"
    alice("PUT", f"{r}/pulls/{pr['number']}/merge", 405, json={})
    call("POST", f"{r}/statuses/{head}", 201, json={**status, "state": "success"})
    alice("PUT", f"{r}/pulls/{pr['number']}/merge", 200, json={})

    seen = {(ex.method, ex.route, ex.status) for ex in forge.exchanges}
    missing = REQUIRED - seen
    assert not missing, f"the tour did not exercise: {sorted(missing)}"
    problems = [p for ex in forge.exchanges for p in spec_checker.check(ex)]
    assert not problems, "\n".join(problems)


def test_the_check_run_allowance_is_githubs_own_example(spec_checker: SpecChecker) -> None:
    """The one allow-list entry for check runs hides a flaw of GitHub's schema, not of the forge."""
    example = spec_checker.spec["components"]["examples"]["check-run-example-of-in-progress-conclusion"]["value"]
    errors = [e.message for e in spec_checker._component_errors("check-run", example)]
    assert errors == [
        "None is not one of ['success', 'failure', 'neutral', 'cancelled', 'skipped', 'timed_out', 'action_required']"
    ]
