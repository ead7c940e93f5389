"""The REST endpoints for listing repositories, a repository's labels, and pull requests seen as issues.
Mixed into :class:`.api.ForgeApi`.

GitHub behaviours kept on purpose:

- ``GET /user/repos`` lists every repository the token's user can reach (on this forge every user is a
  collaborator of every repository), sorted by ``full_name`` unless ``sort`` says otherwise;
  ``GET /orgs/{org}/repos`` lists an organisation's (404 for a login that is not an organisation);
- ``POST /labels`` creates a label (422 ``already_exists`` for a name taken, case-insensitively; a color
  is six hex digits without ``#``);
- ``GET``/``PATCH /issues/{n}`` work for pull requests (the only issues the forge keeps); ``PATCH`` changes
  title, body, state and labels, and closing the issue closes the pull request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import payloads as P
from . import review_payloads as R
from .ci import CiStore
from .gitrepo import BareRepo
from .routing import ApiError, ApiRequest, ApiResponse, Router, not_found, paginate
from .state import ForgeState, Pull, Repo, User, now_iso

D_USER_REPOS = "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user"
D_ORG_REPOS = "https://docs.github.com/rest/repos/repos#list-organization-repositories"
D_REPO_LABELS = "https://docs.github.com/rest/issues/labels#list-labels-for-a-repository"
D_CREATE_LABEL = "https://docs.github.com/rest/issues/labels#create-a-label"
D_GET_LABEL = "https://docs.github.com/rest/issues/labels#get-a-label"
D_ISSUE = "https://docs.github.com/rest/issues/issues#get-an-issue"
D_UPDATE_ISSUE = "https://docs.github.com/rest/issues/issues#update-an-issue"

COLOR_RE = re.compile(r"^[0-9a-fA-F]{6}$")


class RepoEndpoints:
    """Repository lists, labels and issues; needs the host class's ``state``, ``git_for`` and helpers."""

    state: ForgeState
    ci: CiStore
    git_for: Callable[[Repo], BareRepo]

    if TYPE_CHECKING:

        def _repo(self, req: ApiRequest, doc: str = ...) -> tuple[Repo, BareRepo]: ...

        def _issue(self, req: ApiRequest, repo: Repo, git: BareRepo, doc: str) -> Pull: ...

        def _association(self, repo: Repo, who: User) -> str: ...

        def _repo_body(self, repo: Repo, git: BareRepo, req: ApiRequest, full: bool = False) -> dict[str, Any]: ...

        def _label_names(self, req: ApiRequest) -> list[str]: ...

        def _reopen_changes(self, repo: Repo, git: BareRepo, pr: Pull) -> dict[str, object]: ...

    def _register_repos(self, router: Router) -> None:
        r = router.add
        r("GET", "/user/repos", self.list_user_repos)
        r("GET", "/orgs/{org}/repos", self.list_org_repos)
        r("GET", "/repos/{owner}/{repo}/labels", self.list_repo_labels)
        r("POST", "/repos/{owner}/{repo}/labels", self.create_label)
        r("GET", "/repos/{owner}/{repo}/labels/{name+}", self.get_label)
        r("GET", "/repos/{owner}/{repo}/issues/{issue_number}", self.get_issue)
        r("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}", self.update_issue)

    # repositories ---------------------------------------------------------------------------------------

    def _sorted_repos(self, req: ApiRequest, repos: list[Repo], default_sort: str) -> list[Repo]:
        sort = req.arg("sort", default_sort)
        key = {"created": "created_at", "updated": "updated_at", "pushed": "pushed_at"}.get(sort or "")
        if key is None:
            return sorted(repos, key=lambda r: r.full_name.lower(), reverse=req.arg("direction") == "desc")
        return sorted(repos, key=lambda r: (getattr(r, key), r.id), reverse=req.arg("direction", "desc") == "desc")

    def list_user_repos(self, req: ApiRequest) -> ApiResponse:
        repos = self.state.all_repos()
        if req.arg("type") == "owner" or req.arg("affiliation") == "owner":
            repos = [r for r in repos if r.owner.id == req.user.id]
        page, headers = paginate(req, self._sorted_repos(req, repos, "full_name"))
        return ApiResponse(200, [self._repo_body(r, self.git_for(r), req) for r in page], headers)

    def list_org_repos(self, req: ApiRequest) -> ApiResponse:
        org = self.state.user_by_login(req.params["org"])
        if org is None or org.type != "Organization":
            raise not_found(D_ORG_REPOS)
        repos = [r for r in self.state.all_repos() if r.owner.id == org.id]
        page, headers = paginate(req, self._sorted_repos(req, repos, "created"))
        return ApiResponse(200, [self._repo_body(r, self.git_for(r), req) for r in page], headers)

    # labels ---------------------------------------------------------------------------------------------

    def list_repo_labels(self, req: ApiRequest) -> ApiResponse:
        repo, _ = self._repo(req, D_REPO_LABELS)
        page, headers = paginate(req, self.state.repo_labels(repo.id))
        return ApiResponse(200, [P.label(repo, lb, req.urls) for lb in page], headers)

    def create_label(self, req: ApiRequest) -> ApiResponse:
        repo, _ = self._repo(req, D_CREATE_LABEL)
        data = req.body if isinstance(req.body, dict) else {}
        name, color, description = data.get("name"), data.get("color", "ededed"), data.get("description")
        if not isinstance(name, str) or not name.strip():
            missing = [{"resource": "Label", "code": "missing_field", "field": "name"}]
            raise ApiError(422, P.validation_failed(missing, D_CREATE_LABEL))
        if not isinstance(color, str) or not COLOR_RE.match(color.removeprefix("#")):
            invalid = [{"resource": "Label", "code": "invalid", "field": "color"}]
            raise ApiError(422, P.validation_failed(invalid, D_CREATE_LABEL))
        if description is not None and not isinstance(description, str):
            invalid = [{"resource": "Label", "code": "invalid", "field": "description"}]
            raise ApiError(422, P.validation_failed(invalid, D_CREATE_LABEL))
        if self.state.label_by_name(repo.id, name.strip()) is not None:
            taken = [{"resource": "Label", "code": "already_exists", "field": "name"}]
            raise ApiError(422, P.validation_failed(taken, D_CREATE_LABEL))
        label = self.state.insert_label(repo.id, name.strip(), color.removeprefix("#").lower(), description)
        body = P.label(repo, label, req.urls)
        return ApiResponse(201, body, {"Location": body["url"]})

    def get_label(self, req: ApiRequest) -> ApiResponse:
        repo, _ = self._repo(req, D_GET_LABEL)
        label = self.state.label_by_name(repo.id, req.params["name"])
        if label is None:
            raise not_found(D_GET_LABEL)
        return ApiResponse(200, P.label(repo, label, req.urls))

    # issues ---------------------------------------------------------------------------------------------

    def _issue_body(self, repo: Repo, pr: Pull, req: ApiRequest) -> dict[str, Any]:
        author = self.state.user_by_id(pr.user_id)
        assert author is not None
        labels = [P.label(repo, lb, req.urls) for lb in self.state.issue_labels(repo.id, pr.number)]
        comments = self.state.count_comments(repo.id, pr.number)
        return R.issue(repo, pr, author, labels, comments, self._association(repo, author), req.urls)

    def get_issue(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_ISSUE)
        pr = self._issue(req, repo, git, D_ISSUE)
        return ApiResponse(200, self._issue_body(repo, pr, req))

    def update_issue(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_UPDATE_ISSUE)
        pr = self._issue(req, repo, git, D_UPDATE_ISSUE)
        data = req.body if isinstance(req.body, dict) else {}
        changes: dict[str, object] = {}
        if "title" in data:
            if not isinstance(data["title"], str) or not data["title"].strip():
                missing = [{"resource": "Issue", "code": "missing_field", "field": "title"}]
                raise ApiError(422, P.validation_failed(missing, D_UPDATE_ISSUE))
            changes["title"] = data["title"]
        if "body" in data:
            changes["body"] = data["body"] if isinstance(data["body"], str) else None
        if "state" in data:
            if data["state"] not in ("open", "closed"):
                invalid = [{"resource": "Issue", "code": "invalid", "field": "state", "value": str(data["state"])}]
                raise ApiError(422, P.validation_failed(invalid, D_UPDATE_ISSUE))
            if data["state"] == "closed" and pr.state == "open":
                changes.update(state="closed", closed_at=now_iso())
            elif data["state"] == "open" and pr.state == "closed":
                changes.update(self._reopen_changes(repo, git, pr))
        if "labels" in data:
            names = self._label_names(req) if data["labels"] else []
            self.state.clear_issue_labels(repo.id, pr.number)
            for name in names:
                self.state.add_issue_label(repo.id, pr.number, self.state.ensure_label(repo.id, name))
        pr = self.state.update_pull(pr, **changes)
        return ApiResponse(200, self._issue_body(repo, pr, req))
