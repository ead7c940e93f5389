"""Operations on one bare repository: refs, commits, diffs, trees and server-side merges.

Refs are read straight from the files git keeps (loose refs, then ``packed-refs``), which costs no
process; everything else runs the ``git`` command line. Writes go through ``git update-ref`` with the
expected old value, so a concurrent ``git push`` to the same bare repository can never be overwritten
silently. Results that depend only on object ids (diffs, merge trees, ancestry) are cached: objects never
change once written.

Merges are done without a work tree: ``git merge-tree --write-tree`` (git >= 2.38) computes the merged
tree and ``git commit-tree`` records the commit. A rebase replays commits in a throw-away work tree.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ZERO_SHA = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's well-known id of the empty tree
# The forge is the server side: the developer's own git configuration (signing, hooks, templates, aliases)
# must not change what it records.
ISOLATED_GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
#: Seconds :meth:`BareRepo.size_kib` reuses a reading. GitHub recalculates a repository's ``size`` hourly;
#: a minute keeps it near the disk without a ``git count-objects`` in every payload that embeds the
#: repository (a pull request embeds it twice).
SIZE_TTL_SECONDS = 60.0


class GitError(RuntimeError):
    """A git command failed."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class Signature:
    name: str
    email: str
    date: str  # ISO 8601, UTC, GitHub style


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob, tree, commit (submodule)
    sha: str
    size: int
    path: str


@dataclass(frozen=True)
class FileChange:
    """One file of a diff, shaped after GitHub's ``diff-entry``."""

    filename: str
    status: str  # added, removed, modified, renamed, copied, changed
    sha: str
    additions: int
    deletions: int
    previous_filename: str | None = None
    patch: str | None = None

    @property
    def changes(self) -> int:
        return self.additions + self.deletions


@dataclass(frozen=True)
class MergeOutcome:
    clean: bool
    tree: str | None = None
    conflicts: tuple[str, ...] = field(default_factory=tuple)


_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}


def _iso_from_git(stamp: str) -> str:
    """Convert git's ``<epoch> <+hhmm>`` to GitHub's UTC ``YYYY-MM-DDTHH:MM:SSZ``."""
    epoch = int(stamp.split()[0])
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ident(line: str) -> Signature:
    match = re.match(r"^(.*) <(.*)> (\d+ [+-]\d{4})$", line)
    if not match:
        return Signature(name=line, email="", date="1970-01-01T00:00:00Z")
    return Signature(name=match.group(1), email=match.group(2), date=_iso_from_git(match.group(3)))


