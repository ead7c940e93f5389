"""The REST endpoints a reviewer uses beside the pull request itself: reviews, dismissals, removing
requested reviewers, and writing branch protection. Mixed into :class:`.api.ForgeApi`.

GitHub behaviours kept on purpose:

- ``POST /pulls/{n}/reviews`` with ``event`` APPROVE, REQUEST_CHANGES or COMMENT submits a review (without
  an event it stays PENDING); the author may not approve or request changes on their own pull request
  (422 ``Can not approve your own pull request``); REQUEST_CHANGES and COMMENT need a body; a requested
  reviewer who submits a review is no longer requested;
- ``PUT /reviews/{id}/dismissals`` dismisses an APPROVED or CHANGES_REQUESTED review (state DISMISSED, so
  it no longer counts towards ``required_approving_review_count``, see :func:`.rules.review_message`);
- writing and deleting a branch's protection needs admin rights (404 otherwise, as reading it does);
  ``required_pull_request_reviews: null`` lets changes bypass pull requests; push ``restrictions`` and
  ``strict`` (up-to-date branches) are not kept by this forge and are refused rather than ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ci_payloads as C
from . import payloads as P
from . import review_payloads as R
from .ci import CiStore
from .gitrepo import SHA_RE, BareRepo
from .routing import ApiError, ApiRequest, ApiResponse, Router, not_found, paginate
from .state import ForgeState, Pull, Repo, Review, User

D_CREATE_REVIEW = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
D_LIST_REVIEWS = "https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request"
D_GET_REVIEW = "https://docs.github.com/rest/pulls/reviews#get-a-review-for-a-pull-request"
D_DISMISS = "https://docs.github.com/rest/pulls/reviews#dismiss-a-review-for-a-pull-request"
D_REMOVE_REVIEWERS = "https://docs.github.com/rest/pulls/review-requests#remove-requested-reviewers-from-a-pull-request"
D_UPDATE_PROTECTION = "https://docs.github.com/rest/branches/branch-protection#update-branch-protection"
D_DELETE_PROTECTION = "https://docs.github.com/rest/branches/branch-protection#delete-branch-protection"

EVENTS = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
PROTECTION_KEYS = ("required_status_checks", "enforce_admins", "required_pull_request_reviews", "restrictions")


def _simple_422(message: str, doc: str) -> ApiError:
    """GitHub's ``validation-error-simple``: "Unprocessable Entity" with the reasons as strings."""
    return ApiError(422, P.error("Unprocessable Entity", 422, doc, errors=[message]))


def _invalid(message: str, doc: str) -> ApiError:
    return ApiError(422, P.error(f"Invalid request.\n\n{message}", 422, doc))


def _body(req: ApiRequest, doc: str) -> dict[str, Any]:
    if req.body is None:
        return {}
    if not isinstance(req.body, dict):
        raise ApiError(400, P.error("Problems parsing JSON", 400, doc))
    return req.body


