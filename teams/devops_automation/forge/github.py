"""The GitHub adapter of the forge interface: PyGithub against github.com, GitHub Enterprise or the
embedded local forge. The only module of the product that imports ``github``.

Every PyGithub and ``requests`` exception is mapped into :class:`~devops_automation.errors.ForgeError`
(with the HTTP status) before it leaves this module. Transient failures (5xx, connection errors,
GitHub's rate limits, by its documented rules: see :func:`rate_limit_wait`) are retried with tenacity;
a 4xx that will not change is raised at once.
PyGithub's own retry is switched off so there is exactly one retry policy, this one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException
from github.PullRequest import PullRequest
from github.Repository import Repository
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from ..errors import BroadTokenError, ForgeError
from ..models import PullRequestRef
from .base import ChecksVerdict, PRContent, http_token_env
from .base import PullRequest as PullRequestView
from .codeowners import CODEOWNERS_PATHS, Reviewers, reviewers_for

T = TypeVar("T")


__all__ = ["BroadTokenError", "ForgeError", "GitHubForge"]


#: GitHub: after a secondary rate limit without ``retry-after``, "wait for at least one minute before
#: retrying", longer each time it persists (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api).
SECONDARY_MIN_WAIT_SECONDS = 60.0
#: CODEOWNERS files kept, one per commit (:meth:`GitHubForge.reviewers`): a commit's file never changes.
CODEOWNERS_CACHED_COMMITS = 16
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256 object names


def _headers(exc: GithubException) -> dict[str, str]:
    return {k.lower(): str(v) for k, v in (exc.headers or {}).items()}


def rate_limit_wait(exc: BaseException | None, attempt: int, now: float) -> float | None:
    """Seconds GitHub's documented rules say to wait before retrying ``exc`` (None: not a rate limit).

    - ``retry-after`` present: that many seconds;
    - ``x-ratelimit-remaining: 0`` (the primary limit): until ``x-ratelimit-reset`` (epoch seconds, UTC);
    - otherwise a 429, or a 403 that says "rate limit" (the secondary limit): at least one minute,
      doubling with each ``attempt`` (1-based).
    """
    if not isinstance(exc, GithubException) or exc.status not in (403, 429):
        return None
    headers = _headers(exc)
    if "retry-after" in headers:
        try:
            return max(0.0, float(headers["retry-after"]))
        except ValueError:
            pass
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now) + 1.0
        except ValueError:
            pass
    message = str(exc.data).lower() if exc.data else ""
    if exc.status == 429 or "rate limit" in message or headers.get("x-ratelimit-remaining") == "0":
        return SECONDARY_MIN_WAIT_SECONDS * 2 ** max(0, attempt - 1)
    return None  # a plain 403: permissions, which waiting does not change


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: connection failures, 5xx, and rate limits (GitHub's 403/429 rules)."""
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, GithubException):
        return exc.status >= 500 or rate_limit_wait(exc, 1, time.time()) is not None
    return False


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict) and data.get("message"):
        return " ".join(str(data["message"]).split())[:300]
    return " ".join(str(data or exc).split())[:300]


