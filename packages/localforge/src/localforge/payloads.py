"""JSON bodies in GitHub's REST shapes: users, repositories, branches, refs, pulls, labels, comments, files.

Every URL is built from :class:`Urls`, whose roots come from the ``Host`` the client used. PyGithub
refuses to follow a URL whose scheme, host or port differs from its ``base_url``, so nothing here may
point at github.com. The shapes follow GitHub's OpenAPI description (``@octokit/openapi``) and the
examples recorded in it; the conformance tests check each one against that schema.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .gitrepo import CommitInfo, FileChange, TreeEntry
from .state import Comment, Label, Pull, Repo, Team, User

DOCS = "https://docs.github.com/rest"

JSON = dict[str, Any]


@dataclass(frozen=True)
class Urls:
    """The forge's roots: ``web`` (``http://host:port`` as the client addressed it), ``api`` (``web`` +
    ``/api/v3``) and ``public``, the configured public base that a repository's web links (``html_url``,
    ``diff_url``, ``clone_url``, ...) are built from when set, so that they outlive the port; API links
    always follow ``web``, as PyGithub insists."""

    web: str
    api_prefix: str = "/api/v3"
    public: str | None = None

    @property
    def api(self) -> str:
        return self.web + self.api_prefix

    def repo_api(self, repo: Repo) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def repo_web(self, repo: Repo) -> str:
        return f"{self.public or self.web}/{repo.full_name}"

    def host(self) -> str:
        return self.web.split("://", 1)[1]


def node_id(kind: str, ident: int | str) -> str:
    """A legacy-style global node id (``base64("<len>:<Type><id>")``), stable for the same object."""
    text = f"{kind}{ident}"
    return base64.b64encode(f"{len(kind):03d}:{text}".encode()).decode()


def error(message: str, status: int, documentation_url: str = DOCS, **extra: Any) -> JSON:
    """GitHub's error body: ``message``, ``documentation_url`` and (as GitHub now sends) ``status``."""
    return {"message": message, "documentation_url": documentation_url, "status": str(status), **extra}


def validation_failed(errors: list[JSON], documentation_url: str = DOCS, message: str = "Validation Failed") -> JSON:
    return error(message, 422, documentation_url, errors=errors)


def user(u: User, urls: Urls) -> JSON:
    api_user = f"{urls.api}/users/{u.login}"
    return {
        "login": u.login,
        "id": u.id,
        "node_id": node_id("Organization" if u.type == "Organization" else "User", u.id),
        "avatar_url": f"{urls.web}/avatars/u/{u.id}?v=4",
        "gravatar_id": "",
        "url": api_user,
        "html_url": f"{urls.web}/{u.login}",
        "followers_url": f"{api_user}/followers",
        "following_url": f"{api_user}/following{{/other_user}}",
        "gists_url": f"{api_user}/gists{{/gist_id}}",
        "starred_url": f"{api_user}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api_user}/subscriptions",
        "organizations_url": f"{api_user}/orgs",
        "repos_url": f"{api_user}/repos",
        "events_url": f"{api_user}/events{{/privacy}}",
        "received_events_url": f"{api_user}/received_events",
        "type": u.type,
        "user_view_type": "public",
        "site_admin": False,
    }


def user_detail(u: User, urls: Urls, public_repos: int, private: bool) -> JSON:
    """``private-user`` for ``GET /user`` (the token's own account), ``public-user`` for ``/users/{login}``."""
    body = {
        **user(u, urls),
        "user_view_type": "private" if private else "public",
        "name": u.name,
        "company": None,
        "blog": "",
        "location": None,
        "email": u.email,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": public_repos,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": u.created_at,
        "updated_at": u.created_at,
    }
    if private:
        body.update(
            {
                "notification_email": u.email,
                "private_gists": 0,
                "total_private_repos": 0,
                "owned_private_repos": 0,
                "disk_usage": 0,
                "collaborators": 0,
                "two_factor_authentication": False,
                "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000},
            }
        )
    return body


def team(t: Team, org: User, urls: Urls) -> JSON:
    """A team as GitHub puts it in ``requested_teams`` (its recorded examples carry no ``type``)."""
    return {
        "id": t.id,
        "node_id": node_id("Team", t.id),
        "url": f"{urls.api}/organizations/{org.id}/team/{t.id}",
        "html_url": f"{urls.web}/orgs/{org.login}/teams/{t.slug}",
        "name": t.name,
        "slug": t.slug,
        "description": t.description,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "members_url": f"{urls.api}/organizations/{org.id}/team/{t.id}/members{{/member}}",
        "repositories_url": f"{urls.api}/organizations/{org.id}/team/{t.id}/repos",
        "parent": None,
    }


