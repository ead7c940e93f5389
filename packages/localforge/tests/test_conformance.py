"""(a) Every endpoint's responses, successes and errors, validated against GitHub's OpenAPI description."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from typing import Any

import requests
from conftest import REPO, TOKEN, ForgeUnderTest, Pusher
from spec_check import ALLOWED, SpecChecker

# (method, OpenAPI path, status) that the tour below must produce, each one validated.
REQUIRED = {
    ("GET", "/user", 200),
    ("GET", "/users/{username}", 200),
    ("GET", "/rate_limit", 200),
    ("GET", "/repos/{owner}/{repo}", 200),
    ("GET", "/repos/{owner}/{repo}", 404),
    ("GET", "/repos/{owner}/{repo}/branches", 200),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}", 200),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}", 404),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}", 200),
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref}", 200),
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref}", 404),
    ("GET", "/repos/{owner}/{repo}/git/refs/{ref}", 200),
    ("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}", 200),
    ("POST", "/repos/{owner}/{repo}/git/refs", 201),
    ("POST", "/repos/{owner}/{repo}/git/refs", 422),
    ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}", 200),
    ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}", 204),
    ("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}", 422),
    ("POST", "/repos/{owner}/{repo}/pulls", 201),
    ("POST", "/repos/{owner}/{repo}/pulls", 422),
    ("GET", "/repos/{owner}/{repo}/pulls", 200),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 200),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 404),
    ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", 200),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files", 200),
    ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", 200),
    ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", 405),
    ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", 409),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", 204),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", 200),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", 201),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", 422),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels", 200),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels", 200),
    ("PUT", "/repos/{owner}/{repo}/issues/{issue_number}/labels", 200),
    ("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}", 200),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 200),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 201),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 422),
    ("GET", "/repos/{owner}/{repo}/contents/{path}", 200),
    ("GET", "/repos/{owner}/{repo}/contents/{path}", 404),
    ("GET", "/repos/{owner}/{repo}/contents", 200),
}


class Client:
    def __init__(self, forge: ForgeUnderTest) -> None:
        self.base = forge.base_url
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"token {TOKEN}", "Accept": "application/vnd.github+json"})

    def __call__(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.session.request(method, self.base + path, timeout=10, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text[:500])
        return response.json() if response.content else None


def tour(forge: ForgeUnderTest, push: Pusher) -> None:
    """Drive every endpoint through its main success and error answers."""
    call = Client(forge)
    r = f"/repos/{REPO}"
    call("GET", "/user", 200)
    call("GET", "/users/alice", 200)
    call("GET", "/rate_limit", 200)
    call("GET", r, 200)
    call("GET", "/repos/acme/nope", 404)
    call("GET", f"{r}/branches", 200)
    call("GET", f"{r}/branches/main", 200)
    call("GET", f"{r}/branches/no-such-branch", 404)
    main = call("GET", f"{r}/git/ref/heads%2Fmain", 200)["object"]["sha"]
    call("GET", f"{r}/commits/{main}", 200)
    call("GET", f"{r}/git/ref/heads/nope", 404)

    sha = push("auto/feature-a", {"teams/feature_a/team.yaml": "name: feature_a\n"})
    call("POST", f"{r}/git/refs", 201, json={"ref": "refs/heads/auto/a", "sha": sha})
    call("POST", f"{r}/git/refs", 422, json={"ref": "refs/heads/auto/a", "sha": sha})
    call("POST", f"{r}/git/refs", 422, json={"ref": "refs/heads/x", "sha": "0" * 40})
    call("GET", f"{r}/git/refs/heads/auto/a", 200)
    call("GET", f"{r}/git/refs/heads/auto", 200)  # legacy prefix form: an array
    call("GET", f"{r}/git/matching-refs/heads/auto", 200)
    call("PATCH", f"{r}/git/refs/heads/auto/a", 200, json={"sha": sha, "force": False})

    call("POST", f"{r}/pulls", 422, json={"title": "t", "head": "no-such", "base": "main"})
    call("POST", f"{r}/pulls", 422, json={"head": "auto/a", "base": "main"})
    pr = call(
        "POST",
        f"{r}/pulls",
        201,
        json={"title": "Add feature_a", "head": "acme:auto/a", "base": "main", "body": "Adds a team."},
    )
    n = pr["number"]
    call("POST", f"{r}/pulls", 422, json={"title": "again", "head": "auto/a", "base": "main"})
    call("GET", f"{r}/pulls", 200, params={"state": "all", "head": "acme:auto/a", "base": "main"})
    call("GET", f"{r}/pulls/{n}", 200)
    call("GET", f"{r}/pulls/999", 404)
    call("PATCH", f"{r}/pulls/{n}", 200, json={"title": "Add feature_a team", "body": "Updated."})
    call("GET", f"{r}/pulls/{n}/files", 200)

    call("POST", f"{r}/issues/{n}/labels", 200, json={"labels": ["new-team", "automated"]})
    call("POST", f"{r}/issues/{n}/labels", 200, json=["needs-review"])
    call("GET", f"{r}/issues/{n}/labels", 200)
    call("DELETE", f"{r}/issues/{n}/labels/needs-review", 200)
    call("PUT", f"{r}/issues/{n}/labels", 200, json={"labels": ["new-team"]})
    call("POST", f"{r}/issues/{n}/comments", 201, json={"body": "Opened by devops-crew."})
    call("POST", f"{r}/issues/{n}/comments", 422, json={})
    call("GET", f"{r}/issues/{n}/comments", 200)
    call(
        "POST", f"{r}/pulls/{n}/requested_reviewers", 201, json={"reviewers": ["alice"], "team_reviewers": ["platform"]}
    )
    call("POST", f"{r}/pulls/{n}/requested_reviewers", 422, json={"reviewers": ["mallory"]})
    call("GET", f"{r}/pulls/{n}/requested_reviewers", 200)
    call("GET", f"{r}/pulls/{n}", 200)  # full body with labels, reviewers and teams

    call("GET", f"{r}/contents/CODEOWNERS", 200)
    call("GET", f"{r}/contents/teams%2Fplatform%2Fteam.yaml", 200, params={"ref": "main"})
    call("GET", f"{r}/contents/teams", 200)
    call("GET", f"{r}/contents", 200)
    call("GET", f"{r}/contents/nope.txt", 404)

    call("PUT", f"{r}/pulls/{n}/merge", 409, json={"sha": "1" * 40})
    call("PUT", f"{r}/pulls/{n}/merge", 200, json={"sha": sha, "merge_method": "merge"})
    call("PUT", f"{r}/pulls/{n}/merge", 405, json={})
    call("GET", f"{r}/pulls/{n}/merge", 204)
    call("GET", f"{r}/pulls/{n}", 200)  # merged body
    call("DELETE", f"{r}/git/refs/heads/auto/a", 204)
    call("DELETE", f"{r}/git/refs/heads/auto/a", 422)


def test_every_endpoint_matches_githubs_schema(forge: ForgeUnderTest, push: Pusher, spec_checker: SpecChecker) -> None:
    tour(forge, push)
    seen = {(ex.method, ex.route, ex.status) for ex in forge.exchanges}
    missing = REQUIRED - seen
    assert not missing, f"the tour did not exercise: {sorted(missing)}"
    problems = [p for ex in forge.exchanges for p in spec_checker.check(ex)]
    assert not problems, "\n".join(problems)
    # The allow-list is used (requested_teams) and stays small.
    assert any("requested_teams" in hit for hit in spec_checker.allowed_hits)
    assert len(ALLOWED) <= 3


def test_the_checker_catches_a_sketch(forge: ForgeUnderTest, push: Pusher, spec_checker: SpecChecker) -> None:
    """The check can fail: damage real responses and it must notice."""
    sha = push("auto/b", {"b.txt": "b\n"})
    Client(forge)("GET", "/user", 200)
    Client(forge)("POST", f"/repos/{REPO}/pulls", 201, json={"title": "B", "head": "auto/b", "base": "main"})
    Client(forge)("GET", f"/repos/{REPO}/git/ref/heads/auto/b", 200)
    real_pr = next(ex for ex in forge.exchanges if ex.route == "/repos/{owner}/{repo}/pulls" and ex.status == 201)
    real_ref = next(ex for ex in forge.exchanges if ex.route == "/repos/{owner}/{repo}/git/ref/{ref}")
    assert spec_checker.check(real_pr) == []
    assert spec_checker.check(real_ref) == []

    def damaged(ex: Any, change: Any) -> Any:
        body = json.loads(ex.response_body)
        change(body)
        return dataclasses.replace(ex, response_body=json.dumps(body).encode())

    sketch = {"number": 1, "title": "B", "state": "open", "url": "http://x/pulls/1"}
    assert len(spec_checker.check(dataclasses.replace(real_pr, response_body=json.dumps(sketch).encode()))) > 30
    assert spec_checker.check(damaged(real_pr, lambda b: b.pop("mergeable_state")))
    assert spec_checker.check(damaged(real_pr, lambda b: b["head"].update(sha=None)))
    assert spec_checker.check(damaged(real_pr, lambda b: b.update(state="merged")))
    assert spec_checker.check(damaged(real_ref, lambda b: b["object"].pop("sha")))
    github_url = "https://api.github.com/repos/acme/teams/git/refs/heads/auto/b"
    assert spec_checker.check(damaged(real_ref, lambda b: b.update(url=github_url)))
    assert spec_checker.check(damaged(real_pr, lambda b: b["_links"]["self"].update(href=github_url)))
    me = next(ex for ex in forge.exchanges if ex.route == "/user")
    assert spec_checker.check(me) == []
    assert spec_checker.check(damaged(me, lambda b: b.pop("two_factor_authentication")))
    assert sha


def test_error_bodies_are_githubs(forge: ForgeUnderTest, spec_checker: SpecChecker) -> None:
    """401, unknown routes and undocumented statuses still answer with GitHub's error shapes."""
    base = forge.base_url
    bad = requests.get(f"{base}/repos/{REPO}", headers={"Authorization": "token wrong"}, timeout=10)
    assert bad.status_code == 401
    assert bad.json() == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }
    missing = requests.get(f"{base}/user", timeout=10)
    assert (missing.status_code, missing.json()["message"]) == (401, "Requires authentication")
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert requests.get(f"{base}/user", headers={"Authorization": f"Basic {basic}"}, timeout=10).ok
    assert requests.get(f"{base}/user", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).ok
    unknown = requests.get(f"{base}/no/such/route", headers={"Authorization": f"token {TOKEN}"}, timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "Not Found"
    assert unknown.headers["Content-Type"].startswith("application/json")
    outside = requests.get(forge.web_url + "/nothing-here", timeout=10)
    assert outside.status_code == 404 and outside.json()["message"] == "Not Found"
    for header in (
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-RateLimit-Used",
        "X-GitHub-Request-Id",
    ):
        assert header in unknown.headers
    problems = [p for ex in copy.copy(forge.exchanges) for p in spec_checker.check(ex)]
    assert not problems, problems