class GitHubForge:
    """Pull requests on ``repo_full_name`` through PyGithub."""

    def __init__(
        self,
        api_url: str,
        token: str,
        repo_full_name: str,
        *,
        label: str = "GitHub",
        max_attempts: int = 5,
        max_wait_seconds: float = 60.0,
        throttle: bool = True,
        git_url: str | None = None,
        embedded: bool = False,
    ) -> None:
        self.label = label
        self.embedded = embedded
        self.repo_full_name = repo_full_name
        self._token = token
        self._git_url = git_url
        self.max_attempts, self.max_wait_seconds = max_attempts, max_wait_seconds
        throttle_kwargs: dict[str, Any] = (
            {} if throttle else {"seconds_between_requests": 0, "seconds_between_writes": 0}
        )
        self.api_url = api_url
        self.gh = Github(base_url=api_url, auth=Auth.Token(token), retry=None, timeout=30, **throttle_kwargs)
        self._repo: Repository | None = None
        self._codeowners_lock = threading.Lock()
        self._codeowners: dict[str, str] = {}  # commit sha -> its CODEOWNERS text

    # -- retries ------------------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        limited = rate_limit_wait(exc, state.attempt_number, time.time())
        if limited is not None:
            return limited
        return wait_exponential(multiplier=0.2, max=self.max_wait_seconds)(state)

    def _stop(self, state: RetryCallState) -> bool:
        """Out of attempts, or the next wait is longer than a worker may block (the step fails instead,
        resumable, with the time the limit lifts)."""
        too_long = state.upcoming_sleep > self.max_wait_seconds
        return too_long or stop_after_attempt(self.max_attempts)(state)

    def call(self, fn: Callable[[], T]) -> T:
        """Run one PyGithub call with the retry policy; any failure leaves as :class:`ForgeError`. A rate
        limit whose wait exceeds ``max_wait_seconds`` is not waited for: ForgeError names when it lifts."""
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=self._wait,
            stop=self._stop,
            reraise=True,
        )
        try:
            return retrying(fn)
        except GithubException as exc:
            message = f"{self.label} answered {exc.status}: {_message(exc)}"
            wait = rate_limit_wait(exc, retrying.statistics.get("attempt_number", 1), time.time())
            if wait is not None:
                lifts = datetime.fromtimestamp(time.time() + wait, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                message += f" (rate limited: retry after {lifts}; resume then)"
            raise ForgeError(message, status=exc.status) from exc
        except requests.RequestException as exc:
            raise ForgeError(f"{self.label} is unreachable: {' '.join(str(exc).split())[:300]}") from exc

    # -- git ----------------------------------------------------------------------------------
    def git_remote(self) -> str:
        return self._git_url or self.repo.clone_url

    def git_env(self) -> dict[str, str]:
        return http_token_env(self._token)

    def secrets(self) -> list[str]:
        return [self._token]

    # -- repository ---------------------------------------------------------------------------
    @property
    def repo(self) -> Repository:
        if self._repo is None:
            try:
                self._repo = self.call(lambda: self.gh.get_repo(self.repo_full_name))
            except ForgeError as exc:
                if exc.status != 404:
                    raise
                raise ForgeError(f"target repository {self.repo_full_name} not found on the forge", status=404) from exc
        return self._repo

    @property
    def owner(self) -> str:
        return self.repo_full_name.split("/", 1)[0]

    def ping(self) -> None:
        """GET the repository (one request; ForgeError when it does not answer)."""
        self.call(lambda: self.gh.get_repo(self.repo_full_name).id)

    def check_token_scope(self, base_branch: str) -> None:
        """Refuse a token that administers the repository or may push to its protected base branch."""
        permissions = self.repo.permissions
        if permissions is not None and (permissions.admin or getattr(permissions, "maintain", False)):
            raise BroadTokenError(
                f"the token can administer {self.repo_full_name}; use a token limited to contents and pull "
                "requests, or pass --allow-broad-token"
            )
        branch = self.call(lambda: self.repo.get_branch(base_branch))
        if not branch.protected and permissions is not None and permissions.push:
            raise BroadTokenError(
                f"{base_branch} is not protected and the token can push to it; protect the branch, or pass "
                "--allow-broad-token"
            )

    def read_file(self, path: str, ref: str) -> str | None:
        try:
            content = self.call(lambda: self.repo.get_contents(path, ref=ref))
        except ForgeError as exc:
            if exc.status != 404:
                raise
            return None
        if isinstance(content, list):
            return None
        return content.decoded_content.decode("utf-8", "replace")

    def reviewers(self, paths: list[str], base: str) -> Reviewers:
        """CODEOWNERS reviewers of ``paths`` at ``base`` (see the Forge protocol): up to three reads of
        "get repository content", none for a commit sha whose CODEOWNERS was found before (the last
        CODEOWNERS_CACHED_COMMITS)."""
        text, cached = self._codeowners_at(base)
        found = reviewers_for(text, paths, self.owner) if text is not None else Reviewers()
        return found.model_copy(update={"cached": cached})

    def _codeowners_at(self, ref: str) -> tuple[str | None, bool]:
        """``(CODEOWNERS text or None, whether it came from the cache)`` at ``ref``."""
        commit = _COMMIT_SHA.fullmatch(ref) is not None
        with self._codeowners_lock:
            if commit and ref in self._codeowners:
                return self._codeowners[ref], True
        text = None
        for path in CODEOWNERS_PATHS:
            text = self.read_file(path, ref)
            if text is not None:
                break
        # Only a file found is kept: GitHub answers 404 for a commit it cannot see yet too, and that must
        # not drop the reviewers of every later pull request on this base.
        if commit and text is not None:
            with self._codeowners_lock:
                self._codeowners[ref] = text
                while len(self._codeowners) > CODEOWNERS_CACHED_COMMITS:
                    del self._codeowners[next(iter(self._codeowners))]
        return text, False

    # -- pull requests ------------------------------------------------------------------------
    @staticmethod
    def _view(pr: PullRequest) -> PullRequestView:
        return PullRequestView(
            number=pr.number,
            url=pr.html_url,
            head_ref=pr.head.ref,
            head_sha=pr.head.sha,
            base_ref=pr.base.ref,
            state="closed" if pr.state == "closed" else "open",
            merged=bool(pr.merged),
            merge_commit_sha=pr.merge_commit_sha,
            draft=bool(pr.draft),
            title=pr.title or "",
            body=pr.body or "",
            labels=[label.name for label in pr.labels],
        )

    def _pull(self, number: int) -> PullRequest:
        return self.call(lambda: self.repo.get_pull(number))

    def get_pull_request(self, number: int) -> PullRequestView:
        return self._view(self._pull(number))

    def changed_files(self, number: int) -> list[str]:
        pr = self._pull(number)
        return [f.filename for f in self.call(lambda: list(pr.get_files()))]

    def checks_verdict(self, sha: str) -> ChecksVerdict:
        """What CI says of ``sha``, from both of GitHub's mechanisms: commit statuses (combined) and check
        runs (GitHub Actions). ``success`` only when something reported and nothing is pending or failed."""
        commit = self.call(lambda: self.repo.get_commit(sha))
        status = self.call(commit.get_combined_status)
        states = [status.state] if status.total_count else []
        for run in self.call(lambda: list(commit.get_check_runs())):
            if run.status != "completed":
                states.append("pending")
            else:
                states.append("success" if run.conclusion in {"success", "neutral", "skipped"} else "failure")
        if not states:
            return "pending"
        if "failure" in states or "error" in states:
            return "failure"
        return "pending" if "pending" in states else "success"

    def merge_pull_request(self, number: int, sha: str) -> str:
        pr = self._pull(number)
        merged = self.call(lambda: pr.merge(merge_method="merge", sha=sha))
        if not merged.merged:
            raise ForgeError(f"pull request #{number} was not merged: {merged.message}", status=405)
        return merged.sha

    def approve_pull_request(self, number: int, sha: str, reviewer: str, body: str) -> bool:
        """On GitHub the crew never reviews for anyone: people approve there with their own accounts."""
        return False

    def review_as(self, token: str, number: int, sha: str, body: str, event: str = "APPROVE") -> None:
        """Submit a review of ``number`` at ``sha`` with another user's ``token`` (the embedded forge's
        reviewers: see :meth:`~devops_automation.forge.local.EmbeddedForge.approve_pull_request`), with
        this adapter's retries. Raises ForgeError when the forge refuses it."""
        other = Github(base_url=self.api_url, auth=Auth.Token(token), retry=None, timeout=30)
        try:
            repo = self.call(lambda: other.get_repo(self.repo_full_name))
            pull = self.call(lambda: repo.get_pull(number))
            commit = self.call(lambda: repo.get_commit(sha))
            self.call(lambda: pull.create_review(commit=commit, body=body, event=event))
        finally:
            other.close()

    def close_pull_request(self, number: int) -> None:
        pr = self._pull(number)
        self.call(lambda: pr.edit(state="closed"))

    def branch_head(self, branch: str) -> str | None:
        try:  # .object inside call(): with a lazy Github client that read would be the request
            found = self.call(lambda: self.repo.get_git_ref(f"heads/{branch}").object)
        except ForgeError as exc:
            if exc.status == 404:  # GitHub says 404 for a missing repository too: the fetch then says which
                return None
            raise
        sha = getattr(found, "sha", None)
        if not isinstance(sha, str) or not _COMMIT_SHA.fullmatch(sha):
            raise ForgeError(f"{self.label} answered a reference to {branch} without a commit id")
        return sha

    def delete_branch(self, branch: str) -> bool:
        try:
            ref = self.call(lambda: self.repo.get_git_ref(f"heads/{branch}"))
        except ForgeError as exc:
            if exc.status == 404:
                return False
            raise
        self.call(ref.delete)
        return True

    def _find(self, head: str) -> PullRequest | None:
        pulls = self.call(lambda: list(self.repo.get_pulls(state="all", head=f"{self.owner}:{head}")))
        return pulls[0] if pulls else None

    def find_pull_request(self, head: str) -> PullRequestView | None:
        pr = self._find(head)
        return self._view(pr) if pr else None

    def ensure_pull_request(
        self,
        *,
        head: str,
        base: str,
        compose: Callable[[], PRContent],
        labels: list[str],
        draft: bool = False,
        changed_paths: list[str] | None = None,
        reviewers: Reviewers | None = None,
        head_is_new: bool = False,
    ) -> PullRequestRef:
        """Find the pull request for ``head`` (not when ``head_is_new``) or open it (adopting one another
        process opened in the meantime: GitHub's 422), then make sure it carries ``labels`` and the
        CODEOWNERS reviewers (``reviewers``, or read now)."""
        pr, created = (None if head_is_new else self._find(head)), False
        if pr is None:
            content = compose()
            try:
                pr = self.call(
                    lambda: self.repo.create_pull(
                        base=base, head=head, title=content.title, body=content.body, draft=draft
                    )
                )
                created = True
            except ForgeError as exc:
                pr = self._find(head) if exc.status == 422 else None
                if pr is None:
                    raise
        ref = PullRequestRef(number=pr.number, url=pr.html_url, branch=pr.head.ref, created=created)
        if reviewers is None:
            reviewers = self.reviewers(changed_paths or [], base)
        ref.warnings = self._decorate(pr, labels, reviewers)
        return ref

    def _decorate(self, pr: PullRequest, labels: list[str], reviewers: Reviewers) -> list[str]:
        """Add missing labels and request missing reviewers. A reviewer the forge refuses (not a
        collaborator) is a warning for the humans, not a failed request."""
        have = {label.name for label in pr.labels}
        missing = [label for label in labels if label not in have]
        if missing:
            self.call(lambda: pr.add_to_labels(*missing))
        if not (reviewers.users or reviewers.teams):
            return []
        try:
            self.call(lambda: pr.create_review_request(reviewers=reviewers.users, team_reviewers=reviewers.teams))
        except ForgeError as exc:
            if exc.status != 422:
                raise
            wanted = [*reviewers.users, *(f"{self.owner}/{t}" for t in reviewers.teams)]
            return [f"reviewers {', '.join(wanted)} could not be requested: {exc}"]
        return []

    def close(self) -> None:
        self.gh.close()