def repository(
    repo: Repo, urls: Urls, *, open_issues: int, size: int, permissions: dict[str, bool], full: bool = False
) -> JSON:
    """``repository`` (as nested in pulls) or, with ``full``, ``full-repository`` for ``GET /repos``;
    ``permissions`` are the token's user's (see :func:`.rules.permissions`)."""
    api = urls.repo_api(repo)
    web = urls.repo_web(repo)
    body: JSON = {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": user(repo.owner, urls),
        "private": repo.private,
        "html_url": web,
        "description": repo.description,
        "fork": False,
        "url": api,
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "assignees_url": f"{api}/assignees{{/user}}",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "branches_url": f"{api}/branches{{/branch}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}",
        "comments_url": f"{api}/comments{{/number}}",
        "commits_url": f"{api}/commits{{/sha}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "contributors_url": f"{api}/contributors",
        "deployments_url": f"{api}/deployments",
        "downloads_url": f"{api}/downloads",
        "events_url": f"{api}/events",
        "forks_url": f"{api}/forks",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}",
        "git_url": f"git://{urls.host()}/{repo.full_name}.git",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "issue_events_url": f"{api}/issues/events{{/number}}",
        "issues_url": f"{api}/issues{{/number}}",
        "keys_url": f"{api}/keys{{/key_id}}",
        "labels_url": f"{api}/labels{{/name}}",
        "languages_url": f"{api}/languages",
        "merges_url": f"{api}/merges",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "releases_url": f"{api}/releases{{/id}}",
        "ssh_url": f"git@{urls.host().split(':')[0]}:{repo.full_name}.git",
        "stargazers_url": f"{api}/stargazers",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "subscribers_url": f"{api}/subscribers",
        "subscription_url": f"{api}/subscription",
        "tags_url": f"{api}/tags",
        "teams_url": f"{api}/teams",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "clone_url": f"{web}.git",
        "mirror_url": None,
        "hooks_url": f"{api}/hooks",
        "svn_url": web,
        "homepage": None,
        "language": None,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "size": size,
        "default_branch": repo.default_branch,
        "open_issues_count": open_issues,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": True,
        "has_wiki": True,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private" if repo.private else "public",
        "pushed_at": repo.pushed_at,
        "created_at": repo.created_at,
        "updated_at": repo.updated_at,
        "permissions": dict(permissions),
        "allow_forking": True,
        "web_commit_signoff_required": False,
        "license": None,
        "forks": 0,
        "open_issues": open_issues,
        "watchers": 0,
    }
    if full:
        body.update(
            {
                "temp_clone_token": None,
                "allow_squash_merge": True,
                "allow_merge_commit": True,
                "allow_rebase_merge": True,
                "allow_auto_merge": False,
                "delete_branch_on_merge": False,
                "allow_update_branch": False,
                "use_squash_pr_title_as_default": False,
                "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
                "squash_merge_commit_message": "COMMIT_MESSAGES",
                "merge_commit_title": "MERGE_MESSAGE",
                "merge_commit_message": "PR_TITLE",
                "network_count": 0,
                "subscribers_count": 0,
            }
        )
        if repo.owner.type == "Organization":
            body["organization"] = user(repo.owner, urls)
    return body


def git_user(sig: Any) -> JSON:
    return {"name": sig.name, "email": sig.email, "date": sig.date}


