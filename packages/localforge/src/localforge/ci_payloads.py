"""JSON bodies in GitHub's shapes for commit statuses, check runs and branch protection.

Like :mod:`.payloads`, every URL the forge owns is built from :class:`~.payloads.Urls`; ``target_url`` and
``details_url`` are the CI's own addresses, as given, and are never followed by clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from .ci import CheckRun, Protection, Status
from .payloads import Urls, node_id, user
from .state import Pull, Repo, User

JSON = dict[str, Any]

CI_APP_SLUG = "localforge-ci"


def _avatar(who: User, urls: Urls) -> str:
    return f"{urls.web}/avatars/u/{who.id}?v=4"


def simple_status(repo: Repo, s: Status, creator: User, urls: Urls) -> JSON:
    """``simple-commit-status``, as listed in a combined status."""
    return {
        "url": f"{urls.repo_api(repo)}/statuses/{s.sha}",
        "avatar_url": _avatar(creator, urls),
        "id": s.id,
        "node_id": node_id("StatusContext", s.id),
        "state": s.state,
        "description": s.description,
        "target_url": s.target_url,
        "context": s.context,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def status(repo: Repo, s: Status, creator: User, urls: Urls) -> JSON:
    """``status``: what creating a status returns and what the list of a ref's statuses holds."""
    return {**simple_status(repo, s, creator, urls), "creator": user(creator, urls)}


def combined_status(repo: Repo, sha: str, state: str, statuses: list[JSON], repo_body: JSON, urls: Urls) -> JSON:
    """``combined-commit-status`` for ``GET /commits/{ref}/status``."""
    commit_url = f"{urls.repo_api(repo)}/commits/{sha}"
    return {
        "state": state,
        "statuses": statuses,
        "sha": sha,
        "total_count": len(statuses),
        "repository": repo_body,
        "commit_url": commit_url,
        "url": f"{commit_url}/status",
    }


# branch protection ------------------------------------------------------------------------------------


def _protection_url(repo: Repo, branch: str, urls: Urls) -> str:
    return f"{urls.repo_api(repo)}/branches/{quote(branch, safe='')}/protection"


def _enforcement(p: Protection | None) -> str:
    if p is None or not p.required_contexts:
        return "off"
    return "everyone" if p.enforce_admins else "non_admins"


def _checks(contexts: Sequence[str]) -> list[JSON]:
    return [{"context": c, "app_id": None} for c in contexts]


def protection_summary(p: Protection | None) -> JSON:
    """The ``protection`` object inside ``GET /branches/{branch}`` (and its list items)."""
    contexts = list(p.required_contexts) if p else []
    return {
        "enabled": p is not None,
        "required_status_checks": {
            "enforcement_level": _enforcement(p),
            "contexts": contexts,
            "checks": _checks(contexts),
        },
    }


def status_check_policy(repo: Repo, p: Protection, urls: Urls) -> JSON:
    """``status-check-policy`` for ``GET /branches/{branch}/protection/required_status_checks``."""
    url = f"{_protection_url(repo, p.branch, urls)}/required_status_checks"
    return {
        "url": url,
        "strict": False,
        "contexts": list(p.required_contexts),
        "contexts_url": f"{url}/contexts",
        "checks": _checks(p.required_contexts),
    }


def branch_protection(repo: Repo, p: Protection, urls: Urls) -> JSON:
    """``branch-protection`` for ``GET``/``PUT /branches/{branch}/protection``: its pull request rule (with the
    approvals it needs; absent when pull requests are not required), force pushes and deletions, admins
    and required checks."""
    url = _protection_url(repo, p.branch, urls)
    off = {"enabled": False}
    body: JSON = {"url": url}
    if p.require_pull_request:
        body["required_pull_request_reviews"] = {
            "url": f"{url}/required_pull_request_reviews",
            "dismiss_stale_reviews": p.dismiss_stale_reviews,
            "require_code_owner_reviews": False,
            "required_approving_review_count": p.required_approving_review_count,
            "require_last_push_approval": False,
        }
    body.update(
        {
            "required_signatures": {"url": f"{url}/required_signatures", "enabled": False},
            "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": p.enforce_admins},
            "required_linear_history": dict(off),
            "allow_force_pushes": {"enabled": p.allow_force_pushes},
            "allow_deletions": {"enabled": p.allow_deletions},
            "block_creations": dict(off),
            "required_conversation_resolution": dict(off),
            "lock_branch": dict(off),
            "allow_fork_syncing": dict(off),
        }
    )
    if p.required_contexts:
        body["required_status_checks"] = status_check_policy(repo, p, urls)
    return body


# check runs -------------------------------------------------------------------------------------------


def ci_app(owner: User, created_at: str, urls: Urls) -> JSON:
    """The GitHub App the forge's check runs come from (GitHub requires an app to create them)."""
    return {
        "id": 1,
        "slug": CI_APP_SLUG,
        "node_id": node_id("Integration", 1),
        "client_id": "Iv1.localforge00000",
        "owner": user(owner, urls),
        "name": "LocalForge CI",
        "description": "Check runs recorded by the local forge.",
        "external_url": f"{urls.web}/apps/{CI_APP_SLUG}",
        "html_url": f"{urls.web}/apps/{CI_APP_SLUG}",
        "created_at": created_at,
        "updated_at": created_at,
        "permissions": {"checks": "write", "metadata": "read", "statuses": "write"},
        "events": [],
    }


def pull_minimal(repo: Repo, pr: Pull, urls: Urls) -> JSON:
    ref_repo = {"id": repo.id, "url": urls.repo_api(repo), "name": repo.name}
    return {
        "id": pr.id,
        "number": pr.number,
        "url": f"{urls.repo_api(repo)}/pulls/{pr.number}",
        "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": ref_repo},
        "base": {"ref": pr.base_ref, "sha": pr.base_sha, "repo": ref_repo},
    }


def check_run(repo: Repo, run: CheckRun, app: JSON, pulls: list[JSON], urls: Urls) -> JSON:
    """``check-run``."""
    url = f"{urls.repo_api(repo)}/check-runs/{run.id}"
    html_url = f"{urls.repo_web(repo)}/runs/{run.id}"
    return {
        "id": run.id,
        "head_sha": run.head_sha,
        "node_id": node_id("CheckRun", run.id),
        "external_id": run.external_id,
        "url": url,
        "html_url": html_url,
        "details_url": run.details_url or html_url,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
        "output": {
            "title": run.title,
            "summary": run.summary,
            "text": run.text,
            "annotations_count": 0,
            "annotations_url": f"{url}/annotations",
        },
        "name": run.name,
        "check_suite": {"id": run.id},
        "app": app,
        "pull_requests": pulls,
    }
