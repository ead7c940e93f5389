"""The target repository: every git action on our working clone of it.

All git work happens in one clone under the state directory. Only the clone, the fetch and the few
actions that need its work tree (a revert) hold the file lock that several processes share: a publish
fetches just the base branch and its own team's ``auto/`` branches (one narrow fetch, so 10,000 other
branches are never advertised), then builds its commit from the rendered files with git's plumbing
(``hash-object``, ``mktree``, ``commit-tree``, ``update-ref``) without a checkout or an index, so
requests do not queue on one work tree and the cost follows the change, not the repository. Each
clone, fetch, file write, commit and push is audited, and the policy is checked again right here,
next to the write, whatever the caller already checked.
Every GitPython, git and file-system failure leaves this module as
:class:`~devops_automation.errors.GitError` (a resumable step failure) with git's own message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from filelock import FileLock, Timeout
from git import Actor, GitCommandError, Repo, Tree
from git.exc import GitError as GitPythonError
from gitdb.exc import ODBError as GitDbError
from gitdb.util import hex_to_bin

from .audit import Auditor
from .errors import ForgeError, GitError
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


class Staged(NamedTuple):
    """A commit built for a branch but not pushed (:meth:`TargetRepo.stage_branch`): the branch, the
    commit, the base-branch commit it was built on, and what the stage's fetch saw of the remote: the
    team's ``auto/`` branches (``prefix``: ``auto/team-<name>-``) and when (``time.monotonic()``)."""

    branch: str
    commit: str
    base: str
    prefix: str = ""
    team_branches: tuple[tuple[str, str], ...] = ()
    fetched_at: float = 0.0


class StaleStage(GitError):
    """The remote moved since a commit was staged (the base branch, or the team's ``auto/`` branches): the
    staged commit is not pushed; the caller publishes from scratch, deciding on what the remote holds now."""


#: How old a stage's view of the remote may be when its commit is pushed without looking again: about
#: what a fetch-build-push used to take under load. Older, one ``ls-remote`` checks it first.
STAGED_FRESH_SECONDS = 1.0


class BranchTaken(GitError):
    """The request's branch exists on the remote holding none of this request's commits (a human made it,
    or another installation): it is never overwritten; the caller publishes under a new name."""


def commit_message(team_name: str, gap_id: str | None, request_id: str) -> str:
    """The new team's commit message; its trailers are what reruns recognise the commit by."""
    return f"Add team {team_name} for capability gap {gap_id}\n\nTracking-Id: {request_id}\nGap-Id: {gap_id}\n"


#: Git's own lock files a crash can leave in ``.git`` that block every later fetch or revert. A fixed list
#: (plus the refs one call is about to move), never a walk of ``refs/``: 10,000 branches cost nothing.
_STALE_LOCKS = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock")
#: Auto gc runs inside the fetch that triggers it (so under the checkout lock), never detached in the
#: background where it would hold ``packed-refs.lock`` while another process thinks the lock is stale.
_FETCH_CONFIG = ("-c", "gc.autoDetach=false")
_TREE_MODE, _BLOB_MODE = "040000", "100644"
#: How long a run waits for the checkout (held by another run of this process or another process).
LOCK_TIMEOUT_SECONDS = 120


