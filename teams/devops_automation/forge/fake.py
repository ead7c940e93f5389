"""The ``fake`` adapter: pull requests in memory over a real bare git repository on disk.

It shows what adding a forge takes (one module implementing :class:`~.base.Forge`) and runs the engine's
fast tests: git really clones, pushes and merges (``git merge-tree`` in the bare repository), while
pull requests, labels, reviews and CI verdicts live in this object. ``fail(method, times)`` makes the
next calls of a method raise :class:`~devops_automation.errors.ForgeError`, for fault tests.
Selected with ``DEVOPS_CREW_FORGE=fake`` (state is lost with the process: for tests and experiments only).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ForgeError
from ..models import PullRequestRef
from .base import ChecksVerdict, PRContent, PullRequest
from .codeowners import Reviewers

_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Fake Forge",
    "GIT_AUTHOR_EMAIL": "forge@fake.invalid",
    "GIT_COMMITTER_NAME": "Fake Forge",
    "GIT_COMMITTER_EMAIL": "forge@fake.invalid",
}


@dataclass
class _Pull:
    number: int
    head: str
    base: str
    title: str
    body: str
    draft: bool
    head_sha: str
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    state: str = "open"
    merged: bool = False
    merge_commit_sha: str | None = None


class FakeForge:
    """An in-memory forge over the bare repository at ``bare`` (created, and seeded from ``seed``, if absent)."""

    label = "fake forge"
    embedded = True

    def __init__(self, bare: Path, *, seed: Path | None = None, base_branch: str = "main") -> None:
        self.bare = Path(bare)
        self.pulls: dict[int, _Pull] = {}
        self.statuses: dict[str, ChecksVerdict] = {}
        self.calls: list[str] = []
        self._faults: dict[str, int] = {}
        self._lock = threading.Lock()
        if not (self.bare / "HEAD").exists():
            self._create(seed, base_branch)

    # -- the repository -----------------------------------------------------------------------
    def git(self, *args: str) -> str:
        """Run git in the bare repository; ForgeError with git's stderr on failure."""
        try:
            done = subprocess.run(
                ["git", *args], cwd=self.bare, env=_GIT_ENV, capture_output=True, text=True, check=True, timeout=60
            )
        except subprocess.CalledProcessError as exc:
            raise ForgeError(f"git {args[0]} failed in the fake forge: {exc.stderr.strip()}", status=500) from exc
        except OSError as exc:  # the repository itself is gone
            raise ForgeError(f"git {args[0]} failed in the fake forge: {exc}", status=500) from exc
        return done.stdout.strip()

    def _create(self, seed: Path | None, base_branch: str) -> None:
        self.bare.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--bare", f"--initial-branch={base_branch}")
        with tempfile.TemporaryDirectory(prefix="fakeforge-seed-") as work:
            env = {**_GIT_ENV}
            run = lambda *a: subprocess.run(["git", *a], cwd=work, env=env, check=True, capture_output=True)  # noqa: E731
            run("init", "--quiet", f"--initial-branch={base_branch}")
            if seed is not None:
                shutil.copytree(seed, work, dirs_exist_ok=True)
            else:
                Path(work, "README.md").write_text("# teams\n")
            run("add", "-A")
            run("commit", "--quiet", "-m", "Seed the teams monorepo")
            run("push", "--quiet", str(self.bare), f"HEAD:refs/heads/{base_branch}")

    def _sha(self, ref: str) -> str | None:
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{ref}")
        except ForgeError:
            return None

    # -- faults -------------------------------------------------------------------------------
    def fail(self, method: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise a 502 ForgeError."""
        self._faults[method] = self._faults.get(method, 0) + times

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if self._faults.get(method, 0) > 0:
            self._faults[method] -= 1
            raise ForgeError(f"fake forge: injected failure of {method}", status=502)

    # -- the Forge protocol -------------------------------------------------------------------
    def git_remote(self) -> str:
        return str(self.bare)

    def git_env(self) -> dict[str, str]:
        return {"GIT_TERMINAL_PROMPT": "0"}

    def secrets(self) -> list[str]:
        return []

    def ping(self) -> None:
        self._enter("ping")

    def check_token_scope(self, base_branch: str) -> None:
        self._enter("check_token_scope")

    def _view(self, pr: _Pull) -> PullRequest:
        head_sha = (self._sha(pr.head) or pr.head_sha) if pr.state == "open" else pr.head_sha
        return PullRequest(
            number=pr.number,
            url=f"fake://pulls/{pr.number}",
            head_ref=pr.head,
            head_sha=head_sha,
            base_ref=pr.base,
            state="closed" if pr.state == "closed" else "open",
            merged=pr.merged,
            merge_commit_sha=pr.merge_commit_sha,
            draft=pr.draft,
            title=pr.title,
            body=pr.body,
            labels=list(pr.labels),
        )

    def find_pull_request(self, head: str) -> PullRequest | None:
        self._enter("find_pull_request")
        for pr in self.pulls.values():
            if pr.head == head:
                return self._view(pr)
        return None

    def reviewers(self, paths: list[str], base: str) -> Reviewers:
        """No CODEOWNERS here: nobody (a call of its own, ``codeowners``, for fault tests)."""
        self._enter("codeowners")
        return Reviewers()

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
        self._enter("ensure_pull_request")
        if reviewers is None:
            reviewers = self.reviewers(changed_paths or [], base)
        with self._lock:
            # As GitHub: a head the caller just created is not looked up, and opening one adopts only an
            # open pull request of that head (GitHub's 422 "A pull request already exists"), never a closed one.
            existing = next(
                (p for p in self.pulls.values() if p.head == head and not (head_is_new and p.state != "open")), None
            )
            created = existing is None
            if existing is None:
                head_sha = self._sha(head)
                if head_sha is None:
                    raise ForgeError(f"Validation Failed: head {head} does not exist", status=422)
                if self.git("rev-list", "--count", f"refs/heads/{base}..{head_sha}") == "0":
                    raise ForgeError(f"Validation Failed: No commits between {base} and {head}", status=422)
                content = compose()
                existing = _Pull(len(self.pulls) + 1, head, base, content.title, content.body, draft, head_sha)
                self.pulls[existing.number] = existing
            # As on GitHub, labels and reviewers are calls of their own after the PR exists: each can fail.
            self._enter("labels")
            existing.labels += [label for label in labels if label not in existing.labels]
            self._enter("reviewers")
            return PullRequestRef(
                number=existing.number, url=f"fake://pulls/{existing.number}", branch=head, created=created
            )

    def get_pull_request(self, number: int) -> PullRequest:
        self._enter("get_pull_request")
        if number not in self.pulls:
            raise ForgeError(f"fake forge: no pull request #{number}", status=404)
        return self._view(self.pulls[number])

    def changed_files(self, number: int) -> list[str]:
        self._enter("changed_files")
        pr = self.pulls[number]
        head = self._sha(pr.head) or pr.head_sha
        return self.git("diff", "--name-only", f"refs/heads/{pr.base}...{head}").splitlines()

    def checks_verdict(self, sha: str) -> ChecksVerdict:
        self._enter("checks_verdict")
        return self.statuses.get(sha, "pending")

    def merge_pull_request(self, number: int, sha: str) -> str:
        """A real merge commit in the bare repository (``git merge-tree``), as GitHub's merge button makes."""
        self._enter("merge_pull_request")
        pr = self.pulls[number]
        if pr.state != "open":
            raise ForgeError("Pull Request is not mergeable", status=405)
        if pr.draft:
            raise ForgeError("Pull Request is still a draft", status=405)
        head = self._sha(pr.head)
        if head != sha:
            raise ForgeError("Head branch was modified. Review and try the merge again.", status=409)
        base = self._sha(pr.base)
        assert base is not None
        tree = self.git("merge-tree", "--write-tree", base, head).splitlines()[0]
        merge = self.git("commit-tree", tree, "-p", base, "-p", head, "-m", f"Merge pull request #{number}")
        self.git("update-ref", f"refs/heads/{pr.base}", merge, base)
        pr.state, pr.merged, pr.merge_commit_sha, pr.head_sha = "closed", True, merge, head
        return merge

    def approve_pull_request(self, number: int, sha: str, reviewer: str, body: str) -> bool:
        """The fake forge keeps no reviews (and no protection that would need them)."""
        self._enter("approve_pull_request")
        return False

    def close_pull_request(self, number: int) -> None:
        self._enter("close_pull_request")
        pr = self.pulls[number]
        pr.head_sha = self._sha(pr.head) or pr.head_sha
        pr.state = "closed"

    def branch_head(self, branch: str) -> str | None:
        self._enter("branch_head")
        return self._sha(branch)

    def delete_branch(self, branch: str) -> bool:
        self._enter("delete_branch")
        if self._sha(branch) is None:
            return False
        self.git("update-ref", "-d", f"refs/heads/{branch}")
        return True

    def close(self) -> None:
        return None
