"""The REST endpoints for commit statuses, check runs and branch protection, mixed into :class:`.api.ForgeApi`.

GitHub behaviours kept on purpose:

- a status needs the full sha of a commit (422 ``No commit found for SHA: ...`` otherwise); an unknown state
  is 422 ``state is not included in the list``; the context defaults to ``default``;
- the combined status is ``pending`` when a commit has no status at all;
- check runs, which GitHub only takes from GitHub Apps, are credited to the forge's own app;
- reading a branch's protection needs admin rights (404 otherwise), as on GitHub.

It also answers the push check that the ``proc-receive`` hook (:mod:`.pushhook`) asks for during a git
push over smart HTTP, with the same rules as ``PATCH``/``DELETE git/refs`` (:mod:`.rules`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ci_payloads as C
from . import payloads as P
from . import rules
from .ci import CHECK_CONCLUSIONS, CHECK_STATUSES, STATUS_STATES, CheckRun, CiStore, Protection
from .gitrepo import SHA_RE, ZERO_SHA, BareRepo
from .routing import ApiError, ApiRequest, ApiResponse, Router, not_found, paginate
from .state import ForgeState, Repo, User, now_iso

D_CREATE_STATUS = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
D_COMBINED = "https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference"
D_STATUSES = "https://docs.github.com/rest/commits/statuses#list-commit-statuses-for-a-reference"
D_CREATE_CHECK = "https://docs.github.com/rest/checks/runs#create-a-check-run"
D_CHECKS = "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference"
D_CHECK = "https://docs.github.com/rest/checks/runs#get-a-check-run"
D_UPDATE_CHECK = "https://docs.github.com/rest/checks/runs#update-a-check-run"
D_PROTECTION = "https://docs.github.com/rest/branches/branch-protection#get-branch-protection"
D_STATUS_CHECKS = "https://docs.github.com/rest/branches/branch-protection#get-status-checks-protection"

DESCRIPTION_MAX = 140


def _object(req: ApiRequest, doc: str) -> dict[str, Any]:
    if req.body is None:
        return {}
    if not isinstance(req.body, dict):
        raise ApiError(400, P.error("Problems parsing JSON", 400, doc))
    return req.body


def _invalid(message: str, doc: str) -> ApiError:
    return ApiError(422, P.error(f"Invalid request.\n\n{message}", 422, doc))


def _not_one_of(name: str, value: object, allowed: tuple[str, ...], doc: str) -> ApiError:
    choices = ", ".join(json.dumps(a) for a in allowed)
    return _invalid(f"For 'properties/{name}', {json.dumps(value)} is not one of [{choices}].", doc)


class CiEndpoints:
    """Statuses, check runs and protection; needs the host class's ``state``, ``ci``, ``git_for`` and helpers."""

    state: ForgeState
    ci: CiStore
    git_for: Callable[[Repo], BareRepo]

    if TYPE_CHECKING:

        def _repo(self, req: ApiRequest, doc: str = ...) -> tuple[Repo, BareRepo]: ...

        def _repo_body(self, repo: Repo, git: BareRepo, req: ApiRequest, full: bool = False) -> dict[str, Any]: ...

    def _register_ci(self, router: Router) -> None:
        """Add the routes; call it before ``GET /commits/{ref}`` and ``GET /branches/{branch}``, whose ``+``
        parameters would otherwise swallow the longer paths."""
        r = router.add
        r("POST", "/repos/{owner}/{repo}/statuses/{sha}", self.create_status)
        # the legacy list that PyGithub's Commit.get_statuses() calls; GitHub serves it, undescribed
        r("GET", "/repos/{owner}/{repo}/statuses/{ref+}", self.list_statuses, in_spec=False)
        r("GET", "/repos/{owner}/{repo}/commits/{ref+}/status", self.get_combined_status)
        r("GET", "/repos/{owner}/{repo}/commits/{ref+}/statuses", self.list_statuses)
        r("GET", "/repos/{owner}/{repo}/commits/{ref+}/check-runs", self.list_check_runs)
        r("POST", "/repos/{owner}/{repo}/check-runs", self.create_check_run)
        r("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", self.get_check_run)
        r("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", self.update_check_run)
        r("GET", "/repos/{owner}/{repo}/branches/{branch+}/protection/required_status_checks", self.get_status_checks)
        r("GET", "/repos/{owner}/{repo}/branches/{branch+}/protection", self.get_protection)

    # shared rules ---------------------------------------------------------------------------------------

    def is_admin(self, repo: Repo, who: User) -> bool:
        """The repository's owner and the forge's admins administer it; everyone else is a collaborator."""
        return who.id == repo.owner.id or self.ci.is_forge_admin(who.id)

    def checks_message(self, repo: Repo, protection: Protection, sha: str) -> str | None:
        """GitHub's words for the required checks ``sha`` has not passed, or None."""
        if not protection.required_contexts:
            return None
        outcomes = rules.check_outcomes(self.ci.statuses(repo.id, sha), self.ci.check_runs(repo.id, sha))
        return rules.required_checks_message(protection.required_contexts, outcomes)

    def ref_update_violations(
        self, repo: Repo, git: BareRepo, who: User, refname: str, old: str, new: str
    ) -> list[str]:
        """Why ``who`` may not move ``refname`` from ``old`` to ``new`` (ZERO_SHA: create/delete); ``[]`` if allowed."""
        if not refname.startswith("refs/heads/"):
            return []
        protection = self.ci.protection(repo.id, refname[len("refs/heads/") :])
        if protection is None:
            return []
        deleting = new == ZERO_SHA
        forced = not deleting and old != ZERO_SHA and not git.is_ancestor(old, new)
        message = None if deleting else self.checks_message(repo, protection, new)
        return rules.update_violations(
            protection, admin=self.is_admin(repo, who), deleting=deleting, forced=forced, checks_message=message
        )

    def push_check(self, owner: str, name: str, login: str, commands: list[list[str]]) -> dict[str, list[str]]:
        """The verdict for a smart-HTTP push: ``{refname: [reasons]}`` for each ``[old, new, refname]``."""
        repo = self.state.repo_by_name(owner, name)
        who = self.state.user_by_login(login)
        if repo is None or who is None:
            return {ref: ["Repository or user not found"] for _, _, ref in commands}
        git = self.git_for(repo)
        return {ref: self.ref_update_violations(repo, git, who, ref, old, new) for old, new, ref in commands}

    def protected_branches(self, owner: str, name: str) -> list[str]:
        """The names of the repository's protected branches (sorted; empty for an unknown repository)."""
        repo = self.state.repo_by_name(owner, name)
        return sorted(self.ci.protections(repo.id)) if repo is not None else []

    def protection_summary(self, repo: Repo, branch: str) -> dict[str, Any] | None:
        protection = self.ci.protection(repo.id, branch)
        return C.protection_summary(protection) if protection else None

    # commit statuses ------------------------------------------------------------------------------------

    def _creator(self, cache: dict[int, User], user_id: int) -> User:
        if user_id not in cache:
            found = self.state.user_by_id(user_id)
            assert found is not None
            cache[user_id] = found
        return cache[user_id]

    def _commit_for(self, req: ApiRequest, git: BareRepo, doc: str) -> str:
        ref = req.params["ref"]
        sha = git.resolve_commitish(ref)
        if sha is None:
            raise not_found(doc, f"No commit found for SHA: {ref}")
        return sha

    def create_status(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_CREATE_STATUS)
        sha = req.params["sha"]
        if not SHA_RE.match(sha) or git.object_type(sha) != "commit":
            raise ApiError(422, P.error(f"No commit found for SHA: {sha}", 422, D_CREATE_STATUS))
        data = _object(req, D_CREATE_STATUS)

        def failed(field: str, code: str, message: str | None = None) -> ApiError:
            error: dict[str, Any] = {"resource": "Status", "code": code, "field": field}
            if message:
                error["message"] = message
            return ApiError(422, P.validation_failed([error], D_CREATE_STATUS))

        state = data.get("state")
        if state not in STATUS_STATES:
            raise failed("state", "custom", "state is not included in the list")
        context = data.get("context", "default")
        if not isinstance(context, str) or not context.strip():
            raise failed("context", "missing_field")
        description, target_url = data.get("description"), data.get("target_url")
        for field, value in (("description", description), ("target_url", target_url)):
            if value is not None and not isinstance(value, str):
                raise failed(field, "invalid")
        if description and len(description) > DESCRIPTION_MAX:
            raise failed("description", "custom", f"description is too long (maximum is {DESCRIPTION_MAX} characters)")
        status = self.ci.insert_status(
            repo.id, sha, str(state), context, description or None, target_url or None, req.user.id
        )
        body = C.status(repo, status, req.user, req.urls)
        return ApiResponse(201, body, {"Location": body["url"]})

    def get_combined_status(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_COMBINED)
        sha = self._commit_for(req, git, D_COMBINED)
        latest = rules.latest_per_context(self.ci.statuses(repo.id, sha))
        page, headers = paginate(req, latest, default_per_page=100)
        cache: dict[int, User] = {}
        statuses = [C.simple_status(repo, s, self._creator(cache, s.creator_id), req.urls) for s in page]
        body = C.combined_status(
            repo, sha, rules.combined_state(latest), statuses, self._repo_body(repo, git, req), req.urls
        )
        body["total_count"] = len(latest)
        return ApiResponse(200, body, headers)

    def list_statuses(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_STATUSES)
        sha = self._commit_for(req, git, D_STATUSES)
        page, headers = paginate(req, self.ci.statuses(repo.id, sha))
        cache: dict[int, User] = {}
        return ApiResponse(
            200, [C.status(repo, s, self._creator(cache, s.creator_id), req.urls) for s in page], headers
        )

    # check runs -----------------------------------------------------------------------------------------

    def _check_body(self, repo: Repo, run: CheckRun, req: ApiRequest) -> dict[str, Any]:
        pulls = [
            C.pull_minimal(repo, pr, req.urls)
            for pr in self.state.pulls(repo.id)
            if pr.state == "open" and pr.head_sha == run.head_sha
        ]
        app = C.ci_app(repo.owner, repo.created_at, req.urls)
        return C.check_run(repo, run, app, pulls, req.urls)

    def _check_fields(self, data: dict[str, Any], doc: str, current: CheckRun | None) -> dict[str, object]:
        """Validate a create/update body into column values (``conclusion`` completes the run, as on GitHub)."""
        fields: dict[str, object] = {}
        for key in ("name", "details_url", "external_id", "started_at", "completed_at"):
            if key in data:
                if not isinstance(data[key], str):
                    raise _invalid(f"For 'properties/{key}', {json.dumps(data[key])} is not a string.", doc)
                fields[key] = data[key]
        status = data.get("status")
        if status is not None and status not in CHECK_STATUSES:
            raise _not_one_of("status", status, CHECK_STATUSES, doc)
        conclusion = data.get("conclusion")
        if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
            raise _not_one_of("conclusion", conclusion, CHECK_CONCLUSIONS, doc)
        if conclusion is not None:
            status = "completed"
        if status == "completed" and conclusion is None and (current is None or current.conclusion is None):
            raise _invalid('"conclusion" wasn\'t supplied.', doc)
        if status is not None:
            fields["status"] = status
        if conclusion is not None:
            fields["conclusion"] = conclusion
        if status == "completed":
            fields.setdefault("completed_at", now_iso())
        output = data.get("output")
        if output is not None:
            if not isinstance(output, dict):
                raise _invalid(f"For 'properties/output', {json.dumps(output)} is not an object.", doc)
            fields.update({k: output.get(k) for k in ("title", "summary", "text") if k in output})
        return fields

    def create_check_run(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_CREATE_CHECK)
        data = _object(req, D_CREATE_CHECK)
        for key in ("name", "head_sha"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise _invalid(f'"{key}" wasn\'t supplied.', D_CREATE_CHECK)
        head_sha = str(data["head_sha"])
        if not SHA_RE.match(head_sha) or git.object_type(head_sha) != "commit":
            raise ApiError(422, P.error(f"No commit found for SHA: {head_sha}", 422, D_CREATE_CHECK))
        fields = self._check_fields(data, D_CREATE_CHECK, None)
        fields.setdefault("started_at", now_iso())
        name = str(fields.pop("name"))
        run = self.ci.insert_check_run(repo.id, head_sha, name, **fields)
        return ApiResponse(201, self._check_body(repo, run, req))

    def _run(self, req: ApiRequest, repo: Repo, doc: str) -> CheckRun:
        run_id = req.params["check_run_id"]
        run = self.ci.check_run(repo.id, int(run_id)) if run_id.isdigit() else None
        if run is None:
            raise not_found(doc)
        return run

    def get_check_run(self, req: ApiRequest) -> ApiResponse:
        repo, _ = self._repo(req, D_CHECK)
        return ApiResponse(200, self._check_body(repo, self._run(req, repo, D_CHECK), req))

    def update_check_run(self, req: ApiRequest) -> ApiResponse:
        repo, _ = self._repo(req, D_UPDATE_CHECK)
        run = self._run(req, repo, D_UPDATE_CHECK)
        fields = self._check_fields(_object(req, D_UPDATE_CHECK), D_UPDATE_CHECK, run)
        run = self.ci.update_check_run(run, **fields)
        return ApiResponse(200, self._check_body(repo, run, req))

    def list_check_runs(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_CHECKS)
        sha = self._commit_for(req, git, D_CHECKS)
        runs = self.ci.check_runs(repo.id, sha)
        if req.arg("filter", "latest") == "latest":  # the newest run of each name (runs come newest first)
            newest: dict[str, CheckRun] = {}
            for run in runs:
                newest.setdefault(run.name, run)
            runs = list(newest.values())
        name, status = req.arg("check_name"), req.arg("status")
        runs = [r for r in runs if (name is None or r.name == name) and (status is None or r.status == status)]
        page, headers = paginate(req, runs)
        body = {"total_count": len(runs), "check_runs": [self._check_body(repo, r, req) for r in page]}
        return ApiResponse(200, body, headers)

    # branch protection ----------------------------------------------------------------------------------

    def _protection(self, req: ApiRequest, doc: str) -> tuple[Repo, Protection]:
        repo, git = self._repo(req, doc)
        if not self.is_admin(repo, req.user):
            raise not_found(doc)
        branch = req.params["branch"]
        if git.resolve(f"refs/heads/{branch}") is None:
            raise not_found(doc, "Branch not found")
        protection = self.ci.protection(repo.id, branch)
        if protection is None:
            raise not_found(doc, "Branch not protected")
        return repo, protection

    def get_protection(self, req: ApiRequest) -> ApiResponse:
        repo, protection = self._protection(req, D_PROTECTION)
        return ApiResponse(200, C.branch_protection(repo, protection, req.urls))

    def get_status_checks(self, req: ApiRequest) -> ApiResponse:
        repo, protection = self._protection(req, D_STATUS_CHECKS)
        if not protection.required_contexts:
            raise not_found(D_STATUS_CHECKS, "Required status checks not enabled")
        return ApiResponse(200, C.status_check_policy(repo, protection, req.urls))
