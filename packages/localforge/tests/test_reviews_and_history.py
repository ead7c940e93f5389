"""(e) A reviewer's endpoints: reviews and the merge rules they feed, drafts, protection written over REST,
diffs and patches, history, routing of commit sub-paths, repository lists, labels, issues, HEAD and raw
contents, and the pull request's web page.

Every response is also checked against GitHub's OpenAPI description by the ``forge`` fixture, and the
tour below must produce each (method, route, status) of :data:`REQUIRED`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import REPO, TOKEN, ForgeUnderTest, Pusher, make_github
from github import GithubException
from spec_check import SpecChecker
from test_ci_and_protection import _push_over_http

from localforge import LocalForge

ALICE = "alice-reviewer-token"
BOB = "bob-reviewer-token"
R = f"/repos/{REPO}"
PROTECT = {
    "required_status_checks": {"strict": False, "contexts": ["ci"]},
    "enforce_admins": True,
    "required_pull_request_reviews": {"required_approving_review_count": 1, "dismiss_stale_reviews": True},
    "restrictions": None,
}

REQUIRED = {
    ("GET", "/user/repos", 200),
    ("GET", "/orgs/{org}/repos", 200),
    ("GET", "/repos/{owner}/{repo}/labels", 200),
    ("POST", "/repos/{owner}/{repo}/labels", 201),
    ("POST", "/repos/{owner}/{repo}/labels", 422),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}", 200),
    ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}", 200),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", 200),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", 200),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", 422),
    ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/dismissals", 200),
    ("DELETE", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", 200),
    ("PUT", "/repos/{owner}/{repo}/branches/{branch}/protection", 200),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection", 200),
    ("DELETE", "/repos/{owner}/{repo}/branches/{branch}/protection", 204),
    ("GET", "/repos/{owner}/{repo}/commits", 200),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}", 200),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-suites", 200),
    ("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls", 200),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", 200),
    ("GET", "/repos/{owner}/{repo}/compare/{basehead}", 200),
    ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", 405),
}


class Client:
    """Raw HTTP as one token's user; asserts the status and returns the body (JSON, or text)."""

    def __init__(self, forge: ForgeUnderTest | LocalForge, token: str = TOKEN) -> None:
        self.base = forge.base_url
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"token {token}", "Accept": "application/vnd.github+json"})

    def __call__(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.session.request(method, self.base + path, timeout=10, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text[:500])
        if "json" in response.headers.get("Content-Type", ""):
            return response.json() if response.content else None
        return response.text


def _people(forge: ForgeUnderTest) -> tuple[Client, Client, Client]:
    forge.add_user("alice", token=ALICE)
    forge.add_user("bob", token=BOB)
    return Client(forge), Client(forge, ALICE), Client(forge, BOB)


def _pull(call: Client, push: Pusher, branch: str, files: dict[str, str | None], **extra: Any) -> tuple[int, str]:
    sha = push(branch, files)
    pr = call("POST", f"{R}/pulls", 201, json={"title": f"Add {branch}", "head": branch, "base": "main", **extra})
    return pr["number"], sha


def test_reviews_gate_merges_and_drafts_are_refused(forge: ForgeUnderTest, push: Pusher) -> None:
    crew, alice, bob = _people(forge)
    assert (
        crew("PUT", f"{R}/branches/main/protection", 200, json=PROTECT)["required_pull_request_reviews"][
            "required_approving_review_count"
        ]
        == 1
    )
    draft, _ = _pull(crew, push, "auto/draft", {"d.txt": "d\n"}, draft=True)
    forge.set_status(REPO, "auto/draft", "success")
    refused = crew("PUT", f"{R}/pulls/{draft}/merge", 405, json={})
    assert refused["message"] == "Pull Request is still a draft"

    n, sha = _pull(crew, push, "auto/team", {"teams/new/team.yaml": "name: new\n"})
    own = crew("POST", f"{R}/pulls/{n}/reviews", 422, json={"event": "APPROVE"})
    assert own["errors"] == ["Can not approve your own pull request"]
    crew("POST", f"{R}/pulls/{n}/reviews", 422, json={"event": "REQUEST_CHANGES", "body": "no"})
    alice("POST", f"{R}/pulls/{n}/reviews", 422, json={"event": "COMMENT"})  # a comment needs a body
    assert crew("PUT", f"{R}/pulls/{n}/merge", 405, json={})["message"] == (
        "At least 1 approving review is required by reviewers with write access."
    )
    crew("POST", f"{R}/pulls/{n}/requested_reviewers", 201, json={"reviewers": ["alice", "bob"]})
    changes = bob("POST", f"{R}/pulls/{n}/reviews", 200, json={"event": "REQUEST_CHANGES", "body": "Rename it."})
    assert (changes["state"], changes["commit_id"], changes["user"]["login"]) == ("CHANGES_REQUESTED", sha, "bob")
    assert [u["login"] for u in crew("GET", f"{R}/pulls/{n}/requested_reviewers", 200)["users"]] == ["alice"]
    approval = alice("POST", f"{R}/pulls/{n}/reviews", 200, json={"event": "APPROVE", "body": "LGTM"})
    assert crew("GET", f"{R}/pulls/{n}", 200)["mergeable_state"] == "blocked"
    assert crew("PUT", f"{R}/pulls/{n}/merge", 405, json={})["message"].startswith("Changes were requested")
    dismissed = crew(
        "PUT",
        f"{R}/pulls/{n}/reviews/{changes['id']}/dismissals",
        200,
        json={"message": "Renamed.", "event": "DISMISS"},
    )
    assert dismissed["state"] == "DISMISSED"
    crew("PUT", f"{R}/pulls/{n}/reviews/{changes['id']}/dismissals", 422, json={"message": "again"})
    assert crew("PUT", f"{R}/pulls/{n}/merge", 405, json={})["message"] == 'Required status check "ci" is expected.'
    forge.set_status(REPO, sha, "success")
    states = [r["state"] for r in crew("GET", f"{R}/pulls/{n}/reviews", 200)]
    assert states == ["DISMISSED", "APPROVED"]
    assert crew("GET", f"{R}/pulls/{n}/reviews/{approval['id']}", 200)["body"] == "LGTM"

    # A push after the approval makes it stale (dismiss_stale_reviews): the new head needs its own.
    moved = push("auto/team", {"teams/new/team.yaml": "name: new\nowner: alice\n"}, base="auto/team")
    forge.set_status(REPO, moved, "success")
    assert crew("PUT", f"{R}/pulls/{n}/merge", 405, json={})["message"].startswith("At least 1 approving review")
    alice("POST", f"{R}/pulls/{n}/reviews", 200, json={"event": "APPROVE"})
    merged = crew("PUT", f"{R}/pulls/{n}/merge", 200, json={"sha": moved})
    assert merged["merged"] is True


def test_protection_written_over_rest_holds_for_pushes_and_can_be_removed(
    forge: ForgeUnderTest, tmp_path: Path
) -> None:
    crew, alice, _ = _people(forge)
    alice("PUT", f"{R}/branches/main/protection", 404, json=PROTECT)  # only admins write protection
    crew("PUT", f"{R}/branches/main/protection", 422, json={"enforce_admins": True})
    body = crew("PUT", f"{R}/branches/main/protection", 200, json=PROTECT)
    assert body["enforce_admins"]["enabled"] and body["required_status_checks"]["contexts"] == ["ci"]
    assert body["allow_force_pushes"] == {"enabled": False} and body["allow_deletions"] == {"enabled": False}
    assert crew("GET", f"{R}/branches/main/protection", 200)["required_pull_request_reviews"]["dismiss_stale_reviews"]
    pushed = _push_over_http(forge, tmp_path, TOKEN, "HEAD:main")  # even the admin: enforce_admins
    assert pushed.returncode != 0 and "Changes must be made through a pull request." in pushed.stderr
    crew("DELETE", f"{R}/branches/main/protection", 204)
    crew("DELETE", f"{R}/branches/main/protection", 404)
    assert _push_over_http(forge, tmp_path, TOKEN, "HEAD:main", clone_name="d").returncode == 0


def test_diffs_patches_and_history(forge: ForgeUnderTest, push: Pusher) -> None:
    crew, _, _ = _people(forge)
    first = push("auto/hist", {"a.txt": "one\n"}, message="first change")
    second = push("auto/hist", {"a.txt": "one\ntwo\n", "b.txt": "b\n"}, base="auto/hist", message="second change")
    n = crew("POST", f"{R}/pulls", 201, json={"title": "History", "head": "auto/hist", "base": "main"})["number"]
    diff = crew("GET", f"{R}/pulls/{n}", 200, headers={"Accept": "application/vnd.github.diff"})
    assert diff.startswith("diff --git a/a.txt b/a.txt") and "+two" in diff and "b/b.txt" in diff
    patch = crew("GET", f"{R}/pulls/{n}", 200, headers={"Accept": "application/vnd.github.v3.patch"})
    assert patch.startswith(f"From {first} ") and f"From {second} " in patch and "Subject: [PATCH 2/2] second" in patch
    web = forge.web_url
    pull = crew("GET", f"{R}/pulls/{n}", 200)
    assert requests.get(pull["diff_url"], timeout=10).text == diff
    assert requests.get(pull["patch_url"], timeout=10).text == patch
    assert requests.get(f"{web}/{REPO}/pull/999.diff", timeout=10).status_code == 404

    commit = crew("GET", f"{R}/commits/{second}", 200)
    assert commit["stats"] == {"total": 2, "additions": 2, "deletions": 0}
    assert sorted(f["filename"] for f in commit["files"]) == ["a.txt", "b.txt"]
    one = crew("GET", f"{R}/commits/{second}", 200, headers={"Accept": "application/vnd.github.diff"})
    assert one.startswith("diff --git") and "+two" in one and "+one" not in one
    assert crew("GET", f"{R}/commits/auto/hist", 200, headers={"Accept": "application/vnd.github.sha"}) == second

    listed = requests.get(
        forge.base_url + f"{R}/commits",
        params={"sha": "auto/hist", "per_page": 1},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=10,
    )
    assert [c["sha"] for c in listed.json()] == [second] and 'rel="next"' in listed.headers["Link"]
    everything = crew("GET", f"{R}/commits", 200, params={"sha": "auto/hist", "per_page": 100})
    assert [c["sha"] for c in everything][:2] == [second, first] and len(everything) == 3
    assert [c["sha"] for c in crew("GET", f"{R}/commits", 200, params={"sha": "auto/hist", "path": "b.txt"})] == [
        second
    ]
    crew("GET", f"{R}/commits", 404, params={"sha": "no-such-branch"})
    assert [c["sha"] for c in crew("GET", f"{R}/pulls/{n}/commits", 200)] == [first, second]
    compared = crew("GET", f"{R}/compare/main...auto/hist", 200)
    assert (compared["status"], compared["ahead_by"], compared["behind_by"], compared["total_commits"]) == (
        "ahead",
        2,
        0,
        2,
    )
    assert [c["sha"] for c in compared["commits"]] == [first, second] and len(compared["files"]) == 2
    assert crew("GET", f"{R}/compare/auto/hist...main", 200)["status"] == "behind"
    assert crew("GET", f"{R}/compare/main...auto/hist", 200, headers={"Accept": "application/vnd.github.diff"}) == diff
    crew("GET", f"{R}/compare/main...nope", 404)


def test_commit_sub_paths_are_not_refs(forge: ForgeUnderTest, push: Pusher) -> None:
    crew, _, _ = _people(forge)
    assert crew("GET", f"{R}/commits/main/check-suites", 200) == {"total_count": 0, "check_suites": []}
    sha = push("auto/ci", {"c.txt": "c\n"})
    n = crew("POST", f"{R}/pulls", 201, json={"title": "CI", "head": "auto/ci", "base": "main"})["number"]
    forge.set_check_run(REPO, sha, "build", conclusion=None)
    suites = crew("GET", f"{R}/commits/auto/ci/check-suites", 200)
    assert suites["total_count"] == 1 and suites["check_suites"][0]["status"] == "in_progress"
    forge.set_check_run(REPO, sha, "build", conclusion="success")
    suite = crew("GET", f"{R}/commits/{sha}/check-suites", 200)["check_suites"][0]
    assert (suite["status"], suite["conclusion"], suite["head_branch"]) == ("completed", "success", "auto/ci")
    assert [p["number"] for p in crew("GET", f"{R}/commits/{sha}/pulls", 200)] == [n]
    assert crew("GET", f"{R}/commits/{sha}/comments", 200) == []
    assert [b["name"] for b in crew("GET", f"{R}/commits/{sha}/branches-where-head", 200)] == ["auto/ci"]


def test_repositories_labels_issues_head_and_raw(forge: ForgeUnderTest, push: Pusher) -> None:
    crew, alice, _ = _people(forge)
    forge.create_repo("devops-crew-bot/own")
    assert [r["full_name"] for r in alice("GET", "/user/repos", 200)] == ["acme/teams", "devops-crew-bot/own"]
    mine = crew("GET", "/user/repos", 200, params={"type": "owner"})
    assert [r["full_name"] for r in mine] == ["devops-crew-bot/own"] and mine[0]["permissions"]["admin"]
    assert [r["full_name"] for r in alice("GET", "/orgs/acme/repos", 200)] == ["acme/teams"]
    alice("GET", "/orgs/devops-crew-bot/repos", 404)  # a user, not an organisation

    made = crew("POST", f"{R}/labels", 201, json={"name": "risk:high", "color": "#B60205", "description": "Careful"})
    assert (made["color"], made["archived_at"], made["archived_by"]) == ("b60205", None, None)
    crew("POST", f"{R}/labels", 422, json={"name": "RISK:HIGH"})
    crew("POST", f"{R}/labels", 422, json={"name": "x", "color": "red"})
    assert crew("GET", f"{R}/labels/risk:high", 200)["description"] == "Careful"

    n, _ = _pull(crew, push, "auto/issue", {"i.txt": "i\n"})
    issue = alice("GET", f"{R}/issues/{n}", 200)
    assert issue["pull_request"]["diff_url"].endswith(f"/pull/{n}.diff") and issue["state"] == "open"
    edited = alice("PATCH", f"{R}/issues/{n}", 200, json={"title": "Renamed", "labels": ["risk:high"]})
    assert edited["title"] == "Renamed" and [lb["name"] for lb in edited["labels"]] == ["risk:high"]
    assert [lb["name"] for lb in crew("GET", f"{R}/labels", 200)] == ["risk:high"]
    assert alice("PATCH", f"{R}/issues/{n}", 200, json={"state": "closed"})["state"] == "closed"
    assert crew("GET", f"{R}/pulls/{n}", 200)["state"] == "closed"
    assert alice("PATCH", f"{R}/issues/{n}", 200, json={"state": "open"})["state"] == "open"

    head = requests.head(forge.base_url + R, headers={"Authorization": f"token {TOKEN}"}, timeout=10)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) > 100
    assert requests.head(forge.base_url + "/repos/acme/nope", timeout=10).status_code == 401
    raw = crew("GET", f"{R}/contents/README.md", 200, headers={"Accept": "application/vnd.github.raw+json"})
    assert raw == "# Teams monorepo\n"


