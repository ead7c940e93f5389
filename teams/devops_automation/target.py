"""The target repository: every git action on our working clone of it.

All git work happens in one working clone under the state directory, serialised by a file lock so
several processes can share it. Each clone, fetch, file write, commit and push is audited, and the
policy is checked again right here, next to the write, whatever the caller already checked.
Every GitPython, git and file-system failure leaves this module as
:class:`~devops_automation.errors.GitError` (a resumable step failure) with git's own message.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from filelock import FileLock, Timeout
from git import Actor, GitCommandError, Repo
from git.exc import GitError as GitPythonError
from gitdb.exc import ODBError as GitDbError

from .audit import Auditor
from .errors import GitError
from .policy import PolicyViolation, check_branch, check_paths
from .settings import Settings


class Published(NamedTuple):
    """Where a team was published: the branch (maybe adopted from an earlier run) and the crew's commit on
    it. ``head`` is what the branch points at on the remote (a human may have pushed on top: then it
    differs from ``commit``); ``on_base`` says the crew's commit is already on the base branch (someone
    fast-forwarded it), so there is nothing left to open a pull request for."""

    branch: str
    commit: str
    head: str = ""
    on_base: bool = False


class BranchTaken(GitError):
    """The request's branch exists on the remote holding none of this request's commits (a human made it,
    or another installation): it is never overwritten; the caller publishes under a new name."""


def commit_message(team_name: str, gap_id: str | None, request_id: str) -> str:
    """The new team's commit message; its trailers are what reruns recognise the commit by."""
    return f"Add team {team_name} for capability gap {gap_id}\n\nTracking-Id: {request_id}\nGap-Id: {gap_id}\n"