class ReviewEndpoints:
    """Reviews and protection writes; needs the host class's ``state``, ``ci``, ``git_for`` and helpers."""

    state: ForgeState
    ci: CiStore
    git_for: Callable[[Repo], BareRepo]

    if TYPE_CHECKING:

        def _repo(self, req: ApiRequest, doc: str = ...) -> tuple[Repo, BareRepo]: ...

        def _pull(self, req: ApiRequest, repo: Repo, git: BareRepo, doc: str = ...) -> Pull: ...

        def _association(self, repo: Repo, who: User) -> str: ...

        def _pull_body(
            self,
            req: ApiRequest,
            repo: Repo,
            git: BareRepo,
            pr: Pull,
            full: bool,
            repo_body: dict[str, Any] | None = None,
        ) -> dict[str, Any]: ...

        def is_admin(self, repo: Repo, who: User) -> bool: ...

    def _register_reviews(self, router: Router) -> None:
        r = router.add
        r("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", self.list_reviews)
        r("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", self.create_review)
        r("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}", self.get_review)
        r("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/dismissals", self.dismiss_review)
        r("DELETE", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", self.remove_reviewers)
        r("PUT", "/repos/{owner}/{repo}/branches/{branch+}/protection", self.update_protection)
        r("DELETE", "/repos/{owner}/{repo}/branches/{branch+}/protection", self.delete_protection)

    # reviews --------------------------------------------------------------------------------------------

    def _review_body(self, repo: Repo, pr: Pull, review: Review, req: ApiRequest) -> dict[str, Any]:
        author = self.state.user_by_id(review.user_id)
        assert author is not None
        return R.review(repo, pr.number, review, author, self._association(repo, author), req.urls)

    def list_reviews(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_LIST_REVIEWS)
        pr = self._pull(req, repo, git, D_LIST_REVIEWS)
        reviews = self.state.reviews(repo.id, pr.number)
        visible = [r for r in reviews if r.state != "PENDING" or r.user_id == req.user.id]  # drafts are private
        page, headers = paginate(req, visible)
        return ApiResponse(200, [self._review_body(repo, pr, r, req) for r in page], headers)

    def create_review(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_CREATE_REVIEW)
        pr = self._pull(req, repo, git, D_CREATE_REVIEW)
        data = _body(req, D_CREATE_REVIEW)
        event = data.get("event")
        if event is not None and event not in EVENTS:
            choices = ", ".join(f'"{e}"' for e in EVENTS)
            raise _invalid(f"For 'properties/event', \"{event}\" is not one of [{choices}].", D_CREATE_REVIEW)
        body = data.get("body")
        if body is not None and not isinstance(body, str):
            raise _invalid(f"For 'properties/body', {body!r} is not a string.", D_CREATE_REVIEW)
        if req.user.id == pr.user_id and event == "APPROVE":
            raise _simple_422("Can not approve your own pull request", D_CREATE_REVIEW)
        if req.user.id == pr.user_id and event == "REQUEST_CHANGES":
            raise _simple_422("Can not request changes on your own pull request", D_CREATE_REVIEW)
        if event in ("REQUEST_CHANGES", "COMMENT") and not (body or "").strip():
            raise _simple_422("Body can't be blank", D_CREATE_REVIEW)
        commit_id = data.get("commit_id") or pr.head_sha
        if not isinstance(commit_id, str) or not SHA_RE.match(commit_id) or git.object_type(commit_id) != "commit":
            raise _simple_422(f"Commit {commit_id} not found", D_CREATE_REVIEW)
        mine = [r for r in self.state.reviews(repo.id, pr.number) if r.user_id == req.user.id]
        if event is None and any(r.state == "PENDING" for r in mine):
            raise _simple_422("User can only have one pending review per pull request", D_CREATE_REVIEW)
        state = EVENTS[event] if event is not None else "PENDING"
        review = self.state.insert_review(repo.id, pr.number, req.user.id, state, body or "", commit_id)
        if state != "PENDING":  # GitHub: a requested reviewer who reviewed is no longer waited for
            self.state.remove_review_request(repo.id, pr.number, "user", req.user.id)
        self.state.update_pull(pr)
        return ApiResponse(200, self._review_body(repo, pr, review, req))

    def _review(self, req: ApiRequest, repo: Repo, pr: Pull, doc: str) -> Review:
        value = req.params["review_id"]
        review = self.state.review(repo.id, pr.number, int(value)) if value.isdigit() else None
        if review is None or (review.state == "PENDING" and review.user_id != req.user.id):
            raise not_found(doc)
        return review

    def get_review(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_GET_REVIEW)
        pr = self._pull(req, repo, git, D_GET_REVIEW)
        return ApiResponse(200, self._review_body(repo, pr, self._review(req, repo, pr, D_GET_REVIEW), req))

    def dismiss_review(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_DISMISS)
        pr = self._pull(req, repo, git, D_DISMISS)
        review = self._review(req, repo, pr, D_DISMISS)
        data = _body(req, D_DISMISS)
        message = data.get("message")
        if not isinstance(message, str) or not message.strip():
            raise _invalid('"message" wasn\'t supplied.', D_DISMISS)
        if data.get("event", "DISMISS") != "DISMISS":
            raise _invalid(f'For \'properties/event\', "{data.get("event")}" is not one of ["DISMISS"].', D_DISMISS)
        if review.state not in ("APPROVED", "CHANGES_REQUESTED"):
            kind = {"COMMENTED": "commented", "PENDING": "pending", "DISMISSED": "dismissed"}.get(review.state, "")
            raise _simple_422(f"Can not dismiss a {kind} pull request review", D_DISMISS)
        review = self.state.set_review_state(review, "DISMISSED")
        self.state.update_pull(pr)
        return ApiResponse(200, self._review_body(repo, pr, review, req))

    def remove_reviewers(self, req: ApiRequest) -> ApiResponse:
        repo, git = self._repo(req, D_REMOVE_REVIEWERS)
        pr = self._pull(req, repo, git, D_REMOVE_REVIEWERS)
        data = _body(req, D_REMOVE_REVIEWERS)
        logins, slugs = data.get("reviewers"), data.get("team_reviewers") or []
        if not isinstance(logins, list) or not isinstance(slugs, list):
            raise _invalid('"reviewers" wasn\'t supplied.', D_REMOVE_REVIEWERS)
        for login in logins:
            who = self.state.user_by_login(str(login))
            if who is not None:
                self.state.remove_review_request(repo.id, pr.number, "user", who.id)
        for slug in slugs:
            team = self.state.team_by_slug(repo.owner.id, str(slug))
            if team is not None:
                self.state.remove_review_request(repo.id, pr.number, "team", team.id)
        pr = self.state.update_pull(pr)
        return ApiResponse(200, self._pull_body(req, repo, git, pr, full=False))

    # writing branch protection --------------------------------------------------------------------------

    def _admin_branch(self, req: ApiRequest, doc: str) -> tuple[Repo, str]:
        repo, git = self._repo(req, doc)
        if not self.is_admin(repo, req.user):
            raise not_found(doc)
        branch = req.params["branch"]
        if git.resolve(f"refs/heads/{branch}") is None:
            raise not_found(doc, "Branch not found")
        return repo, branch

    def update_protection(self, req: ApiRequest) -> ApiResponse:
        repo, branch = self._admin_branch(req, D_UPDATE_PROTECTION)
        data = _body(req, D_UPDATE_PROTECTION)
        for key in PROTECTION_KEYS:
            if key not in data:
                raise _invalid(f'"{key}" wasn\'t supplied.', D_UPDATE_PROTECTION)
        if data["restrictions"] is not None:
            raise ApiError(
                422,
                P.validation_failed(
                    [{"resource": "ProtectedBranch", "code": "invalid", "field": "restrictions"}],
                    D_UPDATE_PROTECTION,
                    "LocalForge keeps no push restrictions: send restrictions: null",
                ),
            )
        checks = data["required_status_checks"]
        contexts: list[str] = []
        if checks is not None:
            if not isinstance(checks, dict):
                raise _invalid("For 'properties/required_status_checks', it is not an object.", D_UPDATE_PROTECTION)
            raw = checks.get("contexts")
            if raw is None and isinstance(checks.get("checks"), list):
                raw = [c.get("context") for c in checks["checks"] if isinstance(c, dict)]
            if not isinstance(raw, list) or not all(isinstance(c, str) and c for c in raw):
                raise _invalid('"contexts" wasn\'t supplied.', D_UPDATE_PROTECTION)
            contexts = list(raw)
            if checks.get("strict"):  # refused rather than answered as kept
                raise _invalid(
                    "LocalForge does not require branches to be up to date: send strict: false", D_UPDATE_PROTECTION
                )
        reviews = data["required_pull_request_reviews"]
        count, stale = 0, False
        if reviews is not None:
            if not isinstance(reviews, dict):
                message = "For 'properties/required_pull_request_reviews', it is not an object."
                raise _invalid(message, D_UPDATE_PROTECTION)
            count = reviews.get("required_approving_review_count", 1)
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 6:
                raise _invalid("required_approving_review_count must be between 0 and 6", D_UPDATE_PROTECTION)
            stale = bool(reviews.get("dismiss_stale_reviews", False))
        protection = self.ci.protect(
            repo.id,
            branch,
            contexts,
            bool(data["enforce_admins"]),
            require_pull_request=reviews is not None,
            required_approving_review_count=count,
            dismiss_stale_reviews=stale,
            allow_force_pushes=bool(data.get("allow_force_pushes")),
            allow_deletions=bool(data.get("allow_deletions")),
        )
        return ApiResponse(200, C.branch_protection(repo, protection, req.urls))

    def delete_protection(self, req: ApiRequest) -> ApiResponse:
        repo, branch = self._admin_branch(req, D_DELETE_PROTECTION)
        if not self.ci.unprotect(repo.id, branch):
            raise not_found(D_DELETE_PROTECTION, "Branch not protected")
        return ApiResponse(204)