def test_githubs_remove_reviewers_through_pygithub(forge: ForgeUnderTest, push: Pusher) -> None:
    repo = make_github(forge).get_repo(REPO)
    push("auto/rr", {"r.txt": "r\n"})
    pr = repo.create_pull(base="main", head="auto/rr", title="RR")
    pr.create_review_request(reviewers=["alice", "bob"], team_reviewers=["platform"])
    pr.delete_review_request(reviewers=["alice"], team_reviewers=["platform"])
    users, teams = pr.get_review_requests()
    assert [u.login for u in users] == ["bob"] and list(teams) == []
    forge.add_user("alice", token=ALICE)
    reviewed = make_github(forge, ALICE).get_repo(REPO).get_pull(pr.number).create_review(event="APPROVE")
    assert reviewed.state == "APPROVED" and [r.state for r in pr.get_reviews()] == ["APPROVED"]
    with_author = pr.create_review(event="COMMENT", body="Opened by the crew.")
    assert with_author.state == "COMMENTED"
    try:
        pr.create_review(event="APPROVE")
    except GithubException as exc:
        assert exc.status == 422 and exc.data["errors"] == ["Can not approve your own pull request"]
    else:
        raise AssertionError("the author approved their own pull request")


def test_the_tour_covers_the_new_endpoints(forge: ForgeUnderTest, push: Pusher, spec_checker: SpecChecker) -> None:
    test_reviews_gate_merges_and_drafts_are_refused(forge, push)
    crew = Client(forge)
    crew("GET", f"{R}/commits/main/check-suites", 200)
    crew("GET", f"{R}/commits/main/pulls", 200)
    crew("GET", f"{R}/pulls/1/commits", 200)
    crew("GET", f"{R}/compare/main...auto/draft", 200)
    crew("GET", f"{R}/commits", 200)
    crew("GET", f"{R}/commits/main", 200)
    crew("GET", "/user/repos", 200)
    crew("GET", "/orgs/acme/repos", 200)
    crew("POST", f"{R}/labels", 201, json={"name": "tour"})
    crew("POST", f"{R}/labels", 422, json={"name": "tour"})
    crew("GET", f"{R}/labels", 200)
    crew("GET", f"{R}/issues/1", 200)
    crew("PATCH", f"{R}/issues/1", 200, json={"body": "Tour."})
    crew("DELETE", f"{R}/pulls/1/requested_reviewers", 200, json={"reviewers": ["bob"]})
    crew("GET", f"{R}/branches/main/protection", 200)
    crew("DELETE", f"{R}/branches/main/protection", 204)
    seen = {(ex.method, ex.route, ex.status) for ex in forge.exchanges}
    assert REQUIRED - seen == set()
    problems = [p for ex in forge.exchanges for p in spec_checker.check(ex)]
    assert problems == []


