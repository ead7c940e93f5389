"""JSON bodies in GitHub's shapes for reviews, issues (a pull request seen as an issue), comparisons and
check suites. Like :mod:`.payloads`, every URL is built from :class:`~.payloads.Urls`; the conformance tests
check each shape against GitHub's OpenAPI description (``pull-request-review``, ``issue``,
``commit-comparison``, ``check-suite``)."""

from __future__ import annotations

from typing import Any

from .gitrepo import CommitInfo
from .payloads import Urls, node_id, user
from .state import Pull, Repo, Review, User

JSON = dict[str, Any]


def review(repo: Repo, pr_number: int, r: Review, author: User, association: str, urls: Urls) -> JSON:
    """``pull-request-review``; a PENDING review has no ``submitted_at`` yet, as on GitHub."""
    pr_api = f"{urls.repo_api(repo)}/pulls/{pr_number}"
    html = f"{urls.repo_web(repo)}/pull/{pr_number}#pullrequestreview-{r.id}"
    body: JSON = {
        "id": r.id,
        "node_id": node_id("PullRequestReview", r.id),
        "user": user(author, urls),
        "body": r.body,
        "state": r.state,
        "html_url": html,
        "pull_request_url": pr_api,
        "_links": {"html": {"href": html}, "pull_request": {"href": pr_api}},
        "commit_id": r.commit_id,
        "author_association": association,
    }
    if r.submitted_at is not None:
        body["submitted_at"] = r.submitted_at
    return body


def issue(repo: Repo, pr: Pull, author: User, labels: list[JSON], comments: int, association: str, urls: Urls) -> JSON:
    """``issue`` for a pull request (``GET /issues/{n}``): its ``pull_request`` member links the pull."""
    api = urls.repo_api(repo)
    web = urls.repo_web(repo)
    issue_api = f"{api}/issues/{pr.number}"
    return {
        "id": pr.id,
        "node_id": node_id("PullRequest", pr.id),
        "url": issue_api,
        "repository_url": api,
        "labels_url": f"{issue_api}/labels{{/name}}",
        "comments_url": f"{issue_api}/comments",
        "events_url": f"{issue_api}/events",
        "html_url": f"{web}/pull/{pr.number}",
        "number": pr.number,
        "state": pr.state,
        # state_reason (GitHub: null until an issue is closed or reopened with a reason) is left out: the
        # description's enum lacks null, and a pull request never carries a reason anyway
        "title": pr.title,
        "body": pr.body,
        "user": user(author, urls),
        "labels": labels,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": comments,
        "pull_request": {
            "url": f"{api}/pulls/{pr.number}",
            "html_url": f"{web}/pull/{pr.number}",
            "diff_url": f"{web}/pull/{pr.number}.diff",
            "patch_url": f"{web}/pull/{pr.number}.patch",
            "merged_at": pr.merged_at,
        },
        "closed_at": pr.closed_at,
        "created_at": pr.created_at,
        "updated_at": pr.updated_at,
        "draft": pr.draft,
        "closed_by": None,
        "timeline_url": f"{issue_api}/timeline",
        "performed_via_github_app": None,
        "author_association": association,
        "reactions": {
            "url": f"{issue_api}/reactions",
            "total_count": 0,
            "+1": 0,
            "-1": 0,
            "laugh": 0,
            "hooray": 0,
            "confused": 0,
            "heart": 0,
            "rocket": 0,
            "eyes": 0,
        },
    }


def comparison(
    repo: Repo,
    basehead: str,
    base_commit: JSON,
    merge_base_commit: JSON,
    commits: list[JSON],
    files: list[JSON],
    ahead_by: int,
    behind_by: int,
    urls: Urls,
) -> JSON:
    """``commit-comparison`` for ``GET /compare/{base}...{head}``."""
    if ahead_by and behind_by:
        status = "diverged"
    elif ahead_by:
        status = "ahead"
    elif behind_by:
        status = "behind"
    else:
        status = "identical"
    web = f"{urls.repo_web(repo)}/compare/{basehead}"
    return {
        "url": f"{urls.repo_api(repo)}/compare/{basehead}",
        "html_url": web,
        "permalink_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "base_commit": base_commit,
        "merge_base_commit": merge_base_commit,
        "status": status,
        "ahead_by": ahead_by,
        "behind_by": behind_by,
        "total_commits": ahead_by,
        "commits": commits,
        "files": files,
    }


def check_suite(
    repo: Repo,
    suite_id: int,
    info: CommitInfo,
    head_branch: str | None,
    status: str,
    conclusion: str | None,
    runs: int,
    app: JSON,
    repo_body: JSON,
    pulls: list[JSON],
    created_at: str,
    updated_at: str,
    urls: Urls,
) -> JSON:
    """``check-suite``: the forge's one CI app keeps one suite per commit holding all its check runs."""
    api = urls.repo_api(repo)
    return {
        "id": suite_id,
        "node_id": node_id("CheckSuite", suite_id),
        "head_branch": head_branch,
        "head_sha": info.sha,
        "status": status,
        "conclusion": conclusion,
        "url": f"{api}/check-suites/{suite_id}",
        "before": info.parents[0] if info.parents else None,
        "after": info.sha,
        "pull_requests": pulls,
        "app": app,
        "repository": repo_body,
        "created_at": created_at,
        "updated_at": updated_at,
        "head_commit": {
            "id": info.sha,
            "tree_id": info.tree,
            "message": info.message.rstrip("\n"),
            "timestamp": info.committer.date,
            "author": {"name": info.author.name, "email": info.author.email},
            "committer": {"name": info.committer.name, "email": info.committer.email},
        },
        "latest_check_runs_count": runs,
        "check_runs_url": f"{api}/check-suites/{suite_id}/check-runs",
        "rerequestable": False,
        "runs_rerequestable": False,
    }
