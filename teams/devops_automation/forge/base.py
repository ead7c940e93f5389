"""The forge interface: everything the engine needs from GitHub (or any other forge), as one Protocol.

Modelled on Renovate's platform modules: each forge is one module implementing :class:`Forge`
(``github`` over PyGithub, ``local`` = the same client against the embedded forge, ``fake`` in memory for
fast tests). Adding GitLab or Gitea means adding one module that implements this Protocol and one line
in :func:`devops_automation.forge.open_forge`. Nothing here or above imports a forge's client library;
adapters map their library's exceptions into :class:`~devops_automation.errors.ForgeError`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from ..models import PullRequestRef
from .codeowners import Reviewers

DEFAULT_API_URL = "https://api.github.com"
ChecksVerdict = Literal["success", "failure", "pending"]


class PullRequest(BaseModel):
    """A pull request as the engine sees it (GitHub's field names)."""

    number: int
    url: str = Field(description="the web page (GitHub's html_url)")
    head_ref: str
    head_sha: str
    base_ref: str
    state: Literal["open", "closed"]
    merged: bool = False
    merge_commit_sha: str | None = None
    draft: bool = False
    title: str = ""
    body: str = ""
    labels: list[str] = Field(default_factory=list)


class PRContent(BaseModel):
    """Title and body of a pull request about to be opened."""

    title: str
    body: str


@runtime_checkable
class Forge(Protocol):
    """One forge holding the target repository. Every method raises
    :class:`~devops_automation.errors.ForgeError` (with the forge's HTTP status) when the forge fails."""

    #: Shown in progress lines and the demo, e.g. ``GitHub (https://api.github.com)``.
    label: str
    #: True for the embedded local forge (its token is made locally; no scope check is needed).
    embedded: bool

    def git_remote(self) -> str:
        """The URL git clones, fetches and pushes the target repository at."""
        ...

    def git_env(self) -> dict[str, str]:
        """Environment variables that authenticate git to :meth:`git_remote` (never a URL credential)."""
        ...

    def secrets(self) -> list[str]:
        """Secret values this forge uses, for the audit log to redact."""
        ...

    def ping(self) -> None:
        """One cheap call that proves the forge answers and the repository exists (``/readyz``).
        Raises ForgeError."""
        ...

    def check_token_scope(self, base_branch: str) -> None:
        """Raise :class:`~devops_automation.errors.BroadTokenError` if the token can administer the
        repository, or push to an unprotected ``base_branch``."""
        ...

    def branch_head(self, branch: str) -> str | None:
        """The commit ``branch`` points at on the forge now (GitHub's "get a reference"), None when there is
        no such branch: one API read, no git process. Raises ForgeError."""
        ...

    def reviewers(self, paths: list[str], base: str) -> Reviewers:
        """The CODEOWNERS reviewers of ``paths`` (``.github/CODEOWNERS``, ``CODEOWNERS`` or ``docs/CODEOWNERS``
        at ``base``: a branch, or a commit sha, whose file a forge may keep once found, since a commit never
        changes; ``Reviewers.cached`` says a kept file answered); no reviewers when there is no CODEOWNERS
        file. Raises ForgeError."""
        ...

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
        """The pull request for ``head``: the existing one (open or closed), or a new one whose text
        ``compose()`` makes (called only when one is opened). Either way it ends with ``labels`` and the
        CODEOWNERS reviewers of ``changed_paths`` (``reviewers`` when the caller read them already, with
        :meth:`reviewers`). ``head_is_new``: the caller's create-only push just made ``head`` and has never
        opened a pull request for it, so none is looked for before one is opened (an open one is still
        adopted if opening says it exists; a closed one of an earlier branch of that name is not). Safe to
        call again after a crash or a race."""
        ...

    def find_pull_request(self, head: str) -> PullRequest | None:
        """The pull request (any state) whose head is ``head``, if there is one."""
        ...

    def get_pull_request(self, number: int) -> PullRequest:
        """Pull request ``number``; ForgeError with status 404 if there is none."""
        ...

    def changed_files(self, number: int) -> list[str]:
        """Paths pull request ``number`` changes against its base."""
        ...

    def checks_verdict(self, sha: str) -> ChecksVerdict:
        """What CI says of ``sha``: ``success`` only when something reported and nothing is pending or failed."""
        ...

    def merge_pull_request(self, number: int, sha: str) -> str:
        """Merge ``number`` if its head is still ``sha``; return the merge commit."""
        ...

    def close_pull_request(self, number: int) -> None:
        """Close ``number`` without merging."""
        ...

    def approve_pull_request(self, number: int, sha: str, reviewer: str, body: str) -> bool:
        """Record ``reviewer``'s approval of ``number`` at ``sha`` as a review on the forge, where the crew
        may act for that person (the embedded forge, for a reviewer it keeps a token of); False where it may
        not (on GitHub people review themselves). Raises ForgeError when the forge refuses the review."""
        ...

    def delete_branch(self, branch: str) -> bool:
        """Delete ``branch`` on the forge; False if it did not exist."""
        ...

    def close(self) -> None:
        """Release connections (and stop an embedded server this process started)."""
        ...


def http_token_env(token: str | None) -> dict[str, str]:
    """Git's environment for HTTP auth: the token travels in a header set through the environment,
    never in a URL or a command line, so no error message or audit row can carry it."""
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    return env