def test_a_data_dir_from_before_reviews_keeps_its_protection(tmp_path: Path, seed_dir: Path) -> None:
    data = tmp_path / "old"
    with LocalForge(data, token=TOKEN) as forge:
        forge.create_repo(REPO, seed_from=seed_dir)
        forge.protect_branch(REPO, "main", ["ci"])
    db = sqlite3.connect(data / "forge.sqlite3")  # the table as the first release made it
    db.executescript(
        "DROP TABLE branch_protections; CREATE TABLE branch_protections (repo_id INTEGER NOT NULL, branch TEXT NOT"
        " NULL, required_contexts TEXT NOT NULL DEFAULT '[]', enforce_admins INTEGER NOT NULL DEFAULT 0,"
        " created_at TEXT NOT NULL, PRIMARY KEY (repo_id, branch));"
        " INSERT INTO branch_protections VALUES (1, 'main', '[\"ci\"]', 0, '2024-01-01T00:00:00Z');"
    )
    db.close()
    with LocalForge(data, token=TOKEN) as forge:
        body = Client(forge)("GET", f"{R}/branches/main/protection", 200)
        assert body["required_pull_request_reviews"]["required_approving_review_count"] == 0
        assert body["required_status_checks"]["contexts"] == ["ci"] and body["allow_force_pushes"]["enabled"] is False