class TargetRepo:
    """Our working clone of the target repository."""

    def __init__(self, settings: Settings, auditor: Auditor, url: str, git_env: dict[str, str] | None = None) -> None:
        """``url`` is the forge's git remote, ``git_env`` the environment that authenticates git to it
        (:meth:`Forge.git_env <devops_automation.forge.base.Forge.git_env>`)."""
        self.settings = settings
        self.auditor = auditor
        self.path = settings.checkout_dir
        self.url = url
        # The operator's own git configuration (global and system: hooks, signing, aliases, templates,
        # insteadOf rewrites) must not change what the bot commits or whether it succeeds.
        self.git_env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            **(git_env or {}),
        }
        self._lock = FileLock(str(settings.home / "checkout.lock"), timeout=120)
        self.bot = Actor(settings.bot_name, settings.bot_email)

    @contextmanager
    def locked(self) -> Iterator[Repo]:
        """The synced clone, held under the checkout lock. Raises GitError for any git failure inside."""
        try:
            with self._lock:
                yield self._sync()
        except Timeout as exc:
            raise GitError(f"the checkout {self.path} is locked by another process (waited 120 s)") from exc
        except GitCommandError as exc:
            raise GitError(f"git {_verb(exc)} failed: {_stderr(exc)}") from exc
        except (GitPythonError, GitDbError, OSError, ValueError) as exc:  # bad refs, unknown commits, disk
            raise GitError(f"git failed in {self.path}: {type(exc).__name__}: {exc}") from exc

    @property
    def base_ref(self) -> str:
        return f"origin/{self.settings.base_branch}"

    def _sync(self) -> Repo:
        if not (self.path / ".git").exists():
            if "://" not in self.url and ":" not in self.url and not Path(self.url).exists():
                raise GitError(f"target repository not found at {self.url}")
            if self.path.exists():
                shutil.rmtree(self.path)
            with self.auditor.action("git.clone", self.url):
                try:
                    repo = Repo.clone_from(self.url, self.path, env=self.git_env)
                except GitCommandError as exc:
                    raise GitError(f"cannot clone the target repository {self.url}: {_stderr(exc)}") from exc
            repo.git.update_environment(**self.git_env)
            return repo
        self._clear_stale_locks()
        repo = Repo(self.path)
        repo.git.update_environment(**self.git_env)
        if repo.remotes.origin.url != self.url:  # the embedded forge may listen on a new port
            repo.remotes.origin.set_url(self.url)
        with self.auditor.action("git.fetch", self.url):
            try:
                repo.remotes.origin.fetch(prune=True)
            except GitCommandError as exc:
                raise GitError(f"cannot fetch the target repository {self.url}: {_stderr(exc)}") from exc
        return repo

    def _clear_stale_locks(self) -> None:
        """Git's own lock files left by a crash (``index.lock``, ``HEAD.lock``, a ref's ``.lock``).
        Only this process touches the checkout while it holds the checkout lock, so any such file
        is stale: remove it (audited) instead of failing every resume on it."""
        git_dir = self.path / ".git"
        stale = [git_dir / "index.lock", git_dir / "HEAD.lock", git_dir / "config.lock"]
        stale += [p for p in (git_dir / "refs").rglob("*.lock")] if (git_dir / "refs").is_dir() else []
        for lock in (p for p in stale if p.is_file()):
            with self.auditor.action("git.remove_stale_lock", str(lock.relative_to(self.path))):
                lock.unlink()

    def team_files(self) -> dict[str, str]:
        """``{path: text}`` of every ``teams/*/team.yaml`` on the base branch."""
        with self.locked() as repo:
            return self._team_files(repo)

    def team_files_unless(self, known: Callable[[str], bool]) -> tuple[str, dict[str, str] | None]:
        """``(revision, files)`` of the base branch's ``teams/`` tree after one fetch: ``revision`` is that
        tree's git object id (``"empty"`` without one); ``files`` is None when ``known(revision)`` (the caller
        has that revision already), else ``{path: text}`` as :meth:`team_files` gives it. Raises GitError."""
        with self.locked() as repo:
            tree = self._base_tree(repo)
            revision = (tree / "teams").hexsha if _tree_has(tree, "teams") else "empty"
            return revision, None if known(revision) else self._team_files(repo)

    def _base_tree(self, repo: Repo) -> Any:
        try:
            return repo.commit(self.base_ref).tree
        except (ValueError, GitCommandError) as exc:
            raise GitError(f"the target repository has no branch {self.settings.base_branch!r}") from exc

    def _team_files(self, repo: Repo) -> dict[str, str]:
        tree = self._base_tree(repo)
        if not _tree_has(tree, "teams"):
            return {}
        found = {}
        for sub in (tree / "teams").trees:
            if _tree_has(sub, "team.yaml"):
                blob = sub / "team.yaml"
                found[f"teams/{sub.name}/team.yaml"] = blob.data_stream.read().decode("utf-8", "replace")
        return found

    def _existing_top_paths(self, repo: Repo, team_name: str) -> list[str]:
        tree = repo.commit(self.base_ref).tree
        return [p for p in (f"teams/{team_name}", f"k8s/teams/{team_name}") if _tree_has(tree, p)]

    def _gap_branch(self, repo: Repo, team_name: str, gap_id: str) -> str | None:
        """An ``auto/team-<name>-*`` branch on the remote that already carries this gap's commit:
        another process, or another installation with its own store, published it first."""
        prefix = f"refs/remotes/origin/auto/team-{team_name}-"
        for ref in sorted(r.path for r in repo.references if r.path.startswith(prefix)):
            if _carries(repo.commit(ref).message, gap_id=gap_id):
                return ref.removeprefix("refs/remotes/origin/")
        return None

    def remote_head(self, branch: str) -> str | None:
        """The commit ``branch`` points at on the remote now (``git ls-remote``), None if it is gone.
        Raises GitError."""
        from git.cmd import Git

        runner = Git()
        runner.update_environment(**self.git_env)
        try:
            out = runner.ls_remote(self.url, f"refs/heads/{check_branch(branch)}")
        except GitCommandError as exc:
            raise GitError(f"cannot read {branch} on {self.url}: {_stderr(exc)}") from exc
        return out.split()[0] if out.strip() else None

    def on_base(self, commit: str) -> bool:
        """Whether the base branch on the remote (fetched now) contains ``commit``. Raises GitError."""
        if not commit:
            return False
        with self.locked() as repo:
            try:
                return repo.is_ancestor(commit, self.base_ref)
            except GitCommandError:  # a commit this clone does not have is on no branch of it
                return False

    def remote_branch_commit(self, repo: Repo, branch: str) -> str | None:
        ref = f"refs/remotes/origin/{branch}"
        return repo.git.rev_parse(ref) if ref in {r.path for r in repo.references} else None

    def publish_branch(
        self,
        *,
        request_id: str,
        team_name: str,
        branch: str,
        rendered_root: Path,
        files: list[str],
        message: str,
        gap_id: str | None = None,
    ) -> Published:
        """Commit ``files`` from ``rendered_root`` on ``branch`` off the base branch and push it.

        Idempotent: if the branch already carries this request's commit, pushed or only local, nothing
        is written again; it is pushed if needed. With ``gap_id``, a branch on the remote that already
        carries this gap's commit is adopted instead (its name is in the result).
        """
        check_branch(branch)
        files = check_paths(files, team_name)
        with self.locked() as repo:
            adopted = self._gap_branch(repo, team_name, gap_id) if gap_id else None
            if adopted is not None:
                head = repo.git.rev_parse(f"refs/remotes/origin/{adopted}")
                ours = self._own_commit(repo, adopted, request_id=None, gap_id=gap_id) or head
                return self._published(repo, check_branch(adopted), ours, head)
            pushed = self.remote_branch_commit(repo, branch)
            if pushed:
                ours = self._own_commit(repo, branch, request_id=request_id)
                if ours is None:
                    raise BranchTaken(f"{branch} exists on the remote without this request's commit; left alone")
                if ours != pushed:
                    self.auditor.event("publish.branch_moved", branch, request_id=request_id, commit=ours, head=pushed)
                return self._published(repo, branch, ours, pushed)
            if self._existing_top_paths(repo, team_name):
                raise PolicyViolation("existing-team", f"teams/{team_name}/ already exists on the base branch")
            local = branch in repo.heads and _carries(repo.heads[branch].commit.message, request_id=request_id)
            if not local:
                commit_sha = self._commit(repo, request_id, team_name, branch, rendered_root, files, message)
            else:
                commit_sha = repo.heads[branch].commit.hexsha
            self._push(repo, branch, request_id, commit_sha)
            return Published(branch, commit_sha, commit_sha)

    def _own_commit(
        self, repo: Repo, branch: str, *, request_id: str | None, gap_id: str | None = None, depth: int = 50
    ) -> str | None:
        """The commit on the remote ``branch`` (its head, or below commits a human pushed on top) that
        carries this request's (or gap's) trailer, or None."""
        out = repo.git.log(f"--max-count={depth}", "--format=%H%x00%B%x01", f"refs/remotes/origin/{branch}")
        for entry in out.split("\x01"):
            sha, _, body = entry.strip().partition("\x00")
            if sha and _carries(body, request_id=request_id, gap_id=gap_id):
                return sha
        return None

    def _published(self, repo: Repo, branch: str, commit: str, head: str) -> Published:
        on_base = repo.is_ancestor(commit, self.base_ref)
        return Published(branch, commit, head, on_base)

    def publish_revert(self, *, request_id: str, team_name: str, branch: str, merge_sha: str, message: str) -> str:
        """Push a branch that reverts the merged team (a new commit, never a force-push)."""
        check_branch(branch)
        with self.locked() as repo:
            pushed = self.remote_branch_commit(repo, branch)
            if pushed and _carries(repo.commit(pushed).message, request_id=request_id):
                return pushed
            repo.git.checkout("--force", "-B", branch, self.base_ref)
            repo.git.clean("-fdx")
            merge = repo.commit(merge_sha)
            with self.auditor.action("git.revert", f"{merge_sha} on {branch}", request_id=request_id) as call:
                args = ["--no-commit"] + (["-m", "1"] if len(merge.parents) > 1 else []) + [merge_sha]
                try:
                    repo.git.revert(*args)
                except GitCommandError as exc:
                    repo.git.revert("--abort")
                    raise GitError(f"cannot revert {merge_sha}: {_stderr(exc)}") from exc
                staged = [d.a_path or d.b_path for d in repo.index.diff(self.base_ref)]
                try:
                    check_paths(staged, team_name)
                except PolicyViolation:
                    repo.git.reset("--hard", self.base_ref)  # leave no half-done revert behind
                    raise
                commit = repo.index.commit(message, author=self.bot, committer=self.bot, skip_hooks=True)
                call.result.update(commit=commit.hexsha, files=len(staged))
            self._push(repo, branch, request_id, commit.hexsha)
            return commit.hexsha

    def _safe_destination(self, rel: str) -> Path:
        """``rel`` inside the checkout, refusing any symbolic link on the way: the base branch could
        carry a link (``k8s -> /elsewhere``) that would carry a write out of the repository."""
        current = self.path
        for part in Path(rel).parts:
            current = current / part
            if current.is_symlink():
                raise PolicyViolation(
                    "path-allow-list", f"{current.relative_to(self.path)} is a symbolic link in the target repository"
                )
        return current

    def _push(self, repo: Repo, branch: str, request_id: str, commit_sha: str) -> None:
        """Push one auto/ branch (checked again here), audited; never forced."""
        check_branch(branch)
        with self.auditor.action("git.push", f"{self.url} {branch}", request_id=request_id, commit=commit_sha):
            try:
                repo.git.push("--porcelain", "origin", f"refs/heads/{branch}:refs/heads/{branch}")
            except GitCommandError as exc:
                raise GitError(f"push of {branch} refused: {_push_reason(exc)}") from exc

    def _commit(
        self,
        repo: Repo,
        request_id: str,
        team_name: str,
        branch: str,
        rendered_root: Path,
        files: list[str],
        message: str,
    ) -> str:
        # A crash can leave the checkout dirty or on any branch: start clean from the base branch.
        repo.git.checkout("--force", "-B", branch, self.base_ref)
        repo.git.clean("-fdx")
        with self.auditor.action(
            "repo.write_files", f"teams/{team_name}/ k8s/teams/{team_name}/", request_id=request_id, files=files
        ) as call:
            for rel in files:
                source = rendered_root / rel
                if source.is_symlink() or not source.is_file():
                    raise PolicyViolation("path-allow-list", f"rendered path {rel!r} is not a regular file")
                dest = self._safe_destination(rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
            call.result["written"] = len(files)
        # git itself, in the checkout: GitPython's index.add changes the process's working directory for
        # the call, which races with other threads (a server renders and commits for several requests).
        repo.git.add("--", *files)
        staged = [d.a_path or d.b_path for d in repo.index.diff(self.base_ref)]
        check_paths(staged, team_name)  # what git will commit, not just what we meant to write
        with self.auditor.action("git.commit", f"{self.path} {branch}", request_id=request_id) as call:
            commit = repo.index.commit(message, author=self.bot, committer=self.bot, skip_hooks=True)
            call.result["commit"] = commit.hexsha
        return commit.hexsha


def _carries(message: str, *, request_id: str | None = None, gap_id: str | None = None) -> bool:
    """Whether a commit message names this request (``Tracking-Id``) or this gap (``Gap-Id``)."""
    lines = set(message.splitlines())
    return (request_id is not None and f"Tracking-Id: {request_id}" in lines) or (
        gap_id is not None and f"Gap-Id: {gap_id}" in lines
    )


def _stderr(exc: GitCommandError) -> str:
    """Git's own words (a hook's refusal reason included), without the noise GitPython wraps them in."""
    text = str(exc.stderr or exc.stdout or exc).strip()
    text = text.removeprefix("stderr:").strip().strip("'").strip()
    return " ".join(text.split())[:1000]


def _push_reason(exc: GitCommandError) -> str:
    """The remote's own reason for refusing a push: its ``remote:`` lines (a pre-receive hook's message,
    GitHub's protected-branch text) and the porcelain status (``[remote rejected] (pre-receive hook
    declined)``, ``[rejected] (non-fast-forward)``), instead of git's generic "failed to push some refs"."""
    err = str(exc.stderr or "").replace("stderr:", "", 1)
    out = str(exc.stdout or "").replace("stdout:", "", 1)
    lines = [line.strip().strip("'").strip() for line in err.splitlines()]
    remote = [line[7:].strip() for line in lines if line.startswith("remote:")]
    porcelain = (line.strip().strip("'") for line in out.splitlines())
    status = [line.split("\t")[-1].strip() for line in porcelain if line.startswith("!")]
    parts = [p for p in remote if p.strip(" '")] + status
    return " ".join(" ".join(parts).split())[:1000] or _stderr(exc)


def _verb(exc: GitCommandError) -> str:
    command = exc.command if isinstance(exc.command, list | tuple) else str(exc.command).split()
    return str(command[1]) if len(command) > 1 else "command"


def _tree_has(tree: object, path: str) -> bool:
    try:
        tree / path  # type: ignore[operator]
    except KeyError:
        return False
    return True
