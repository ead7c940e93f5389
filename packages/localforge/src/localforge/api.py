"""The REST endpoints: what each one checks, changes and returns, following GitHub's behaviour.

Handlers run inside the forge-wide transaction (see :mod:`.state`), so each request sees and leaves a
consistent state. Git facts (branch tips, pull request heads) are read from the bare repositories at
request time: a ``git push`` straight to the repository path is seen by the next request, as on GitHub.

GitHub behaviours kept on purpose, because client code must cope with them:

- an open pull request whose head branch has been deleted is closed;
- an open pull request whose head has reached its base by a push is marked merged;
- ``GET /pulls?head=branch`` without the ``owner:`` prefix ignores the filter (GitHub's well-known trap);
- at most one open pull request per head and base (422 "A pull request already exists for owner:branch.");
- adding a label that does not exist creates it; reviewers must be collaborators and not the author;
- ``permissions`` in repository bodies are the token's user's: admin for the repository's owner and the
  forge's admins, push/triage/pull for every other user (a collaborator);
- a protected branch refuses ``PATCH``/``DELETE git/refs`` as git refuses a push (422 with GitHub's words,
  see :mod:`.rules`), and a pull request into it merges only once its required checks have passed on the
  head (405 ``Required status check "ci" is expected.``), unless an admin may bypass the protection.

Statuses, check runs and protection endpoints live in :mod:`.ci_api`, reviews and protection writes in
:mod:`.review_api`, commits, comparisons and diffs in :mod:`.history_api`, repository lists, labels and
issues in :mod:`.repo_api`: all mixed into :class:`ForgeApi`. ``HEAD`` is answered for every ``GET``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import payloads as P
from . import rules
from .ci import CiStore
from .ci_api import CiEndpoints
from .gitrepo import ZERO_SHA, BareRepo, Signature
from .history_api import HistoryEndpoints
from .repo_api import RepoEndpoints
from .review_api import ReviewEndpoints
from .routing import ApiError, ApiRequest, ApiResponse, Router, media_type, not_found, paginate, text_response
from .state import DuplicateOpenPull, ForgeState, Pull, Repo, User, now_iso

D_REPOS = "https://docs.github.com/rest/repos/repos#get-a-repository"
D_BRANCH = "https://docs.github.com/rest/branches/branches#get-a-branch"
D_REF = "https://docs.github.com/rest/git/refs#get-a-reference"
D_CREATE_REF = "https://docs.github.com/rest/git/refs#create-a-reference"
D_UPDATE_REF = "https://docs.github.com/rest/git/refs#update-a-reference"
D_DELETE_REF = "https://docs.github.com/rest/git/refs#delete-a-reference"
D_PULL = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"
D_CREATE_PULL = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
D_UPDATE_PULL = "https://docs.github.com/rest/pulls/pulls#update-a-pull-request"
D_MERGE = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"
D_REVIEWERS = "https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request"
D_LABELS = "https://docs.github.com/rest/issues/labels#add-labels-to-an-issue"
D_COMMENTS = "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
D_CONTENTS = "https://docs.github.com/rest/repos/contents#get-repository-content"
D_USERS = "https://docs.github.com/rest/users/users#get-a-user"

FORGE_COMMITTER = ("LocalForge", "noreply@localforge.invalid")


def _json_object(req: ApiRequest, doc: str) -> dict[str, Any]:
    if req.body is None:
        return {}
    if not isinstance(req.body, dict):
        raise ApiError(400, P.error("Problems parsing JSON", 400, doc))
    return req.body


def _missing(resource: str, name: str) -> dict[str, Any]:
    return {"resource": resource, "code": "missing_field", "field": name}


class ForgeApi(CiEndpoints, ReviewEndpoints, HistoryEndpoints, RepoEndpoints):
    """Endpoint handlers bound to one forge's state and repositories."""

    def __init__(
        self,
        state: ForgeState,
        git_for: Callable[[Repo], BareRepo],
        rate_snapshot: Callable[[], dict[str, int]],
        ci: CiStore | None = None,
    ) -> None:
        self.state = state
        self.ci = ci if ci is not None else CiStore(state)
        self.git_for = git_for
        self.rate_snapshot = rate_snapshot
        self.router = Router()
        self._register()

    def _register(self) -> None:
        self._register_ci(self.router)  # first: its paths extend {ref+} and {branch+} below
        self._register_reviews(self.router)
        self._register_history(self.router)
        self._register_repos(self.router)
        r = self.router.add
        r("GET", "/user", self.get_authenticated_user)
        r("GET", "/users/{username}", self.get_user)
        r("GET", "/rate_limit", self.get_rate_limit)
        r("GET", "/repos/{owner}/{repo}", self.get_repo)
        r("GET", "/repos/{owner}/{repo}/branches", self.list_branches)
        r("GET", "/repos/{owner}/{repo}/branches/{branch+}", self.get_branch)
        r("GET", "/repos/{owner}/{repo}/commits/{ref+}", self.get_commit)
        r("GET", "/repos/{owner}/{repo}/git/ref/{ref+}", self.get_ref)
        r("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref+}", self.matching_refs)
        r("GET", "/repos/{owner}/{repo}/git/refs/{ref+}", self.get_refs_legacy, in_spec=False)
        r("POST", "/repos/{owner}/{repo}/git/refs", self.create_ref)
        r("PATCH", "/repos/{owner}/{repo}/git/refs/{ref+}", self.update_ref)
        r("DELETE", "/repos/{owner}/{repo}/git/refs/{ref+}", self.delete_ref)
        r("GET", "/repos/{owner}/{repo}/pulls", self.list_pulls)
        r("POST", "/repos/{owner}/{repo}/pulls", self.create_pull)
        r("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", self.get_pull)
        r("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", self.update_pull)
        r("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files", self.list_pull_files)
        r("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", self.check_merged)
        r("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", self.merge_pull)
        r("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", self.get_review_requests)
        r("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", self.request_reviewers)
        r("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels", self.list_labels)
        r("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels", self.add_labels)
        r("PUT", "/repos/{owner}/{repo}/issues/{issue_number}/labels", self.set_labels)
        r("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name+}", self.remove_label)
        r("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments", self.list_comments)
        r("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", self.create_comment)
        r("GET", "/repos/{owner}/{repo}/contents", self.get_contents, in_spec=False)
        r("GET", "/repos/{owner}/{repo}/contents/{path+}", self.get_contents)

    # shared lookups ------------------------------------------------------------------------------------

    def _repo(self, req: ApiRequest, doc: str = D_REPOS) -> tuple[Repo, BareRepo]:
        repo = self.state.repo_by_name(req.params["owner"], req.params["repo"])
        if repo is None:
            raise not_found(doc)
        return repo, self.git_for(repo)

    def _number(self, req: ApiRequest, key: str) -> int:
        value = req.params[key]
        if not value.isdigit():
            raise not_found()
        return int(value)

    def _pull(self, req: ApiRequest, repo: Repo, git: BareRepo, doc: str = D_PULL) -> Pull:
        pr = self.state.pull(repo.id, self._number(req, "pull_number"))
        if pr is None:
            raise not_found(doc)
        return self._refresh(repo, git, pr)

    def _issue(self, req: ApiRequest, repo: Repo, git: BareRepo, doc: str) -> Pull:
        """Pull requests are the only issues this forge keeps."""
        pr = self.state.pull(repo.id, self._number(req, "issue_number"))
        if pr is None:
            raise not_found(doc)
        return self._refresh(repo, git, pr)

    def _refresh(self, repo: Repo, git: BareRepo, pr: Pull) -> Pull:
        """Bring an open pull request in line with its branches, as GitHub does after a push."""
        if pr.state != "open":
            return pr
        head = git.resolve(f"refs/heads/{pr.head_ref}")
        base = git.resolve(f"refs/heads/{pr.base_ref}")
        if head is None:
            return self.state.update_pull(pr, state="closed", closed_at=now_iso())
        changes: dict[str, object] = {}
        if head != pr.head_sha:
            changes["head_sha"] = head
            git.update_ref(f"refs/pull/{pr.number}/head", head)
        if base is not None and base != pr.base_sha:
            changes["base_sha"] = base
        if base is not None and git.is_ancestor(head, base):
            ts = now_iso()
            changes.update(state="closed", closed_at=ts, merged_at=ts, merge_commit_sha=head)
        if changes:
            pr = self.state.update_pull(pr, **changes)
        return pr

    def _merge_blocker(self, repo: Repo, pr: Pull, who: User) -> str | None:
        """Why ``who`` may not merge ``pr`` yet: its base's required reviews, then its required checks,
        unless ``who`` may bypass them (see :mod:`.rules`)."""
        protection = self.ci.protection(repo.id, pr.base_ref)
        if protection is None or rules.may_bypass(protection, self.is_admin(repo, who)):
            return None
        reviews = rules.review_message(protection, self.state.reviews(repo.id, pr.number), pr.head_sha)
        return reviews or self.checks_message(repo, protection, pr.head_sha)

    def _checks_state(self, repo: Repo, pr: Pull, who: User) -> str:
        """``blocked`` by unmet required checks, ``unstable`` with other statuses not green, else ``clean``."""
        if self._merge_blocker(repo, pr, who):
            return "blocked"
        latest = rules.latest_per_context(self.ci.statuses(repo.id, pr.head_sha))
        return "unstable" if latest and rules.combined_state(latest) != "success" else "clean"

    def _association(self, repo: Repo, who: User) -> str:
        return "OWNER" if who.id == repo.owner.id else "COLLABORATOR"

    def _repo_body(self, repo: Repo, git: BareRepo, req: ApiRequest, full: bool = False) -> dict[str, Any]:
        return P.repository(
            repo,
            req.urls,
            open_issues=self.state.count_open_pulls(repo.id),
            size=git.size_kib(),
            permissions=rules.permissions(self.is_admin(repo, req.user)),
            full=full,
        )

    def _pull_body(
        self,
        req: ApiRequest,
        repo: Repo,
        git: BareRepo,
        pr: Pull,
        full: bool,
        repo_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        author = self.state.user_by_id(pr.user_id)
        assert author is not None
        users, teams = self.state.review_requests(repo.id, pr.number)
        commits = additions = deletions = changed = 0
        mergeable: bool | None = None
        mergeable_state = "unknown"
        if full:
            merge_base = git.merge_base(pr.base_sha, pr.head_sha)
            commits = len(git.commits_between(pr.base_sha, pr.head_sha))
            files = git.diff(merge_base, pr.head_sha) if merge_base else ()
            additions = sum(f.additions for f in files)
            deletions = sum(f.deletions for f in files)
            changed = len(files)
            if pr.merged_at is None:
                mergeable = git.merge_tree(pr.base_sha, pr.head_sha).clean
                mergeable_state = "draft" if pr.draft else ("clean" if mergeable else "dirty")
                if mergeable_state == "clean":
                    mergeable_state = self._checks_state(repo, pr, req.user)
        facts = P.PullFacts(
            author=author,
            merged_by=self.state.user_by_id(pr.merged_by_id) if pr.merged_by_id else None,
            labels=[P.label(repo, lb, req.urls) for lb in self.state.issue_labels(repo.id, pr.number)],
            reviewers=[P.user(u, req.urls) for u in users],
            teams=[P.team(t, repo.owner, req.urls) for t in teams],
            repo_body=repo_body if repo_body is not None else self._repo_body(repo, git, req),
            comments=self.state.count_comments(repo.id, pr.number),
            commits=commits,
            additions=additions,
            deletions=deletions,
            changed_files=changed,
            mergeable=mergeable,
            mergeable_state=mergeable_state,
            author_association=self._association(repo, author),
        )
        return P.pull(repo, pr, facts, req.urls, full=full)

    # users ----------------------------------------------------------------------------------------------

    def get_authenticated_user(self, req: ApiRequest) -> ApiResponse:
        body = P.user_detail(req.user, req.urls, self.state.count_repos(req.user.id), private=True)
        return ApiResponse(200, body)

    def get_user(self, req: ApiRequest) -> ApiResponse:
        who = self.state.user_by_login(req.params["username"])
        if who is None:
            raise not_found(D_USERS)
        return ApiResponse(200, P.user_detail(who, req.urls, self.state.count_repos(who.id), private=False))

    def get_rate_limit(self, req: ApiRequest) -> ApiResponse:
        core = self.rate_snapshot()
        idle = {"limit": 30, "remaining": 30, "reset": core["reset"], "used": 0}
        return ApiResponse(200, {"resources": {"core": core, "search": idle, "graphql": dict(core)}, "rate": core})

    # repositories and branches --------------------------------------------------------------------------

    def get_repo(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req)
        return ApiResponse(200, self._repo_body(repo, git, req, full=True))

    def list_branches(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, "https://docs.github.com/rest/branches/branches#list-branches")
        protected = self.ci.protections(repo.id)
        branches = sorted(git.branches())
        wanted = req.arg("protected")
        if wanted in ("true", "false"):
            branches = [(n, s) for n, s in branches if (n in protected) == (wanted == "true")]
        page, headers = paginate(req, branches)
        return ApiResponse(200, [P.short_branch(repo, n, s, req.urls, n in protected) for n, s in page], headers)

    def _commit_body(self, repo: Repo, git: BareRepo, sha: str, req: ApiRequest) -> dict[str, Any]:
        info = git.commit(sha)
        author = self.state.user_by_email(info.author.email) if info.author.email else None
        committer = self.state.user_by_email(info.committer.email) if info.committer.email else None
        return P.commit(repo, info, req.urls, author, committer)

    def get_branch(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_BRANCH)
        name = req.params["branch"]
        sha = git.resolve(f"refs/heads/{name}")
        if sha is None:
            raise not_found(D_BRANCH, "Branch not found")
        body = P.branch(
            repo, name, self._commit_body(repo, git, sha, req), req.urls, self.protection_summary(repo, name)
        )
        return ApiResponse(200, body)

    def get_commit(self, req: ApiRequest) -> ApiResponse:
        doc = "https://docs.github.com/rest/commits/commits#get-a-commit"
        repo, git = self._repo(req, doc)
        sha = git.resolve_commitish(req.params["ref"])
        if sha is None:
            raise ApiError(422, P.error(f"No commit found for SHA: {req.params['ref']}", 422, doc))
        kind = media_type(req)
        media = self.commit_media(git, sha, kind) if kind else None
        return media or ApiResponse(200, self.full_commit_body(repo, git, sha, req))

    # git refs -------------------------------------------------------------------------------------------

    def _ref_body(self, repo: Repo, git: BareRepo, refname: str, sha: str, req: ApiRequest) -> dict[str, Any]:
        return P.git_ref(repo, refname, sha, git.object_type(sha) or "commit", req.urls)

    def get_ref(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_REF)
        refname = "refs/" + req.params["ref"]
        sha = git.resolve(refname)
        if sha is None:
            raise not_found(D_REF)
        return ApiResponse(200, self._ref_body(repo, git, refname, sha, req))

    def matching_refs(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, "https://docs.github.com/rest/git/refs#list-matching-references")
        prefix = "refs/" + req.params["ref"]
        refs = [(n, s, k) for n, s, k in git.list_refs() if n.startswith(prefix)]
        return ApiResponse(200, [P.git_ref(repo, n, s, k, req.urls) for n, s, k in refs])

    def get_refs_legacy(self, req: ApiRequest) -> ApiResponse:
        """``GET /git/refs/{ref}``: GitHub still answers it (one ref, or a list of refs under a prefix)."""
        repo, git = self._repo(req, D_REF)
        refname = "refs/" + req.params["ref"]
        sha = git.resolve(refname)
        if sha is not None:
            return ApiResponse(200, self._ref_body(repo, git, refname, sha, req))
        refs = [(n, s, k) for n, s, k in git.list_refs() if n.startswith(refname.rstrip("/") + "/")]
        if not refs:
            raise not_found(D_REF)
        return ApiResponse(200, [P.git_ref(repo, n, s, k, req.urls) for n, s, k in refs])

    def create_ref(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_CREATE_REF)
        data = _json_object(req, D_CREATE_REF)
        refname, sha = data.get("ref"), data.get("sha")
        if not isinstance(refname, str) or not isinstance(sha, str):
            missing = [n for n in ("ref", "sha") if not isinstance(data.get(n), str)]
            raise ApiError(422, P.error(f'Invalid request.\n\n"{missing[0]}" wasn\'t supplied.', 422, D_CREATE_REF))
        if not refname.startswith("refs/") or refname.count("/") < 2 or not git.valid_ref_name(refname):
            raise ApiError(422, P.error(f"{refname} is not a valid ref name.", 422, D_CREATE_REF))
        if not re.fullmatch(r"[0-9a-f]{40}", sha) or git.object_type(sha) is None:
            raise ApiError(422, P.error("Object does not exist", 422, D_CREATE_REF))
        if git.resolve(refname) is None:  # a protection may name a branch that does not exist yet
            refused = self.ref_update_violations(repo, git, req.user, refname, ZERO_SHA, sha)
            if refused:
                raise ApiError(422, P.error(refused[0], 422, D_CREATE_REF))
        if git.resolve(refname) is not None or not git.update_ref(refname, sha, ZERO_SHA):
            raise ApiError(422, P.error("Reference already exists", 422, D_CREATE_REF))
        self.state.touch_repo_push(repo.id)
        body = self._ref_body(repo, git, refname, sha, req)
        return ApiResponse(201, body, {"Location": body["url"]})

    def update_ref(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_UPDATE_REF)
        data = _json_object(req, D_UPDATE_REF)
        refname = "refs/" + req.params["ref"]
        sha = data.get("sha")
        current = git.resolve(refname)
        if current is None:
            raise ApiError(422, P.error("Reference does not exist", 422, D_UPDATE_REF))
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha) or git.object_type(sha) is None:
            raise ApiError(422, P.error("Object does not exist", 422, D_UPDATE_REF))
        if not data.get("force") and not git.is_ancestor(current, sha):
            raise ApiError(422, P.error("Update is not a fast forward", 422, D_UPDATE_REF))
        refused = self.ref_update_violations(repo, git, req.user, refname, current, sha)
        if refused:
            raise ApiError(422, P.error(refused[0], 422, D_UPDATE_REF))
        if not git.update_ref(refname, sha, current):
            raise ApiError(409, P.error("Reference cannot be updated", 409, D_UPDATE_REF))
        self.state.touch_repo_push(repo.id)
        return ApiResponse(200, self._ref_body(repo, git, refname, sha, req))

    def delete_ref(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_DELETE_REF)
        refname = "refs/" + req.params["ref"]
        current = git.resolve(refname)
        if current is None:
            raise ApiError(422, P.error("Reference does not exist", 422, D_DELETE_REF))
        refused = self.ref_update_violations(repo, git, req.user, refname, current, ZERO_SHA)
        if refused:
            raise ApiError(422, P.error(refused[0], 422, D_DELETE_REF))
        if refname == f"refs/heads/{repo.default_branch}":
            raise ApiError(422, P.error("Cannot delete the default branch", 422, D_DELETE_REF))
        if not git.delete_ref(refname, current):
            raise ApiError(409, P.error("Reference cannot be deleted", 409, D_DELETE_REF))
        if refname.startswith("refs/heads/"):  # GitHub closes open pulls whose head branch goes away
            for pr in self.state.pulls(repo.id):
                if pr.state == "open" and pr.head_ref == refname[len("refs/heads/") :]:
                    self._refresh(repo, git, pr)
        self.state.touch_repo_push(repo.id)
        return ApiResponse(204)

    # pull requests --------------------------------------------------------------------------------------

    def list_pulls(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, "https://docs.github.com/rest/pulls/pulls#list-pull-requests")
        state = req.arg("state", "open")
        if state not in ("open", "closed", "all"):
            raise ApiError(
                422,
                P.validation_failed([{"resource": "PullRequest", "field": "state", "code": "invalid", "value": state}]),
            )
        pulls = [self._refresh(repo, git, pr) for pr in self.state.pulls(repo.id)]
        if state != "all":
            pulls = [pr for pr in pulls if pr.state == state]
        head = req.arg("head")
        if head and ":" in head:  # without "owner:" GitHub ignores the filter
            head_owner, _, head_ref = head.partition(":")
            if head_owner.lower() != repo.owner.login.lower():
                pulls = []
            pulls = [pr for pr in pulls if pr.head_ref == head_ref]
        base = req.arg("base")
        if base:
            pulls = [pr for pr in pulls if pr.base_ref == base]
        sort = req.arg("sort", "created")
        key = "updated_at" if sort in ("updated", "long-running") else "created_at"
        default_direction = "desc" if sort == "created" else "asc"
        reverse = req.arg("direction", default_direction) == "desc"
        pulls.sort(key=lambda pr: (getattr(pr, key), pr.number), reverse=reverse)
        page, headers = paginate(req, pulls)
        repo_body = self._repo_body(repo, git, req)
        body = [self._pull_body(req, repo, git, pr, full=False, repo_body=repo_body) for pr in page]
        return ApiResponse(200, body, headers)

    def create_pull(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_CREATE_PULL)
        data = _json_object(req, D_CREATE_PULL)
        missing = [_missing("PullRequest", n) for n in ("title", "head", "base") if not data.get(n)]
        if missing:
            raise ApiError(422, P.validation_failed(missing, D_CREATE_PULL))
        head, base = str(data["head"]), str(data["base"])
        head_owner, _, head_ref = head.rpartition(":")
        if head_owner and head_owner.lower() != repo.owner.login.lower():
            invalid = [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
            raise ApiError(422, P.validation_failed(invalid, D_CREATE_PULL))
        head_sha = git.resolve(f"refs/heads/{head_ref}")
        base_sha = git.resolve(f"refs/heads/{base}")
        invalid = [
            {"resource": "PullRequest", "field": f, "code": "invalid"}
            for f, sha in (("base", base_sha), ("head", head_sha))
            if sha is None
        ]
        if invalid:
            raise ApiError(422, P.validation_failed(invalid, D_CREATE_PULL))
        assert head_sha is not None and base_sha is not None
        label = f"{repo.owner.login}:{head_ref}"
        duplicate = P.validation_failed(
            [{"resource": "PullRequest", "code": "custom", "message": f"A pull request already exists for {label}."}],
            D_CREATE_PULL,
        )
        existing = self.state.open_pull_for(repo.id, head_ref, base)
        if existing is not None and self._refresh(repo, git, existing).state == "open":
            raise ApiError(422, duplicate)
        if not git.commits_between(base_sha, head_sha):
            nothing = [
                {"resource": "PullRequest", "code": "custom", "message": f"No commits between {base} and {head_ref}"}
            ]
            raise ApiError(422, P.validation_failed(nothing, D_CREATE_PULL))
        body = data.get("body")
        try:
            pr = self.state.insert_pull(
                repo.id,
                req.user.id,
                str(data["title"]),
                body if isinstance(body, str) else None,
                head_ref,
                head_sha,
                base,
                base_sha,
                bool(data.get("draft", False)),
            )
        except DuplicateOpenPull as exc:
            raise ApiError(422, duplicate) from exc
        git.update_ref(f"refs/pull/{pr.number}/head", head_sha)
        out = self._pull_body(req, repo, git, pr, full=True)
        return ApiResponse(201, out, {"Location": out["url"]})

    def get_pull(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_PULL)
        pr = self._pull(req, repo, git)
        media = self.pull_media(git, pr, media_type(req))
        return media or ApiResponse(200, self._pull_body(req, repo, git, pr, full=True))

    def update_pull(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_UPDATE_PULL)
        pr = self._pull(req, repo, git, D_UPDATE_PULL)
        data = _json_object(req, D_UPDATE_PULL)
        changes: dict[str, object] = {}
        if "title" in data:
            if not isinstance(data["title"], str) or not data["title"]:
                raise ApiError(422, P.validation_failed([_missing("PullRequest", "title")], D_UPDATE_PULL))
            changes["title"] = data["title"]
        if "body" in data:
            changes["body"] = data["body"] if isinstance(data["body"], str) else None
        if "base" in data:
            base = str(data["base"])
            base_sha = git.resolve(f"refs/heads/{base}")
            if base_sha is None:
                invalid = [{"resource": "PullRequest", "field": "base", "code": "invalid"}]
                raise ApiError(422, P.validation_failed(invalid, D_UPDATE_PULL))
            changes.update(base_ref=base, base_sha=base_sha)
        if "state" in data:
            new_state = data["state"]
            if new_state not in ("open", "closed"):
                invalid = [{"resource": "PullRequest", "field": "state", "code": "invalid"}]
                raise ApiError(422, P.validation_failed(invalid, D_UPDATE_PULL))
            if new_state == "closed" and pr.state == "open":
                changes.update(state="closed", closed_at=now_iso())
            elif new_state == "open" and pr.state == "closed":
                changes.update(self._reopen_changes(repo, git, pr))
        try:
            pr = self.state.update_pull(pr, **changes) if changes else pr
        except DuplicateOpenPull as exc:
            message = f"A pull request already exists for {repo.owner.login}:{pr.head_ref}."
            custom = [{"resource": "PullRequest", "code": "custom", "message": message}]
            raise ApiError(422, P.validation_failed(custom, D_UPDATE_PULL)) from exc
        return ApiResponse(200, self._pull_body(req, repo, git, self._refresh(repo, git, pr), full=True))

    def _reopen_changes(self, repo: Repo, git: BareRepo, pr: Pull) -> dict[str, object]:
        def refuse(message: str) -> ApiError:
            custom = [{"resource": "PullRequest", "code": "custom", "field": "state", "message": message}]
            return ApiError(422, P.validation_failed(custom, D_UPDATE_PULL))

        if pr.merged_at is not None:
            raise refuse("state cannot be changed. The pull request has already been merged.")
        head = git.resolve(f"refs/heads/{pr.head_ref}")
        if head is None:
            raise refuse(f"state cannot be changed. The {pr.head_ref} branch has been deleted.")
        return {"state": "open", "closed_at": None, "head_sha": head}

    def list_pull_files(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, "https://docs.github.com/rest/pulls/pulls#list-pull-requests-files")
        pr = self._pull(req, repo, git)
        merge_base = git.merge_base(pr.base_sha, pr.head_sha)
        files = git.diff(merge_base, pr.head_sha) if merge_base else ()
        page, headers = paginate(req, files)
        return ApiResponse(200, [P.diff_entry(repo, f, pr.head_sha, req.urls) for f in page], headers)

    def check_merged(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_MERGE)
        pr = self._pull(req, repo, git)
        if pr.merged_at is None:
            raise not_found(D_MERGE)
        return ApiResponse(204)

    def merge_pull(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_MERGE)
        pr = self._pull(req, repo, git, D_MERGE)
        data = _json_object(req, D_MERGE)
        not_mergeable = ApiError(
            405, {"message": "Pull Request is not mergeable", "documentation_url": D_MERGE, "status": "405"}
        )
        if pr.state != "open":
            raise not_mergeable
        if pr.draft:  # GitHub's answer; the crew opens risky requests as drafts so that nobody merges them
            raise ApiError(
                405, {"message": "Pull Request is still a draft", "documentation_url": D_MERGE, "status": "405"}
            )
        sha = data.get("sha")
        if sha is not None and sha != pr.head_sha:
            raise ApiError(
                409,
                {
                    "message": "Head branch was modified. Review and try the merge again.",
                    "documentation_url": D_MERGE,
                    "status": "409",
                },
            )
        method = data.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            invalid = [{"resource": "PullRequest", "field": "merge_method", "code": "invalid"}]
            raise ApiError(422, P.validation_failed(invalid, D_MERGE))
        base_tip = git.resolve(f"refs/heads/{pr.base_ref}")
        if base_tip is None:
            raise not_mergeable
        blocker = self._merge_blocker(repo, pr, req.user)
        if blocker:
            raise ApiError(405, {"message": blocker, "documentation_url": D_MERGE, "status": "405"})
        merger = Signature(req.user.name or req.user.login, self._email(req.user), "")
        committer = Signature(*FORGE_COMMITTER, "")
        commits = git.commits_between(base_tip, pr.head_sha)
        if method == "rebase":
            if any(len(git.commit(c).parents) > 1 for c in commits):
                raise ApiError(
                    405, {"message": "This branch can't be rebased", "documentation_url": D_MERGE, "status": "405"}
                )
            new_tip = git.replay(base_tip, commits, committer)
            if new_tip is None:
                raise not_mergeable
        else:
            outcome = git.merge_tree(base_tip, pr.head_sha)
            if not outcome.clean or outcome.tree is None:
                raise not_mergeable
            if method == "merge":
                title = data.get("commit_title") or (
                    f"Merge pull request #{pr.number} from {repo.owner.login}/{pr.head_ref}"
                )
                message = data.get("commit_message", pr.title)
                parents = [base_tip, pr.head_sha]
            else:
                title = data.get("commit_title") or f"{pr.title} (#{pr.number})"
                default_message = "\n\n".join(f"* {git.commit(c).message.strip()}" for c in commits)
                message = data.get("commit_message", default_message)
                parents = [base_tip]
            full_message = f"{title}\n\n{message}".rstrip() + "\n"
            new_tip = git.commit_tree(outcome.tree, parents, full_message, merger, committer)
        if not git.update_ref(f"refs/heads/{pr.base_ref}", new_tip, base_tip):
            raise ApiError(
                409,
                {
                    "message": "Base branch was modified. Review and try the merge again.",
                    "documentation_url": D_MERGE,
                    "status": "409",
                },
            )
        ts = now_iso()
        self.state.update_pull(
            pr,
            state="closed",
            closed_at=ts,
            merged_at=ts,
            merge_commit_sha=new_tip,
            merged_by_id=req.user.id,
            base_sha=base_tip,
        )
        self.state.touch_repo_push(repo.id)
        return ApiResponse(200, {"sha": new_tip, "merged": True, "message": "Pull Request successfully merged"})

    def _email(self, who: User) -> str:
        return who.email or f"{who.id}+{who.login}@users.noreply.localforge.invalid"

    # review requests ------------------------------------------------------------------------------------

    def get_review_requests(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req)
        pr = self._pull(req, repo, git)
        users, teams = self.state.review_requests(repo.id, pr.number)
        return ApiResponse(
            200,
            {"users": [P.user(u, req.urls) for u in users], "teams": [P.team(t, repo.owner, req.urls) for t in teams]},
        )

    def request_reviewers(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_REVIEWERS)
        pr = self._pull(req, repo, git, D_REVIEWERS)
        data = _json_object(req, D_REVIEWERS)
        logins = data.get("reviewers") or []
        slugs = data.get("team_reviewers") or []
        if not isinstance(logins, list) or not isinstance(slugs, list) or not (logins or slugs):
            raise ApiError(422, P.error('Invalid request.\n\nNo subschema in "anyOf" matched.', 422, D_REVIEWERS))
        users = [self.state.user_by_login(str(login)) for login in logins]
        teams = [self.state.team_by_slug(repo.owner.id, str(slug)) for slug in slugs]
        if any(u is not None and u.id == pr.user_id for u in users):
            raise ApiError(422, P.error("Review cannot be requested from pull request author.", 422, D_REVIEWERS))
        if any(u is None or u.type != "User" for u in users) or any(t is None for t in teams):
            message = (
                "Reviews may only be requested from collaborators. One or more of the users or teams you "
                f"specified is not a collaborator of the {repo.full_name} repository."
            )
            raise ApiError(422, P.error(message, 422, D_REVIEWERS))
        for u in users:
            assert u is not None
            self.state.add_review_request(repo.id, pr.number, "user", u.id)
        for t in teams:
            assert t is not None
            self.state.add_review_request(repo.id, pr.number, "team", t.id)
        pr = self.state.update_pull(pr)
        return ApiResponse(201, self._pull_body(req, repo, git, pr, full=False))

    # labels and comments --------------------------------------------------------------------------------

    def _label_names(self, req: ApiRequest) -> list[str]:
        data = req.body
        items = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(items, list) or not items:
            raise ApiError(422, P.error('Invalid request.\n\nNo subschema in "oneOf" matched.', 422, D_LABELS))
        names = []
        for item in items:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip():
                raise ApiError(
                    422,
                    P.validation_failed(
                        [{"resource": "Label", "code": "invalid", "field": "name", "value": name}], D_LABELS
                    ),
                )
            names.append(name.strip())
        return names

    def _labels_body(self, repo: Repo, number: int, req: ApiRequest) -> list[dict[str, Any]]:
        return [P.label(repo, lb, req.urls) for lb in self.state.issue_labels(repo.id, number)]

    def list_labels(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_LABELS)
        pr = self._issue(req, repo, git, D_LABELS)
        page, headers = paginate(req, self._labels_body(repo, pr.number, req))
        return ApiResponse(200, page, headers)

    def add_labels(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_LABELS)
        pr = self._issue(req, repo, git, D_LABELS)
        for name in self._label_names(req):
            self.state.add_issue_label(repo.id, pr.number, self.state.ensure_label(repo.id, name))
        self.state.update_pull(pr)
        return ApiResponse(200, self._labels_body(repo, pr.number, req))

    def set_labels(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_LABELS)
        pr = self._issue(req, repo, git, D_LABELS)
        names = self._label_names(req) if req.body not in ([], {"labels": []}) else []
        self.state.clear_issue_labels(repo.id, pr.number)
        for name in names:
            self.state.add_issue_label(repo.id, pr.number, self.state.ensure_label(repo.id, name))
        self.state.update_pull(pr)
        return ApiResponse(200, self._labels_body(repo, pr.number, req))

    def remove_label(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_LABELS)
        pr = self._issue(req, repo, git, D_LABELS)
        if not self.state.remove_issue_label(repo.id, pr.number, req.params["name"]):
            raise not_found(D_LABELS, "Label does not exist")
        self.state.update_pull(pr)
        return ApiResponse(200, self._labels_body(repo, pr.number, req))

    def list_comments(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_COMMENTS)
        pr = self._issue(req, repo, git, D_COMMENTS)
        comments = self.state.comments(repo.id, pr.number, req.arg("since"))
        page, headers = paginate(req, comments)
        return ApiResponse(200, [self._comment_body(repo, c, req) for c in page], headers)

    def _comment_body(self, repo: Repo, c: Any, req: ApiRequest) -> dict[str, Any]:
        author = self.state.user_by_id(c.user_id)
        assert author is not None
        return P.issue_comment(repo, c, author, self._association(repo, author), req.urls)

    def create_comment(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_COMMENTS)
        pr = self._issue(req, repo, git, D_COMMENTS)
        data = _json_object(req, D_COMMENTS)
        body = data.get("body")
        if not isinstance(body, str) or not body:
            raise ApiError(422, P.validation_failed([_missing("IssueComment", "body")], D_COMMENTS))
        comment = self.state.insert_comment(repo.id, pr.number, req.user.id, body)
        self.state.update_pull(pr)
        out = self._comment_body(repo, comment, req)
        return ApiResponse(201, out, {"Location": out["url"]})

    # contents -------------------------------------------------------------------------------------------

    def get_contents(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_CONTENTS)
        path = req.params.get("path", "").strip("/")
        ref = req.arg("ref") or repo.default_branch
        if git.resolve(f"refs/heads/{repo.default_branch}") is None and not git.list_refs("refs/heads/"):
            raise not_found(D_CONTENTS, "This repository is empty.")
        commit_sha = git.resolve_commitish(ref)
        if commit_sha is None:
            raise not_found(D_CONTENTS, f"No commit found for the ref {ref}")
        entry = git.tree_entry(commit_sha, path)
        if entry is None:
            raise not_found(D_CONTENTS)
        if entry.type == "tree":
            entries = git.list_tree(commit_sha, path)
            return ApiResponse(200, [P.content_entry(repo, e, ref, commit_sha, req.urls) for e in entries])
        if entry.type == "commit":
            return ApiResponse(200, P.content_entry(repo, entry, ref, commit_sha, req.urls))
        if media_type(req) == "raw":  # application/vnd.github.raw(+json): the file's bytes
            return text_response("raw", git.blob(entry.sha))
        return ApiResponse(200, P.content_file(repo, entry, git.blob(entry.sha), ref, commit_sha, req.urls))


def raw_file(state: ForgeState, git_for: Callable[[Repo], BareRepo], owner: str, name: str, rest: str) -> bytes | None:
    """``/{owner}/{repo}/raw/{ref}/{path}`` as linked from ``raw_url``/``download_url``; None if absent."""
    repo = state.repo_by_name(owner, name)
    if repo is None:
        return None
    git = git_for(repo)
    parts = rest.split("/")
    for cut in range(len(parts) - 1, 0, -1):  # the longest ref that exists wins
        commit_sha = git.resolve_commitish("/".join(parts[:cut]))
        if commit_sha is None:
            continue
        entry = git.tree_entry(commit_sha, "/".join(parts[cut:]))
        if entry is None or entry.type != "blob":
            return None
        return git.blob(entry.sha)
    return None