def test_the_pull_request_page_is_a_review(forge: ForgeUnderTest, push: Pusher) -> None:
    crew, alice, _ = _people(forge)
    crew("PUT", f"{R}/branches/main/protection", 200, json=PROTECT)
    push("auto/page", {"teams/page/team.yaml": "name: page\n<b>not bold</b>\n"})
    body = (
        "## Why\n\nA **new** team. <script>alert(1)</script> [x](javascript:alert(2))\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    n = crew(
        "POST", f"{R}/pulls", 201, json={"title": "<i>Page</i>", "head": "auto/page", "base": "main", "body": body}
    )["number"]
    alice("POST", f"{R}/pulls/{n}/reviews", 200, json={"event": "APPROVE", "body": "Fine *by me*"})
    forge.set_status(REPO, "auto/page", "failure", context="lint")
    forge.app.page_links = lambda text, head: [
        ("Request page", f"http://dash.example/requests/{head}"),
        ("bad", "javascript:x"),
    ]
    page = requests.get(f"{forge.web_url}/{REPO}/pull/{n}", timeout=10)
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    text = page.text
    assert "<h2>Why</h2>" in text and "<strong>new</strong>" in text and "<table>" in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'href="javascript:' not in text and "&lt;i&gt;Page&lt;/i&gt;" in text
    assert '<span class="add">+&lt;b&gt;not bold&lt;/b&gt;</span>' in text
    assert "<td>ci</td><td>expected</td><td>required</td>" in text and "<td>lint</td><td>failing</td>" in text
    assert "<strong>alice</strong>: approved" in text and "<em>by me</em>" in text
    assert 'href="http://dash.example/requests/auto/page">Request page</a>' in text and ">bad<" not in text
    assert requests.head(f"{forge.web_url}/{REPO}/pull/{n}", timeout=10).status_code == 200


def test_a_public_url_makes_web_links_outlive_the_port(tmp_path: Path, seed_dir: Path) -> None:
    with LocalForge(tmp_path / "f", token=TOKEN, public_url="http://forge.example:3131/") as forge:
        forge.create_repo(REPO, seed_from=seed_dir)
        body = Client(forge)("GET", R, 200)
        assert body["html_url"] == "http://forge.example:3131/acme/teams"
        assert body["url"] == f"{forge.base_url}{R}"  # API links follow the address used, as PyGithub insists
    for bad in ("javascript:alert(1)", "http://host/path", "ftp://host"):
        with pytest.raises(ValueError, match="public_url"):
            LocalForge(tmp_path / "g", token=TOKEN, public_url=bad)