class TargetRepo:
    """Our clone of the target repository."""

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
        # Two locks: threads of this process queue on a threading lock (woken the moment it is released), and
        # only the one holding it takes the file lock that keeps other processes out. filelock alone would
        # make threads poll for the file every 50 ms: with 8 workers the clone sat idle between holders and
        # throughput fell as workers were added (issue 12).
        self._threads = threading.RLock()  # re-entrant, as the file lock is
        self._lock = FileLock(str(settings.home / "checkout.lock"), timeout=LOCK_TIMEOUT_SECONDS)
        self.bot = Actor(settings.bot_name, settings.bot_email)

    @contextmanager
    def locked(self, *branches: str) -> Iterator[Repo]:
        """The synced clone, held under the checkout lock: the base branch and ``branches`` fetched now
        (every branch when none is given). Raises GitError for any git failure inside."""
        with self._locked(self._refspecs(*branches) if branches else None) as repo:
            yield repo

    @contextmanager
    def _locked(
        self, refspecs: list[str] | None, *, unless_at: str | None = None, fetch: bool = True
    ) -> Iterator[Repo]:
        """:meth:`locked`, fetching ``refspecs`` (None: everything); with ``unless_at``, not when the clone's
        base branch is that commit already (``refspecs`` must then be the base branch's alone); with
        ``fetch=False`` never (the clone is made if there is none)."""
        if unless_at is not None and refspecs != self._refspecs():
            raise ValueError("unless_at skips a fetch of the base branch only")
        with self._git_errors():
            started = time.monotonic()
            if not self._threads.acquire(timeout=LOCK_TIMEOUT_SECONDS):
                raise GitError(f"the checkout {self.path} is locked by another run (waited {LOCK_TIMEOUT_SECONDS} s)")
            try:
                left = max(0.0, LOCK_TIMEOUT_SECONDS - (time.monotonic() - started))
                with self._lock.acquire(timeout=left):
                    yield self._sync(refspecs, unless_at=unless_at, fetch=fetch)
            except Timeout as exc:
                raise GitError(
                    f"the checkout {self.path} is locked by another process (waited {LOCK_TIMEOUT_SECONDS} s)"
                ) from exc
            finally:
                self._threads.release()

    @contextmanager
    def _git_errors(self) -> Iterator[None]:
        """Every GitPython, git and file-system failure inside becomes GitError, in git's own words."""
        try:
            yield
        except GitCommandError as exc:
            raise GitError(f"git {_verb(exc)} failed: {_stderr(exc)}") from exc
        except (GitPythonError, GitDbError, OSError, ValueError) as exc:  # bad refs, unknown commits, disk
            raise GitError(f"git failed in {self.path}: {type(exc).__name__}: {exc}") from exc

    @property
    def base_ref(self) -> str:
        return f"origin/{self.settings.base_branch}"

    def _refspecs(self, *branches: str) -> list[str]:
        """Fetch refspecs for the base branch (which must exist) and ``branches`` (a trailing ``*`` is a
        prefix; a plain name is fetched as ``name*`` so a branch not pushed yet is no error)."""
        specs = [f"+refs/heads/{self.settings.base_branch}:refs/remotes/origin/{self.settings.base_branch}"]
        for branch in (b if b.endswith("*") else f"{b}*" for b in branches):
            specs.append(f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
        return specs

    def _sync(self, refspecs: list[str] | None = None, *, unless_at: str | None = None, fetch: bool = True) -> Repo:
        """Clone, or fetch ``refspecs`` (every branch when None) with pruning; no fetch when ``unless_at``
        is the commit the clone's base branch is at already, or without ``fetch``. Call under the lock."""
        if not (self.path / ".git").exists():
            if "://" not in self.url and ":" not in self.url and not Path(self.url).exists():
                raise GitError(f"target repository not found at {self.url}")
            if self.path.exists():
                shutil.rmtree(self.path)
            with self.auditor.action("git.clone", self.url):
                try:
                    repo = Repo.clone_from(
                        self.url,
                        self.path,
                        env=self.git_env,
                        no_checkout=True,  # nothing reads a work tree but a revert, which checks out
                        single_branch=True,  # the base branch: a publish fetches its own branches
                        branch=self.settings.base_branch,
                    )
                except GitCommandError as exc:
                    raise GitError(f"cannot clone the target repository {self.url}: {_stderr(exc)}") from exc
            repo.git.update_environment(**self.git_env)
            return repo
        self._clear_stale_locks()
        repo = Repo(self.path)
        repo.git.update_environment(**self.git_env)
        if repo.remotes.origin.url != self.url:  # the embedded forge may listen on a new port
            repo.remotes.origin.set_url(self.url)
        if not fetch or (unless_at is not None and self._tracking_commit(repo, self.settings.base_branch) == unless_at):
            return repo
        with self.auditor.action("git.fetch", self.url, refs=refspecs or "all"):
            try:
                everything = ["+refs/heads/*:refs/remotes/origin/*"]
                self._git(*_FETCH_CONFIG, "fetch", "--prune", "--no-tags", "origin", *(refspecs or everything))
            except GitCommandError as exc:
                raise GitError(f"cannot fetch the target repository {self.url}: {_stderr(exc)}") from exc
        return repo

    def _clear_stale_locks(self, *branches: str) -> None:
        """Git's own lock files left by a crash (``index.lock``, ``HEAD.lock``, the base branch's ref
        ``.lock``, and those of ``branches``). Call under the checkout lock: every git action that takes
        these locks runs under it (a publish outside it moves only its own branch's refs, and one request is
        driven by one process at a time), so any such file is stale: remove it (audited) instead of failing
        every resume on it. A fixed list of paths, never a walk of ``refs/``."""
        git_dir = self.path / ".git"
        names = [self.settings.base_branch, *branches]
        refs = [f"refs/heads/{b}.lock" for b in names] + [f"refs/remotes/origin/{b}.lock" for b in names]
        for lock in (git_dir / rel for rel in (*_STALE_LOCKS, *refs)):
            if lock.is_file():
                with self.auditor.action("git.remove_stale_lock", str(lock.relative_to(self.path))):
                    lock.unlink()

    def _git(self, *args: str, stdin: bytes | None = None) -> str:
        """Run ``git args`` in the clone (its environment, not the operator's); its stdout. Raises
        GitCommandError with git's stderr."""
        command = ["git", "-C", str(self.path), *args]
        done = subprocess.run(
            command, input=stdin, capture_output=True, env={**os.environ, **self.git_env}, check=False
        )
        if done.returncode != 0:
            raise GitCommandError(command, done.returncode, done.stderr, done.stdout)
        return done.stdout.decode("utf-8", "replace")

    def team_files(self) -> dict[str, str]:
        """``{path: text}`` of every ``teams/*/team.yaml`` on the base branch (fetched now: that branch only)."""
        with self._locked(self._refspecs()) as repo:
            return self._team_files(repo)

    def team_files_unless(
        self, known: Callable[[str], bool], read_head: Callable[[], str | None] | None = None
    ) -> tuple[str, dict[str, str] | None]:
        """``(revision, files)`` of the base branch's ``teams/`` tree: ``revision`` is that tree's git object
        id (``"empty"`` without one); ``files`` is None when ``known(revision)`` (the caller has that revision
        already), else ``{path: text}`` as :meth:`team_files` gives it.

        The base branch's head is read with ``read_head`` (the forge's API: one request, no git process),
        or with one ``ls-remote`` of that branch when there is none or it raises ForgeError; only when it
        is not the commit the clone already has is the base branch fetched (that branch alone, never every
        branch). So a run against a registry that did not move fetches nothing here, and its one fetch is
        the publish's (issue 12: one fetch per request). The head is read before the checkout lock is
        taken: the registry is as the remote was then, at most a lock wait old; the publish checks the
        base branch again, fetched under the lock, before it writes. Raises GitError."""
        try:
            head = read_head() if read_head is not None else self.remote_head(self.settings.base_branch)
        except ForgeError:  # the forge's API is down or refuses: git may still answer
            head = self.remote_head(self.settings.base_branch)
        with self._locked(self._refspecs(), unless_at=head) as repo:
            tree = self._base_tree(repo)
            revision = (tree / "teams").hexsha if _tree_has(tree, "teams") else "empty"
            return revision, None if known(revision) else self._team_files(repo)

    def team_files_of(self, revision: str) -> dict[str, str]:
        """``{path: text}`` of the ``teams/`` tree ``revision`` (a :meth:`team_files_unless` revision) as the
        clone holds it: no fetch, and the content is that revision's whatever the base branch is now.
        Raises GitError."""
        with self._locked([], unless_at=None, fetch=False) as repo:
            if revision == "empty":
                return {}
            try:
                teams = Tree(repo, hex_to_bin(revision), mode=0o040000, path="teams")
                return self._team_files_in(teams)
            except ValueError as exc:  # not a hex object id (binascii.Error)
                raise GitError(f"the clone holds no teams/ tree {revision!r}") from exc

    def _base_tree(self, repo: Repo) -> Any:
        try:
            return repo.commit(self.base_ref).tree
        except (ValueError, GitCommandError) as exc:
            raise GitError(f"the target repository has no branch {self.settings.base_branch!r}") from exc

    def _team_files(self, repo: Repo) -> dict[str, str]:
        tree = self._base_tree(repo)
        if not _tree_has(tree, "teams"):
            return {}
        return self._team_files_in(tree / "teams")

    @staticmethod
    def _team_files_in(teams: Tree) -> dict[str, str]:
        """``{teams/<name>/team.yaml: text}`` of a ``teams/`` tree."""
        found = {}
        for sub in teams.trees:
            if _tree_has(sub, "team.yaml"):
                blob = sub / "team.yaml"
                found[f"teams/{sub.name}/team.yaml"] = blob.data_stream.read().decode("utf-8", "replace")
        return found

    def _existing_top_paths(self, repo: Repo, base: str, team_name: str) -> list[str]:
        tree = repo.commit(base).tree
        return [p for p in (f"teams/{team_name}", f"k8s/teams/{team_name}") if _tree_has(tree, p)]

    def _remote_refs(self, prefix: str) -> dict[str, str]:
        """``{branch: commit}`` of the remote-tracking refs whose branch starts with ``prefix``: one
        ``for-each-ref`` on a prefix, not a parse of every ref."""
        out = self._git("for-each-ref", "--format=%(refname)%00%(objectname)", f"refs/remotes/origin/{prefix}*")
        pairs = (line.split("\x00") for line in out.splitlines() if "\x00" in line)
        return {
            ref.removeprefix("refs/remotes/origin/"): sha
            for ref, sha in pairs
            if ref.removeprefix("refs/remotes/origin/").startswith(prefix)
        }

    def _gap_branch(self, repo: Repo, remote: dict[str, str], gap_id: str) -> str | None:
        """One of the team's ``auto/team-<name>-*`` branches on the remote (``remote``: ``{branch: sha}``)
        that already carries this gap's commit: another process, or another installation with its own
        store, published it first."""
        for branch, sha in sorted(remote.items()):
            if _carries(repo.commit(sha).message, gap_id=gap_id):
                return branch
        return None

    def remote_head(self, branch: str) -> str | None:
        """The commit ``branch`` points at on the remote now (one audited ``git ls-remote`` of that ref), None
        when the remote has no such branch. Raises PolicyViolation (an ``auto/`` name the policy refuses),
        GitError."""
        if branch != self.settings.base_branch:
            check_branch(branch)
        return self.remote_refs(f"refs/heads/{branch}").get(f"refs/heads/{branch}")

    def remote_refs(self, *patterns: str) -> dict[str, str]:
        """``{ref: commit}`` of the remote's refs matching ``patterns`` (``git ls-remote`` patterns; a full
        ref name, or one ending in ``*``), in one audited ``ls-remote``. Runs in the state directory, so no
        repository around the process lends it its configuration. Raises GitError."""
        command = ["git", "ls-remote", "--", self.url, *patterns]
        with self._git_errors(), self.auditor.action("git.ls_remote", f"{self.url} {' '.join(patterns)}") as call:
            self.settings.ensure_home()
            done = subprocess.run(
                command, capture_output=True, env={**os.environ, **self.git_env}, cwd=self.settings.home, check=False
            )
            if done.returncode != 0:
                exc = GitCommandError(command, done.returncode, done.stderr, done.stdout)
                raise GitError(f"cannot read the target repository {self.url}: {_stderr(exc)}")
            found = [line.split("\t") for line in done.stdout.decode("utf-8", "replace").splitlines()]
            refs = {name: sha for sha, name in (f for f in found if len(f) == 2) if _matches_any(name, patterns)}
            call.result["refs"] = refs if len(refs) <= 20 else len(refs)  # a few in full, else how many
        return refs

    def on_base(self, commit: str) -> bool:
        """Whether the base branch on the remote (fetched now) contains ``commit``. Raises GitError."""
        if not commit:
            return False
        with self._locked(self._refspecs()) as repo:
            try:
                return repo.is_ancestor(commit, self.base_ref)
            except GitCommandError:  # a commit this clone does not have is on no branch of it
                return False

    def remote_branch_commit(self, repo: Repo, branch: str) -> str | None:
        """The commit the remote-tracking ref of ``branch`` points at, None without one."""
        return self._remote_refs(branch).get(branch)

    @staticmethod
    def _tracking_commit(repo: Repo, branch: str) -> str | None:
        """The commit the remote-tracking ref of ``branch`` points at, read without a git process (a
        loose or packed ref), None without one."""
        from git.refs.remote import RemoteReference

        try:
            return RemoteReference(repo, f"refs/remotes/origin/{branch}").commit.hexsha
        except ValueError:  # no such ref
            return None

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

        :meth:`stage_branch`, then :meth:`push_staged`. Idempotent: if the branch on the remote already
        carries this request's commit, nothing is written again. With ``gap_id``, a branch on the remote
        that already carries this gap's commit is adopted instead (its name is in the result). Raises
        PolicyViolation (the paths, the branch, an existing team), BranchTaken, GitError.
        """
        staged = self.stage_branch(
            request_id=request_id,
            team_name=team_name,
            branch=branch,
            rendered_root=rendered_root,
            files=files,
            message=message,
            gap_id=gap_id,
        )
        return self.push_staged(staged, request_id) if isinstance(staged, Staged) else staged

    def stage_branch(
        self,
        *,
        request_id: str,
        team_name: str,
        branch: str,
        rendered_root: Path,
        files: list[str],
        message: str,
        gap_id: str | None = None,
    ) -> Staged | Published:
        """Everything of a publish but the push: the commit of ``files`` from ``rendered_root`` on top of the
        base branch, with the local ``branch`` pointing at it (:class:`Staged`); or, when the remote
        needs no push (``branch`` carries this request's commit, or another branch this gap's), where the
        team is published already (:class:`Published`).

        One narrow fetch (the base branch and this team's ``auto/team-<name>-*`` branches) under the
        checkout lock; the commit is built outside it, from git objects, touching no work tree, and built
        anew on every call from the rendered files (a local branch from an earlier call, maybe of an
        earlier render, is never trusted). Raises PolicyViolation (the paths, the branch, an existing
        team), BranchTaken, GitError.
        """
        check_branch(branch)
        files = check_paths(files, team_name)
        prefix = f"auto/team-{team_name}-"
        fetched = time.monotonic()
        with self.locked(f"{prefix}*", *([] if branch.startswith(prefix) else [branch])) as repo:
            base = repo.commit(self.base_ref).hexsha
        with self._git_errors():
            remote = self._remote_refs(prefix)  # one read of this team's branches, for all that follows
            if not branch.startswith(prefix):
                remote |= self._remote_refs(branch)
            adopted = self._gap_branch(repo, remote, gap_id) if gap_id else None
            if adopted is not None:
                head = remote[adopted]
                ours = self._own_commit(repo, adopted, request_id=None, gap_id=gap_id) or head
                return self._published(repo, check_branch(adopted), ours, head, base)
            pushed = remote.get(branch)
            if pushed:
                ours = self._own_commit(repo, branch, request_id=request_id)
                if ours is None:
                    raise BranchTaken(f"{branch} exists on the remote without this request's commit; left alone")
                if ours != pushed:
                    self.auditor.event("publish.branch_moved", branch, request_id=request_id, commit=ours, head=pushed)
                return self._published(repo, branch, ours, pushed, base)
            if self._existing_top_paths(repo, base, team_name):
                raise PolicyViolation("existing-team", f"teams/{team_name}/ already exists on the base branch")
            commit_sha = self._commit(repo, request_id, team_name, branch, rendered_root, files, message, base)
            return Staged(branch, commit_sha, base, prefix, tuple(sorted(remote.items())), fetched)

    def push_staged(self, staged: Staged, request_id: str, fresh_for: float = STAGED_FRESH_SECONDS) -> Published:
        """Push a :meth:`stage_branch` commit (that commit, whatever the local branch says now) as a new
        branch. When the stage's view of the remote is older than ``fresh_for`` seconds, one audited
        ``ls-remote`` first checks that the base branch and the team's ``auto/`` branches are as the stage
        saw them (a branch carrying the same gap, or the team merged meanwhile, must be decided on by a
        full publish): StaleStage if not. If someone created the branch since, the create-only push is
        refused (GitError) and nothing of theirs is touched, even where it would be a fast-forward.
        Raises PolicyViolation (the branch), StaleStage, GitError."""
        if time.monotonic() - staged.fetched_at > fresh_for:
            refs = self.remote_refs(f"refs/heads/{self.settings.base_branch}", f"refs/heads/{staged.prefix}*")
            base = refs.pop(f"refs/heads/{self.settings.base_branch}", None)
            team = tuple(sorted((ref.removeprefix("refs/heads/"), sha) for ref, sha in refs.items()))
            if base != staged.base or team != staged.team_branches:
                raise StaleStage(f"the remote moved since {staged.branch} was staged; publishing from scratch")
        with self._git_errors():
            repo = Repo(self.path)
            repo.git.update_environment(**self.git_env)
            self._push(repo, staged.branch, request_id, staged.commit, create=True)
        return Published(staged.branch, staged.commit, staged.commit)

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

    def _published(self, repo: Repo, branch: str, commit: str, head: str, base: str | None = None) -> Published:
        on_base = repo.is_ancestor(commit, base or self.base_ref)
        return Published(branch, commit, head, on_base)

    def publish_revert(self, *, request_id: str, team_name: str, branch: str, merge_sha: str, message: str) -> str:
        """Push a branch that reverts the merged team (a new commit, never a force-push)."""
        check_branch(branch)
        with self.locked(branch) as repo:
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

    def _push(self, repo: Repo, branch: str, request_id: str, commit_sha: str, *, create: bool = False) -> None:
        """Push ``commit_sha`` (the commit the audit row names, whatever the local branch says) as one auto/
        branch (checked again here), audited; never forced. With ``create``, only as a new branch:
        ``--force-with-lease=<ref>:`` (an empty expected value) makes the remote refuse the update,
        atomically, if the branch exists at all, even where our commit would fast-forward it (a lease on a
        ref that is absent, not a force)."""
        check_branch(branch)
        ref = f"refs/heads/{branch}"
        lease = [f"--force-with-lease={ref}:"] if create else []
        with self.auditor.action(
            "git.push", f"{self.url} {branch}", request_id=request_id, commit=commit_sha, create_only=create
        ):
            try:
                repo.git.push("--porcelain", *lease, "origin", f"{commit_sha}:{ref}")
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
        base: str = "",
    ) -> str:
        """Build the commit of ``files`` on top of ``base`` from git objects and point the local
        ``branch`` at it; returns its sha. No checkout and no index: ``hash-object`` writes the blobs,
        ``mktree`` only the trees on the way to them (the rest of the base tree is reused by id),
        ``commit-tree`` the commit. The policy is checked twice here: the rendered sources must be regular
        files and no directory on the way may be a symbolic link or a file in the base tree, and the
        paths the commit changes against ``base`` (``diff-tree``) must all be allowed."""
        base = base or repo.git.rev_parse("--verify", f"{self.base_ref}^{{commit}}")
        with self.auditor.action(
            "repo.write_files", f"teams/{team_name}/ k8s/teams/{team_name}/", request_id=request_id, files=files
        ) as call:
            sources = []
            for rel in files:
                source = rendered_root / rel
                if source.is_symlink() or not source.is_file():
                    raise PolicyViolation("path-allow-list", f"rendered path {rel!r} is not a regular file")
                sources.append(str(source.resolve()))
            # --no-filters: the bytes committed are the bytes rendered and checked, whatever the base
            # branch's .gitattributes says.
            blobs = self._git("hash-object", "-w", "--no-filters", "--stdin-paths", stdin="\n".join(sources).encode())
            layout: dict[str, Any] = {}
            for rel, blob in zip(files, blobs.split(), strict=True):
                *dirs, name = rel.split("/")
                node = layout
                for part in dirs:
                    node = node.setdefault(part, {})
                    if not isinstance(node, dict):
                        raise PolicyViolation("path-allow-list", f"{rel!r} passes through a file it also writes")
                node[name] = blob
            with _TreeWriter(self) as writer:
                tree = writer.write(repo.commit(base).tree, layout, "")
            call.result["written"] = len(files)
        changed = self._git("diff-tree", "-r", "--no-renames", "--name-only", "-z", base, tree).split("\x00")
        check_paths([p for p in changed if p], team_name)  # what the commit changes, not just what we meant to
        with self.auditor.action("git.commit", f"{self.path} {branch}", request_id=request_id) as call:
            commit = self._commit_tree(tree, base, message)
            self._git("update-ref", f"refs/heads/{branch}", commit)
            call.result["commit"] = commit
        return commit

    def _commit_tree(self, tree: str, parent: str, message: str) -> str:
        """``git commit-tree``: the bot as author and committer, no hooks, no signing, ``message`` verbatim."""
        command = ["git", "-C", str(self.path), "commit-tree", tree, "-p", parent, "-F", "-"]
        env = {
            **os.environ,
            **self.git_env,
            "GIT_AUTHOR_NAME": self.bot.name or "",
            "GIT_AUTHOR_EMAIL": self.bot.email or "",
            "GIT_COMMITTER_NAME": self.bot.name or "",
            "GIT_COMMITTER_EMAIL": self.bot.email or "",
        }
        done = subprocess.run(command, input=message.encode(), capture_output=True, env=env, check=False)
        if done.returncode != 0:
            raise GitCommandError(command, done.returncode, done.stderr, done.stdout)
        return done.stdout.decode().strip()


class _TreeWriter:
    """Writes the trees of one commit through a single ``git mktree -z --batch`` (one process for all of
    them, each tree's id read back before its parent is written)."""

    def __init__(self, target: TargetRepo) -> None:
        self.command = ["git", "-C", str(target.path), "mktree", "-z", "--batch"]
        self.env = {**os.environ, **target.git_env}

    def __enter__(self) -> _TreeWriter:
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env
        )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        stderr = self.process.stderr.read() if self.process.stderr else b""
        if self.process.wait() != 0 and exc[0] is None:
            raise GitCommandError(self.command, self.process.returncode, stderr)

    def _mktree(self, entries: dict[str, tuple[str, str, str]]) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        text = "".join(f"{mode} {kind} {sha}\t{name}\x00" for name, (mode, kind, sha) in entries.items())
        self.process.stdin.write(text.encode() + b"\x00")  # an empty record ends the tree
        self.process.stdin.flush()
        line = self.process.stdout.readline().decode().strip()
        if not line:
            stderr = self.process.stderr.read() if self.process.stderr else b""
            raise GitCommandError(self.command, self.process.wait(), stderr)
        return line

    def write(self, base: Tree | None, layout: dict[str, Any], where: str) -> str:
        """The id of ``base`` (a tree of the base commit, None for a new directory) with ``layout``
        (``{name: blob id | {sub layout}}``) written over it; only the trees on the way are written.
        Raises PolicyViolation when the base tree has a symbolic link, a file or a submodule where the
        layout needs a directory (or a directory where it writes a file)."""
        entries: dict[str, tuple[str, str, str]] = {}
        if base is not None:
            for item in base:
                entries[item.name] = (
                    f"{item.mode:06o}",
                    item.type if item.type != "submodule" else "commit",
                    item.hexsha,
                )
        for name, value in layout.items():
            path = f"{where}{name}"
            existing = entries.get(name)
            if isinstance(value, dict):
                if existing is not None and existing[0] != _TREE_MODE:
                    what = "a symbolic link" if existing[0] == "120000" else "not a directory"
                    raise PolicyViolation("path-allow-list", f"{path} is {what} in the target repository")
                sub = base / name if base is not None and existing is not None else None
                entries[name] = (_TREE_MODE, "tree", self.write(sub, value, f"{path}/"))
            else:
                if existing is not None and existing[0] in {_TREE_MODE, "120000", "160000"}:
                    raise PolicyViolation("path-allow-list", f"{path} is not a regular file in the target repository")
                entries[name] = (_BLOB_MODE, "blob", value)
        return self._mktree(entries)


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


def _matches_any(ref: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``ref`` is one of ``patterns`` or starts with one ending in ``*`` (ls-remote also matches
    pattern tails: ``main`` would match ``refs/heads/x/main``; only whole names count here)."""
    return any(ref == p or (p.endswith("*") and ref.startswith(p[:-1])) for p in patterns)


def _tree_has(tree: object, path: str) -> bool:
    try:
        tree / path  # type: ignore[operator]
    except KeyError:
        return False
    return True
