"""The one forge client: PyGithub against github.com, GitHub Enterprise or the embedded local forge.

Transient failures (5xx, connection errors, GitHub's secondary rate limit: 403/429 with
``Retry-After``) are retried with tenacity and backoff; a 4xx that will not change is raised at once.
PyGithub's own retry is switched off so there is exactly one retry policy, this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException, UnknownObjectException
from github.PullRequest import PullRequest
from github.Repository import Repository
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from ..models import PullRequestRef
from .codeowners import CODEOWNERS_PATHS, Reviewers, reviewers_for

T = TypeVar("T")
DEFAULT_API_URL = "https://api.github.com"


class ForgeError(RuntimeError):
    pass


class BroadTokenError(ForgeError):
    pass


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, GithubException):
        if exc.status >= 500 or exc.status == 429:
            return True
        if exc.status == 403:
            headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
            message = str(exc.data).lower() if exc.data else ""
            return (
                "retry-after" in headers
                or headers.get("x-ratelimit-remaining") == "0"
                or "secondary rate limit" in message
            )
    return False


def _retry_after(exc: BaseException | None) -> float | None:
    if isinstance(exc, GithubException) and exc.headers:
        headers = {k.lower(): v for k, v in exc.headers.items()}
        try:
            return float(headers["retry-after"])
        except (KeyError, ValueError):
            return None
    return None


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
    ) -> None:
        self.label = label
        self.repo_full_name = repo_full_name
        self.max_attempts, self.max_wait_seconds = max_attempts, max_wait_seconds
        throttle_kwargs: dict[str, Any] = (
            {} if throttle else {"seconds_between_requests": 0, "seconds_between_writes": 0}
        )
        self.gh = Github(base_url=api_url, auth=Auth.Token(token), retry=None, timeout=30, **throttle_kwargs)
        self._repo: Repository | None = None

    # -- retries ------------------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = _retry_after(exc)
        backoff = wait_exponential(multiplier=0.2, max=self.max_wait_seconds)(state)
        return min(self.max_wait_seconds, hinted if hinted is not None else backoff)

    def call(self, fn: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=self._wait,
            stop=stop_after_attempt(self.max_attempts),
            reraise=True,
        )
        return retrying(fn)

    # -- repository ---------------------------------------------------------------------------
    @property
    def repo(self) -> Repository:
        if self._repo is None:
            try:
                self._repo = self.call(lambda: self.gh.get_repo(self.repo_full_name))
            except UnknownObjectException as exc:
                raise ForgeError(f"target repository {self.repo_full_name} not found on the forge") from exc
        return self._repo

    @property
    def owner(self) -> str:
        return self.repo_full_name.split("/", 1)[0]

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
        except UnknownObjectException:
            return None
        if isinstance(content, list):
            return None
        return content.decoded_content.decode("utf-8", "replace")

    def reviewers(self, paths: list[str], base: str) -> Reviewers:
        for path in CODEOWNERS_PATHS:
            text = self.read_file(path, base)
            if text is not None:
                return reviewers_for(text, paths, self.owner)
        return Reviewers()

    # -- pull requests ------------------------------------------------------------------------
    def _ref(self, pr: PullRequest, created: bool) -> PullRequestRef:
        return PullRequestRef(number=pr.number, url=pr.html_url, branch=pr.head.ref, created=created)

    def get_pull(self, number: int) -> PullRequest:
        return self.call(lambda: self.repo.get_pull(number))

    def checks_state(self, sha: str) -> str:
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
        for verdict in ("failure", "error", "pending"):
            if verdict in states:
                return "failure" if verdict == "error" else verdict
        return "success"

    def find_pull(self, head: str) -> PullRequest | None:
        pulls = self.call(lambda: list(self.repo.get_pulls(state="all", head=f"{self.owner}:{head}")))
        return pulls[0] if pulls else None

    def find_pull_request(self, head: str) -> PullRequestRef | None:
        pr = self.find_pull(head)
        return self._ref(pr, created=False) if pr else None

    def open_pull_request(
        self,
        *,
        head: str,
        base: str,
        title: str,
        body: str,
        labels: list[str],
        draft: bool = False,
        changed_paths: list[str] | None = None,
    ) -> PullRequestRef:
        """Open the pull request (or adopt the one another process opened for ``head``), then make
        sure it carries ``labels`` and the CODEOWNERS reviewers. Safe to call again after a crash."""
        created = True
        try:
            pr = self.call(lambda: self.repo.create_pull(base=base, head=head, title=title, body=body, draft=draft))
        except GithubException as exc:
            existing = self.find_pull(head) if exc.status == 422 else None
            if existing is None:
                raise
            pr, created = existing, False
        ref = self._ref(pr, created=created)
        ref.warnings = self.decorate(pr, labels, self.reviewers(changed_paths or [], base))
        return ref

    def decorate(self, pr: PullRequest, labels: list[str], reviewers: Reviewers) -> list[str]:
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
        except GithubException as exc:
            if exc.status != 422:
                raise
            wanted = [*reviewers.users, *(f"{self.owner}/{t}" for t in reviewers.teams)]
            return [
                f"reviewers {', '.join(wanted)} could not be requested: {exc.data.get('message', exc)}"
                if isinstance(exc.data, dict)
                else f"reviewers could not be requested: {exc}"
            ]
        return []

    def close(self) -> None:
        self.gh.close()