def commit(repo: Repo, info: CommitInfo, urls: Urls, author: User | None, committer: User | None) -> JSON:
    """The ``commit`` schema (as in ``GET /branches/{branch}`` and ``GET /commits/{sha}``)."""
    api = urls.repo_api(repo)
    web = urls.repo_web(repo)
    return {
        "sha": info.sha,
        "node_id": node_id("Commit", f"{repo.id}:{info.sha}"),
        "commit": {
            "author": git_user(info.author),
            "committer": git_user(info.committer),
            "message": info.message.rstrip("\n"),
            "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
            "url": f"{api}/git/commits/{info.sha}",
            "comment_count": 0,
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
        "url": f"{api}/commits/{info.sha}",
        "html_url": f"{web}/commit/{info.sha}",
        "comments_url": f"{api}/commits/{info.sha}/comments",
        "author": user(author, urls) if author else {},
        "committer": user(committer, urls) if committer else {},
        "parents": [{"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{web}/commit/{p}"} for p in info.parents],
    }


def short_branch(repo: Repo, name: str, sha: str, urls: Urls, protected: bool = False) -> JSON:
    return {
        "name": name,
        "commit": {"sha": sha, "url": f"{urls.repo_api(repo)}/commits/{sha}"},
        "protected": protected,
    }


def branch(repo: Repo, name: str, commit_body: JSON, urls: Urls, protection: JSON | None = None) -> JSON:
    """``branch-with-protection``; ``protection`` is :func:`.ci_payloads.protection_summary` when protected."""
    api = urls.repo_api(repo)
    quoted = quote(name, safe="")
    return {
        "name": name,
        "commit": commit_body,
        "_links": {"self": f"{api}/branches/{quoted}", "html": f"{urls.repo_web(repo)}/tree/{name}"},
        "protected": protection is not None,
        "protection": protection
        if protection is not None
        else {"enabled": False, "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []}},
        "protection_url": f"{api}/branches/{quoted}/protection",
    }


def git_ref(repo: Repo, refname: str, sha: str, object_type: str, urls: Urls) -> JSON:
    api = urls.repo_api(repo)
    short = refname[len("refs/") :] if refname.startswith("refs/") else refname
    kind = {"commit": "commits", "tag": "tags", "tree": "trees", "blob": "blobs"}.get(object_type, "commits")
    return {
        "ref": refname,
        "node_id": node_id("Ref", f"{repo.id}:{refname}"),
        "url": f"{api}/git/refs/{short}",
        "object": {"sha": sha, "type": object_type, "url": f"{api}/git/{kind}/{sha}"},
    }


def label(repo: Repo, lb: Label, urls: Urls) -> JSON:
    """``label``, with GitHub's current ``archived_at``/``archived_by`` (null: the forge archives no label;
    githubkit's current models refuse a label without them, the pinned ``@octokit/openapi`` predates them)."""
    return {
        "id": lb.id,
        "node_id": node_id("Label", lb.id),
        "url": f"{urls.repo_api(repo)}/labels/{quote(lb.name, safe='')}",
        "name": lb.name,
        "color": lb.color,
        "default": False,
        "description": lb.description,
        "archived_at": None,
        "archived_by": None,
    }


def issue_comment(repo: Repo, c: Comment, author: User, association: str, urls: Urls) -> JSON:
    api = urls.repo_api(repo)
    comment_url = f"{api}/issues/comments/{c.id}"
    return {
        "id": c.id,
        "node_id": node_id("IssueComment", c.id),
        "url": comment_url,
        "html_url": f"{urls.repo_web(repo)}/pull/{c.number}#issuecomment-{c.id}",
        "body": c.body,
        "user": user(author, urls),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "issue_url": f"{api}/issues/{c.number}",
        "author_association": association,
        "performed_via_github_app": None,
        "reactions": {
            "url": f"{comment_url}/reactions",
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
        "pin": None,
        "minimized": None,
    }


@dataclass(frozen=True)
class PullFacts:
    """What a pull request's body needs beyond its row: people, labels, repo body and git facts."""

    author: User
    merged_by: User | None
    labels: list[JSON]
    reviewers: list[JSON]
    teams: list[JSON]
    repo_body: JSON
    comments: int
    commits: int
    additions: int
    deletions: int
    changed_files: int
    mergeable: bool | None
    mergeable_state: str
    author_association: str


def pull(repo: Repo, pr: Pull, facts: PullFacts, urls: Urls, *, full: bool) -> JSON:
    """``pull-request`` (``full``) or ``pull-request-simple`` (lists, review requests)."""
    api = urls.repo_api(repo)
    web = urls.repo_web(repo)
    pr_api = f"{api}/pulls/{pr.number}"
    owner = user(repo.owner, urls)
    links = {
        "self": {"href": pr_api},
        "html": {"href": f"{web}/pull/{pr.number}"},
        "issue": {"href": f"{api}/issues/{pr.number}"},
        "comments": {"href": f"{api}/issues/{pr.number}/comments"},
        "review_comments": {"href": f"{pr_api}/comments"},
        "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
        "commits": {"href": f"{pr_api}/commits"},
        "statuses": {"href": f"{api}/statuses/{pr.head_sha}"},
    }
    body: JSON = {
        "url": pr_api,
        "id": pr.id,
        "node_id": node_id("PullRequest", pr.id),
        "html_url": f"{web}/pull/{pr.number}",
        "diff_url": f"{web}/pull/{pr.number}.diff",
        "patch_url": f"{web}/pull/{pr.number}.patch",
        "issue_url": f"{api}/issues/{pr.number}",
        "commits_url": f"{pr_api}/commits",
        "review_comments_url": f"{pr_api}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{pr.number}/comments",
        "statuses_url": f"{api}/statuses/{pr.head_sha}",
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": user(facts.author, urls),
        "body": pr.body,
        "labels": facts.labels,
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pr.created_at,
        "updated_at": pr.updated_at,
        "closed_at": pr.closed_at,
        "merged_at": pr.merged_at,
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": facts.reviewers,
        "requested_teams": facts.teams,
        "head": {
            "label": f"{repo.owner.login}:{pr.head_ref}",
            "ref": pr.head_ref,
            "sha": pr.head_sha,
            "user": owner,
            "repo": facts.repo_body,
        },
        "base": {
            "label": f"{repo.owner.login}:{pr.base_ref}",
            "ref": pr.base_ref,
            "sha": pr.base_sha,
            "user": owner,
            "repo": facts.repo_body,
        },
        "_links": links,
        "author_association": facts.author_association,
        "auto_merge": None,
        "draft": pr.draft,
    }
    if full:
        body.update(
            {
                "merged": pr.merged_at is not None,
                "mergeable": facts.mergeable,
                "rebaseable": facts.mergeable,
                "mergeable_state": facts.mergeable_state,
                "merged_by": user(facts.merged_by, urls) if facts.merged_by else None,
                "comments": facts.comments,
                "review_comments": 0,
                "maintainer_can_modify": False,
                "commits": facts.commits,
                "additions": facts.additions,
                "deletions": facts.deletions,
                "changed_files": facts.changed_files,
            }
        )
    return body


def diff_entry(repo: Repo, change: FileChange, head_sha: str, urls: Urls) -> JSON:
    web = urls.repo_web(repo)
    path = quote(change.filename)
    body: JSON = {
        "sha": change.sha,
        "filename": change.filename,
        "status": change.status,
        "additions": change.additions,
        "deletions": change.deletions,
        "changes": change.changes,
        "blob_url": f"{web}/blob/{head_sha}/{path}",
        "raw_url": f"{web}/raw/{head_sha}/{path}",
        "contents_url": f"{urls.repo_api(repo)}/contents/{path}?ref={head_sha}",
    }
    if change.patch is not None:
        body["patch"] = change.patch
    if change.previous_filename is not None:
        body["previous_filename"] = change.previous_filename
    return body


def _content_links(repo: Repo, entry: TreeEntry, ref: str, commit_sha: str, urls: Urls) -> JSON:
    api = urls.repo_api(repo)
    web = urls.repo_web(repo)
    path = quote(entry.path)
    kind = "tree" if entry.type == "tree" else "blob"
    self_url = f"{api}/contents/{path}?ref={quote(ref, safe='')}"
    git_url = f"{api}/git/{'trees' if kind == 'tree' else 'blobs'}/{entry.sha}"
    html_url = f"{web}/{kind}/{ref}/{path}"
    return {
        "url": self_url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": f"{web}/raw/{commit_sha}/{path}" if kind == "blob" else None,
        "_links": {"self": self_url, "git": git_url, "html": html_url},
    }


def _content_type(entry: TreeEntry) -> str:
    if entry.type == "tree":
        return "dir"
    if entry.type == "commit":
        return "submodule"
    if entry.mode == "120000":
        return "symlink"
    return "file"


def content_file(repo: Repo, entry: TreeEntry, data: bytes, ref: str, commit_sha: str, urls: Urls) -> JSON:
    """``content-file``: base64 in lines of 60 characters with a trailing newline, like GitHub."""
    encoded = base64.b64encode(data).decode()
    wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(data),
        "name": entry.path.rsplit("/", 1)[-1],
        "path": entry.path,
        "content": wrapped,
        "sha": entry.sha,
        **_content_links(repo, entry, ref, commit_sha, urls),
    }


def content_entry(repo: Repo, entry: TreeEntry, ref: str, commit_sha: str, urls: Urls) -> JSON:
    """One item of a ``content-directory`` listing."""
    return {
        "type": _content_type(entry),
        "size": entry.size if entry.type == "blob" else 0,
        "name": entry.path.rsplit("/", 1)[-1],
        "path": entry.path,
        "sha": entry.sha,
        **_content_links(repo, entry, ref, commit_sha, urls),
    }