class BareRepo:
    """A bare git repository on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._size: tuple[float, int] | None = None  # (monotonic time read, KiB)

    # process helpers --------------------------------------------------------------------------------

    def git(
        self,
        *args: str,
        input_: bytes | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = {**os.environ, **ISOLATED_GIT_ENV}
        full_env.pop("GIT_DIR", None)
        full_env.pop("GIT_INDEX_FILE", None)
        if env:
            full_env.update(env)
        argv = ["git", *args] if cwd is not None else ["git", "--git-dir", str(self.path), *args]
        proc = subprocess.run(argv, input=input_, capture_output=True, env=full_env, check=False, cwd=cwd)
        if check and proc.returncode != 0:
            raise GitError(list(args), proc.returncode, proc.stderr.decode(errors="replace"))
        return proc

    def _out(self, *args: str) -> str:
        return self.git(*args).stdout.decode(errors="replace")

    # creation ----------------------------------------------------------------------------------------

    @classmethod
    def init(cls, path: Path, default_branch: str) -> BareRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)],
            check=True,
            capture_output=True,
            env={**os.environ, **ISOLATED_GIT_ENV},
        )
        repo = cls(path)
        repo.git("config", "http.receivepack", "true")
        repo.git("config", "uploadpack.allowAnySHA1InWant", "true")
        return repo

    def is_bare_repo(self) -> bool:
        proc = self.git("rev-parse", "--is-bare-repository", check=False)
        return proc.returncode == 0 and proc.stdout.strip() == b"true"

    def commit_directory(self, directory: Path, branch: str, message: str, ident: Signature) -> str:
        """Record every file under ``directory`` as one commit on ``branch`` (a root commit if new)."""
        with tempfile.TemporaryDirectory(prefix="localforge-index-") as tmp:
            env = {
                **ISOLATED_GIT_ENV,
                "GIT_INDEX_FILE": str(Path(tmp) / "index"),
                "GIT_WORK_TREE": str(directory),
                "GIT_DIR": str(self.path),
            }
            subprocess.run(
                ["git", "add", "--all", "--force", "."],
                cwd=directory,
                env={**os.environ, **env},
                check=True,
                capture_output=True,
            )
            tree = (
                subprocess.run(
                    ["git", "write-tree"], cwd=directory, env={**os.environ, **env}, check=True, capture_output=True
                )
                .stdout.decode()
                .strip()
            )
        parent = self.resolve(f"refs/heads/{branch}")
        sha = self.commit_tree(tree, [parent] if parent else [], message, ident, ident)
        self.update_ref(f"refs/heads/{branch}", sha, parent or ZERO_SHA)
        return sha

    # refs ---------------------------------------------------------------------------------------------

    def resolve(self, refname: str) -> str | None:
        """The object id a full ref name points to, or None; reads git's files directly."""
        for _ in range(5):  # follow symbolic refs a few levels
            loose = self.path / refname
            try:
                content = loose.read_text().strip()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                content = ""
            if content.startswith("ref: "):
                refname = content[5:].strip()
                continue
            if SHA_RE.match(content):
                return content
            return self._packed_refs().get(refname)
        return None

    def _packed_refs(self) -> dict[str, str]:
        try:
            text = (self.path / "packed-refs").read_text()
        except FileNotFoundError:
            return {}
        refs: dict[str, str] = {}
        for line in text.splitlines():
            if not line or line[0] in "#^":
                continue
            sha, _, name = line.partition(" ")
            refs[name.strip()] = sha
        return refs

    def resolve_commitish(self, ref: str) -> str | None:
        """Resolve what GitHub accepts as ``?ref=`` or ``{ref}``: a sha, a branch, a tag, ``heads/<branch>``,
        ``tags/<tag>`` or a full ref name."""
        if SHA_RE.match(ref) and self.object_type(ref) is not None:
            return self.peel_commit(ref)
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/{ref}", ref):
            sha = self.resolve(candidate) if candidate.startswith("refs/") else None
            if sha:
                return self.peel_commit(sha)
        if re.match(r"^[0-9a-f]{7,39}$", ref):
            proc = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
            if proc.returncode == 0:
                return proc.stdout.decode().strip()
        return None

    def peel_commit(self, sha: str) -> str | None:
        proc = self.git("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def list_refs(self, prefix: str = "refs/") -> list[tuple[str, str, str]]:
        """``(refname, sha, object type)`` for every ref whose name starts with ``prefix``."""
        out = self._out("for-each-ref", "--format=%(refname) %(objectname) %(objecttype)")
        refs = []
        for line in out.splitlines():
            name, sha, kind = line.split(" ")
            if name.startswith(prefix):
                refs.append((name, sha, kind))
        return refs

    def branches(self) -> list[tuple[str, str]]:
        return [(name[len("refs/heads/") :], sha) for name, sha, _ in self.list_refs("refs/heads/")]

    def update_ref(self, refname: str, new: str, old: str | None = None) -> bool:
        """Point ``refname`` at ``new`` if it currently is ``old`` (ZERO_SHA: must not exist)."""
        args = ["update-ref", refname, new] + ([old] if old is not None else [])
        return self.git(*args, check=False).returncode == 0

    def delete_ref(self, refname: str, old: str | None = None) -> bool:
        args = ["update-ref", "-d", refname] + ([old] if old is not None else [])
        return self.git(*args, check=False).returncode == 0

    def valid_ref_name(self, refname: str) -> bool:
        return self.git("check-ref-format", refname, check=False).returncode == 0

    # objects -----------------------------------------------------------------------------------------

    def object_type(self, sha: str) -> str | None:
        """``commit``, ``tree``, ``blob`` or ``tag``; None if absent (not cached: it may be pushed later)."""
        try:
            return self._object_type(sha)
        except GitError:
            return None

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - objects are immutable; the repo lives as long as the forge
    def _object_type(self, sha: str) -> str:
        return self.git("cat-file", "-t", sha).stdout.decode().strip()

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def commit(self, sha: str) -> CommitInfo:
        raw = self.git("cat-file", "commit", sha).stdout.decode(errors="replace")
        header, _, message = raw.partition("\n\n")
        tree = ""
        parents: list[str] = []
        author = committer = Signature("", "", "1970-01-01T00:00:00Z")
        for line in header.splitlines():
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
            elif key == "author":
                author = _parse_ident(value)
            elif key == "committer":
                committer = _parse_ident(value)
        return CommitInfo(sha, tree, tuple(parents), author, committer, message)

    def commit_tree(self, tree: str, parents: list[str], message: str, author: Signature, committer: Signature) -> str:
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        if author.date:
            env["GIT_AUTHOR_DATE"] = author.date
        if committer.date:
            env["GIT_COMMITTER_DATE"] = committer.date
        return self.git(*args, input_=message.encode(), env=env).stdout.decode().strip()

    @functools.lru_cache(maxsize=1024)  # noqa: B019
    def merge_base(self, a: str, b: str) -> str | None:
        proc = self.git("merge-base", a, b, check=False)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    @functools.lru_cache(maxsize=1024)  # noqa: B019
    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0

    @functools.lru_cache(maxsize=1024)  # noqa: B019
    def commits_between(self, base: str, head: str) -> tuple[str, ...]:
        """Commits reachable from ``head`` but not ``base``, oldest first (``git rev-list base..head``)."""
        out = self._out("rev-list", "--reverse", "--topo-order", f"{base}..{head}")
        return tuple(out.split())

    @functools.lru_cache(maxsize=1024)  # noqa: B019
    def merge_tree(self, ours: str, theirs: str) -> MergeOutcome:
        proc = self.git("merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs, check=False)
        lines = proc.stdout.decode(errors="replace").splitlines()
        if proc.returncode == 0:
            return MergeOutcome(clean=True, tree=lines[0].strip())
        if proc.returncode == 1:
            return MergeOutcome(clean=False, tree=None, conflicts=tuple(x for x in lines[1:] if x))
        raise GitError(["merge-tree", ours, theirs], proc.returncode, proc.stderr.decode(errors="replace"))

    # diffs -------------------------------------------------------------------------------------------

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def diff(self, base: str, head: str) -> tuple[FileChange, ...]:
        """Files changed from ``base`` to ``head`` (pass the merge base for GitHub's three-dot diff)."""
        raw = self.git("diff", "--raw", "-z", "-M", "--no-abbrev", base, head).stdout.decode(errors="replace")
        numstat = self.git("diff", "--numstat", "-z", "-M", base, head).stdout.decode(errors="replace")
        patch_text = self.git("diff", "-M", "--no-color", "--no-ext-diff", base, head).stdout.decode(errors="replace")
        entries = _parse_raw(raw)
        counts = _parse_numstat(numstat)
        patches = _split_patches(patch_text)
        changes = []
        for index, (status, old_sha, new_sha, path, old_path) in enumerate(entries):
            adds, dels = counts[index] if index < len(counts) else (0, 0)
            patch = patches[index] if index < len(patches) else None
            changes.append(
                FileChange(
                    filename=path,
                    status=status,
                    sha=old_sha if status == "removed" else new_sha,
                    additions=adds,
                    deletions=dels,
                    previous_filename=old_path,
                    patch=patch,
                )
            )
        return tuple(changes)

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def diff_text(self, base: str, head: str) -> bytes:
        """The unified diff from ``base`` (a commit or :data:`EMPTY_TREE`) to ``head``, as ``git diff`` prints
        it: GitHub's ``application/vnd.github.diff``."""
        return self.git("diff", "-M", "--no-color", "--no-ext-diff", "--full-index", base, head).stdout

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def format_patch(self, base: str | None, head: str) -> bytes:
        """``git format-patch --stdout`` of the commits in ``base..head`` (only ``head`` when ``base`` is None):
        GitHub's ``application/vnd.github.patch``, one mail per commit."""
        spec = ["-1", head] if base is None else [f"{base}..{head}"]
        return self.git("format-patch", "--stdout", "--no-color", "--no-signature", "-M", *spec).stdout

    def first_parent_base(self, sha: str) -> str:
        """What a single commit's diff is taken against: its first parent, or the empty tree for a root."""
        parents = self.commit(sha).parents
        return parents[0] if parents else EMPTY_TREE

    def history(self, start: str, path: str | None = None) -> tuple[str, ...]:
        """Commits reachable from ``start``, newest first (``git rev-list``; only those touching ``path``)."""
        args = ["rev-list", "--topo-order", start] + (["--", path] if path else [])
        return tuple(self._out(*args).split())

    # trees -------------------------------------------------------------------------------------------

    def tree_entry(self, commit: str, path: str) -> TreeEntry | None:
        """The entry at ``path`` in ``commit``'s tree (path "" is the root tree)."""
        if path == "":
            return TreeEntry("040000", "tree", self.commit(commit).tree, 0, "")
        out = self.git("ls-tree", "-l", "-z", "--full-tree", commit, "--", path, check=False)
        if out.returncode != 0:
            return None
        for record in out.stdout.decode(errors="replace").split("\0"):
            entry = _parse_ls_tree(record)
            if entry is not None and entry.path == path:
                return entry
        return None

    def list_tree(self, commit: str, path: str) -> list[TreeEntry]:
        spec = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
        out = self.git("ls-tree", "-l", "-z", spec, check=False)
        if out.returncode != 0:
            return []
        entries = []
        for record in out.stdout.decode(errors="replace").split("\0"):
            entry = _parse_ls_tree(record)
            if entry is not None:
                entries.append(
                    TreeEntry(
                        entry.mode, entry.type, entry.sha, entry.size, f"{path}/{entry.path}" if path else entry.path
                    )
                )
        return entries

    def blob(self, sha: str) -> bytes:
        return self.git("cat-file", "blob", sha).stdout

    def size_kib(self) -> int:
        """The repository's size on disk in KiB (loose objects and packs), as GitHub's ``size``: read
        again when the last reading is older than ``SIZE_TTL_SECONDS``."""
        cached = self._size
        if cached is not None and time.monotonic() - cached[0] < SIZE_TTL_SECONDS:
            return cached[1]
        out = self._out("count-objects", "-v")
        sizes = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        size = int(sizes.get("size", "0")) + int(sizes.get("size-pack", "0"))
        self._size = (time.monotonic(), size)
        return size

    # rebase ------------------------------------------------------------------------------------------

    def replay(self, onto: str, commits: tuple[str, ...], committer: Signature) -> str | None:
        """Cherry-pick ``commits`` onto ``onto`` in a temporary work tree; None on a conflict."""
        tmp = Path(tempfile.mkdtemp(prefix="localforge-rebase-"))
        worktree = tmp / "wt"
        env = {"GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email}
        try:
            self.git("worktree", "add", "--detach", "--quiet", str(worktree), onto)
            proc = self.git(
                "cherry-pick", "--allow-empty", "--keep-redundant-commits", *commits, cwd=worktree, env=env, check=False
            )
            if proc.returncode != 0:
                self.git("cherry-pick", "--abort", cwd=worktree, check=False)
                return None
            return self.git("rev-parse", "HEAD", cwd=worktree).stdout.decode().strip()
        finally:
            self.git("worktree", "remove", "--force", str(worktree), check=False)
            shutil.rmtree(tmp, ignore_errors=True)
            self.git("worktree", "prune", check=False)


def _parse_ls_tree(record: str) -> TreeEntry | None:
    if not record.strip():
        return None
    meta, _, path = record.partition("\t")
    parts = meta.split()
    if len(parts) < 4:
        return None
    mode, kind, sha, size = parts[:4]
    return TreeEntry(mode, kind, sha, int(size) if size.isdigit() else 0, path)


def _parse_raw(raw: str) -> list[tuple[str, str, str, str, str | None]]:
    """Parse ``git diff --raw -z`` into ``(status, old_sha, new_sha, path, old_path)``."""
    tokens = raw.split("\0")
    entries = []
    i = 0
    while i < len(tokens) and tokens[i].startswith(":"):
        meta = tokens[i][1:].split()
        _old_mode, _new_mode, old_sha, new_sha, status = meta[:5]
        letter = status[0]
        if letter in "RC":
            old_path, path = tokens[i + 1], tokens[i + 2]
            i += 3
        else:
            old_path, path = None, tokens[i + 1]
            i += 2
        entries.append((_STATUS.get(letter, "modified"), old_sha, new_sha, path, old_path))
    return entries


def _parse_numstat(text: str) -> list[tuple[int, int]]:
    """Parse ``git diff --numstat -z``; a rename is followed by two NUL-separated paths."""
    tokens = text.split("\0")
    counts = []
    i = 0
    while i < len(tokens) and tokens[i]:
        fields = tokens[i].split("\t")
        adds, dels = fields[0], fields[1]
        counts.append((int(adds) if adds.isdigit() else 0, int(dels) if dels.isdigit() else 0))
        if len(fields) >= 3 and fields[2] == "":  # rename: "adds\tdels\t" then old, new
            i += 3
        else:
            i += 1
    return counts


def _split_patches(text: str) -> list[str | None]:
    """Split a full patch per file; keep GitHub's ``patch`` part (from the first ``@@``), None if binary."""
    chunks = re.split(r"^diff --git .*$\n", text, flags=re.MULTILINE)[1:]
    patches: list[str | None] = []
    for chunk in chunks:
        index = chunk.find("@@")
        if index >= 0 and (index == 0 or chunk[index - 1] == "\n"):
            patches.append(chunk[index:].rstrip("\n"))
        else:
            patches.append(None)
    return patches
