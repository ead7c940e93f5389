"""The forge's own database: users, teams, repositories, pull requests, labels, comments, review requests.

This is the stand-in for GitHub's database, not the application's store: one SQLite file in the forge's
data directory, opened with the standard library. Git objects and refs live in the bare repositories;
this file holds only what git cannot (pull request numbers and state, labels, comments, ...).

Every access goes through :meth:`ForgeState.transaction`, which holds one re-entrant lock for the whole
forge. Handlers run entirely inside it, so a check followed by an insert (for example "is there already an
open pull request for this head?") cannot interleave with another request. A partial unique index backs
that rule up at the database level.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL UNIQUE COLLATE NOCASE,
    type TEXT NOT NULL DEFAULT 'User',
    name TEXT,
    email TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES users(id),
    slug TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL,
    description TEXT,
    UNIQUE (org_id, slug)
);
CREATE TABLE IF NOT EXISTS repos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL COLLATE NOCASE,
    path TEXT NOT NULL,
    description TEXT,
    default_branch TEXT NOT NULL,
    private INTEGER NOT NULL DEFAULT 0,
    next_number INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    pushed_at TEXT NOT NULL,
    UNIQUE (owner_id, name)
);
CREATE TABLE IF NOT EXISTS pulls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id),
    number INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    body TEXT,
    state TEXT NOT NULL DEFAULT 'open',
    draft INTEGER NOT NULL DEFAULT 0,
    head_ref TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    base_ref TEXT NOT NULL,
    base_sha TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT,
    merged_at TEXT,
    merge_commit_sha TEXT,
    merged_by_id INTEGER REFERENCES users(id),
    UNIQUE (repo_id, number)
);
CREATE UNIQUE INDEX IF NOT EXISTS pulls_one_open_per_head_base
    ON pulls (repo_id, head_ref, base_ref) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id),
    name TEXT NOT NULL COLLATE NOCASE,
    color TEXT NOT NULL DEFAULT 'ededed',
    description TEXT,
    UNIQUE (repo_id, name)
);
CREATE TABLE IF NOT EXISTS issue_labels (
    repo_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    label_id INTEGER NOT NULL REFERENCES labels(id),
    PRIMARY KEY (repo_id, number, label_id)
);
CREATE TABLE IF NOT EXISTS comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id),
    number INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id),
    number INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    state TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    commit_id TEXT NOT NULL,
    submitted_at TEXT
);
CREATE INDEX IF NOT EXISTS reviews_by_pull ON reviews (repo_id, number, id);
CREATE TABLE IF NOT EXISTS review_requests (
    repo_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'team')),
    reviewer_id INTEGER NOT NULL,
    PRIMARY KEY (repo_id, number, kind, reviewer_id)
);
"""


def now_iso() -> str:
    """The current UTC time in GitHub's timestamp format (``2024-05-01T12:00:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class User:
    id: int
    login: str
    type: str
    name: str | None
    email: str | None
    created_at: str


@dataclass(frozen=True)
class Team:
    id: int
    org_id: int
    slug: str
    name: str
    description: str | None


@dataclass(frozen=True)
class Repo:
    id: int
    owner: User
    name: str
    path: Path
    description: str | None
    default_branch: str
    private: bool
    created_at: str
    updated_at: str
    pushed_at: str

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"


@dataclass(frozen=True)
class Pull:
    id: int
    repo_id: int
    number: int
    user_id: int
    title: str
    body: str | None
    state: str
    draft: bool
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    created_at: str
    updated_at: str
    closed_at: str | None
    merged_at: str | None
    merge_commit_sha: str | None
    merged_by_id: int | None


@dataclass(frozen=True)
class Label:
    id: int
    repo_id: int
    name: str
    color: str
    description: str | None


@dataclass(frozen=True)
class Comment:
    id: int
    repo_id: int
    number: int
    user_id: int
    body: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Review:
    """A pull request review: ``state`` is APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING."""

    id: int
    repo_id: int
    number: int
    user_id: int
    state: str
    body: str
    commit_id: str
    submitted_at: str | None


class DuplicateOpenPull(Exception):
    """An open pull request already exists for the same head and base."""


class ForgeState:
    """Typed access to the forge's SQLite file; use every method inside :meth:`transaction`."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[ForgeState]:
        """Hold the forge-wide lock; the outermost level commits on success and rolls back on error."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def add_schema(self, script: str) -> None:
        """Create a companion store's tables (``CREATE ... IF NOT EXISTS``); call outside any transaction."""
        with self._lock:
            self._db.executescript(script)

    def add_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add the ``columns`` (name -> SQL type and default) that ``table`` lacks: the forge's own schema
        upgrade for a data directory made by an older version; call outside any transaction."""
        with self._lock:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, ddl in columns.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")

    def execute(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        """One statement for a companion store (see :mod:`.ci`); call it inside :meth:`transaction`."""
        return self._db.execute(sql, tuple(args))

    # users and teams -------------------------------------------------------------------------------

    def _user(self, row: sqlite3.Row | None) -> User | None:
        if row is None:
            return None
        return User(row["id"], row["login"], row["type"], row["name"], row["email"], row["created_at"])

    def ensure_user(self, login: str, type_: str = "User", name: str | None = None, email: str | None = None) -> User:
        existing = self.user_by_login(login)
        if existing is not None:
            if (name and name != existing.name) or (email and email != existing.email):
                self._db.execute(
                    "UPDATE users SET name = COALESCE(?, name), email = COALESCE(?, email) WHERE id = ?",
                    (name, email, existing.id),
                )
                return self.user_by_id(existing.id)  # type: ignore[return-value]
            return existing
        cur = self._db.execute(
            "INSERT INTO users (login, type, name, email, created_at) VALUES (?, ?, ?, ?, ?)",
            (login, type_, name, email, now_iso()),
        )
        return self.user_by_id(int(cur.lastrowid or 0))  # type: ignore[return-value]

    def user_by_login(self, login: str) -> User | None:
        return self._user(self._db.execute("SELECT * FROM users WHERE login = ?", (login,)).fetchone())

    def user_by_id(self, user_id: int) -> User | None:
        return self._user(self._db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())

    def user_by_email(self, email: str) -> User | None:
        return self._user(self._db.execute("SELECT * FROM users WHERE email = ?", (email,)).fetchone())

    def ensure_team(self, org: User, slug: str, name: str | None, description: str | None) -> Team:
        existing = self.team_by_slug(org.id, slug)
        if existing is not None:
            return existing
        self._db.execute(
            "INSERT INTO teams (org_id, slug, name, description) VALUES (?, ?, ?, ?)",
            (org.id, slug, name or slug, description),
        )
        return self.team_by_slug(org.id, slug)  # type: ignore[return-value]

    def _team(self, row: sqlite3.Row | None) -> Team | None:
        if row is None:
            return None
        return Team(row["id"], row["org_id"], row["slug"], row["name"], row["description"])

    def team_by_slug(self, org_id: int, slug: str) -> Team | None:
        row = self._db.execute("SELECT * FROM teams WHERE org_id = ? AND slug = ?", (org_id, slug)).fetchone()
        return self._team(row)

    def team_by_id(self, team_id: int) -> Team | None:
        return self._team(self._db.execute("SELECT * FROM teams WHERE id = ?", (team_id,)).fetchone())

    # repositories ----------------------------------------------------------------------------------

    def _repo(self, row: sqlite3.Row | None) -> Repo | None:
        if row is None:
            return None
        owner = self.user_by_id(row["owner_id"])
        assert owner is not None
        return Repo(
            id=row["id"],
            owner=owner,
            name=row["name"],
            path=Path(row["path"]),
            description=row["description"],
            default_branch=row["default_branch"],
            private=bool(row["private"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            pushed_at=row["pushed_at"],
        )

    def insert_repo(
        self, owner: User, name: str, path: Path, default_branch: str, description: str | None = None
    ) -> Repo:
        ts = now_iso()
        cur = self._db.execute(
            "INSERT INTO repos (owner_id, name, path, description, default_branch, created_at, updated_at,"
            " pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (owner.id, name, str(path), description, default_branch, ts, ts, ts),
        )
        return self.repo_by_id(int(cur.lastrowid or 0))  # type: ignore[return-value]

    def repo_by_id(self, repo_id: int) -> Repo | None:
        return self._repo(self._db.execute("SELECT * FROM repos WHERE id = ?", (repo_id,)).fetchone())

    def repo_by_name(self, owner_login: str, name: str) -> Repo | None:
        row = self._db.execute(
            "SELECT repos.* FROM repos JOIN users ON users.id = repos.owner_id"
            " WHERE users.login = ? AND repos.name = ?",
            (owner_login, name),
        ).fetchone()
        return self._repo(row)

    def all_repos(self) -> list[Repo]:
        rows = self._db.execute("SELECT * FROM repos ORDER BY id").fetchall()
        return [r for r in (self._repo(row) for row in rows) if r is not None]

    def count_repos(self, owner_id: int) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM repos WHERE owner_id = ?", (owner_id,)).fetchone()[0])

    def touch_repo_push(self, repo_id: int) -> None:
        ts = now_iso()
        self._db.execute("UPDATE repos SET pushed_at = ?, updated_at = ? WHERE id = ?", (ts, ts, repo_id))

    def allocate_number(self, repo_id: int) -> int:
        row = self._db.execute("SELECT next_number FROM repos WHERE id = ?", (repo_id,)).fetchone()
        number = int(row[0])
        self._db.execute("UPDATE repos SET next_number = ? WHERE id = ?", (number + 1, repo_id))
        return number

    # pull requests ---------------------------------------------------------------------------------

    def _pull(self, row: sqlite3.Row | None) -> Pull | None:
        if row is None:
            return None
        return Pull(
            id=row["id"],
            repo_id=row["repo_id"],
            number=row["number"],
            user_id=row["user_id"],
            title=row["title"],
            body=row["body"],
            state=row["state"],
            draft=bool(row["draft"]),
            head_ref=row["head_ref"],
            head_sha=row["head_sha"],
            base_ref=row["base_ref"],
            base_sha=row["base_sha"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            closed_at=row["closed_at"],
            merged_at=row["merged_at"],
            merge_commit_sha=row["merge_commit_sha"],
            merged_by_id=row["merged_by_id"],
        )

    def insert_pull(
        self,
        repo_id: int,
        user_id: int,
        title: str,
        body: str | None,
        head_ref: str,
        head_sha: str,
        base_ref: str,
        base_sha: str,
        draft: bool,
    ) -> Pull:
        if self.open_pull_for(repo_id, head_ref, base_ref) is not None:
            raise DuplicateOpenPull(head_ref)
        number = self.allocate_number(repo_id)
        ts = now_iso()
        try:
            self._db.execute(
                "INSERT INTO pulls (repo_id, number, user_id, title, body, draft, head_ref, head_sha,"
                " base_ref, base_sha, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (repo_id, number, user_id, title, body, int(draft), head_ref, head_sha, base_ref, base_sha, ts, ts),
            )
        except sqlite3.IntegrityError as exc:  # the partial unique index: a second open PR for head+base
            raise DuplicateOpenPull(head_ref) from exc
        return self.pull(repo_id, number)  # type: ignore[return-value]

    def pull(self, repo_id: int, number: int) -> Pull | None:
        row = self._db.execute("SELECT * FROM pulls WHERE repo_id = ? AND number = ?", (repo_id, number)).fetchone()
        return self._pull(row)

    def open_pull_for(self, repo_id: int, head_ref: str, base_ref: str) -> Pull | None:
        row = self._db.execute(
            "SELECT * FROM pulls WHERE repo_id = ? AND head_ref = ? AND base_ref = ? AND state = 'open'",
            (repo_id, head_ref, base_ref),
        ).fetchone()
        return self._pull(row)

    def pulls(self, repo_id: int) -> list[Pull]:
        rows = self._db.execute("SELECT * FROM pulls WHERE repo_id = ? ORDER BY number", (repo_id,))
        return [p for p in (self._pull(r) for r in rows.fetchall()) if p is not None]

    def count_open_pulls(self, repo_id: int) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM pulls WHERE repo_id = ? AND state = 'open'", (repo_id,))
        return int(row.fetchone()[0])

    _PULL_COLUMNS = frozenset(
        {
            "title",
            "body",
            "state",
            "head_sha",
            "base_ref",
            "base_sha",
            "closed_at",
            "merged_at",
            "merge_commit_sha",
            "merged_by_id",
            "updated_at",
        }
    )

    def update_pull(self, pull: Pull, **fields: object) -> Pull:
        """Update the given columns (and ``updated_at``) and return the fresh row."""
        unknown = set(fields) - self._PULL_COLUMNS
        if unknown:
            raise ValueError(f"unknown pull columns: {sorted(unknown)}")
        fields.setdefault("updated_at", now_iso())
        assignments = ", ".join(f"{name} = ?" for name in fields)
        try:
            self._db.execute(
                f"UPDATE pulls SET {assignments} WHERE id = ?",  # noqa: S608 - names from a fixed set
                (*fields.values(), pull.id),
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateOpenPull(pull.head_ref) from exc
        return self.pull(pull.repo_id, pull.number)  # type: ignore[return-value]

    # labels ----------------------------------------------------------------------------------------

    def _label(self, row: sqlite3.Row | None) -> Label | None:
        if row is None:
            return None
        return Label(row["id"], row["repo_id"], row["name"], row["color"], row["description"])

    def ensure_label(self, repo_id: int, name: str) -> Label:
        row = self._db.execute("SELECT * FROM labels WHERE repo_id = ? AND name = ?", (repo_id, name)).fetchone()
        if row is None:
            self._db.execute("INSERT INTO labels (repo_id, name) VALUES (?, ?)", (repo_id, name))
            row = self._db.execute("SELECT * FROM labels WHERE repo_id = ? AND name = ?", (repo_id, name)).fetchone()
        return self._label(row)  # type: ignore[return-value]

    def label_by_name(self, repo_id: int, name: str) -> Label | None:
        row = self._db.execute("SELECT * FROM labels WHERE repo_id = ? AND name = ?", (repo_id, name)).fetchone()
        return self._label(row)

    def insert_label(self, repo_id: int, name: str, color: str, description: str | None) -> Label:
        self._db.execute(
            "INSERT INTO labels (repo_id, name, color, description) VALUES (?, ?, ?, ?)",
            (repo_id, name, color, description),
        )
        return self.label_by_name(repo_id, name)  # type: ignore[return-value]

    def repo_labels(self, repo_id: int) -> list[Label]:
        rows = self._db.execute(
            "SELECT * FROM labels WHERE repo_id = ? ORDER BY name COLLATE NOCASE", (repo_id,)
        ).fetchall()
        return [lb for lb in (self._label(r) for r in rows) if lb is not None]

    def issue_labels(self, repo_id: int, number: int) -> list[Label]:
        rows = self._db.execute(
            "SELECT labels.* FROM labels JOIN issue_labels ON issue_labels.label_id = labels.id"
            " WHERE issue_labels.repo_id = ? AND issue_labels.number = ? ORDER BY labels.name COLLATE NOCASE",
            (repo_id, number),
        ).fetchall()
        return [lb for lb in (self._label(r) for r in rows) if lb is not None]

    def add_issue_label(self, repo_id: int, number: int, label: Label) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO issue_labels (repo_id, number, label_id) VALUES (?, ?, ?)",
            (repo_id, number, label.id),
        )

    def remove_issue_label(self, repo_id: int, number: int, name: str) -> bool:
        cur = self._db.execute(
            "DELETE FROM issue_labels WHERE repo_id = ? AND number = ? AND label_id IN"
            " (SELECT id FROM labels WHERE repo_id = ? AND name = ?)",
            (repo_id, number, repo_id, name),
        )
        return cur.rowcount > 0

    def clear_issue_labels(self, repo_id: int, number: int) -> None:
        self._db.execute("DELETE FROM issue_labels WHERE repo_id = ? AND number = ?", (repo_id, number))

    # comments --------------------------------------------------------------------------------------

    def _comment(self, row: sqlite3.Row) -> Comment:
        return Comment(
            row["id"],
            row["repo_id"],
            row["number"],
            row["user_id"],
            row["body"],
            row["created_at"],
            row["updated_at"],
        )

    def insert_comment(self, repo_id: int, number: int, user_id: int, body: str) -> Comment:
        ts = now_iso()
        cur = self._db.execute(
            "INSERT INTO comments (repo_id, number, user_id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (repo_id, number, user_id, body, ts, ts),
        )
        row = self._db.execute("SELECT * FROM comments WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self._comment(row)

    def comments(self, repo_id: int, number: int, since: str | None = None) -> list[Comment]:
        sql = "SELECT * FROM comments WHERE repo_id = ? AND number = ?"
        args: tuple[object, ...] = (repo_id, number)
        if since:
            sql += " AND updated_at >= ?"
            args = (*args, since)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [self._comment(r) for r in rows]

    def count_comments(self, repo_id: int, number: int) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM comments WHERE repo_id = ? AND number = ?", (repo_id, number)
        ).fetchone()
        return int(row[0])

    # review requests -------------------------------------------------------------------------------

    def add_review_request(self, repo_id: int, number: int, kind: str, reviewer_id: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO review_requests (repo_id, number, kind, reviewer_id) VALUES (?, ?, ?, ?)",
            (repo_id, number, kind, reviewer_id),
        )

    def review_requests(self, repo_id: int, number: int) -> tuple[list[User], list[Team]]:
        rows = self._db.execute(
            "SELECT kind, reviewer_id FROM review_requests WHERE repo_id = ? AND number = ? ORDER BY rowid",
            (repo_id, number),
        ).fetchall()
        users = [u for u in (self.user_by_id(r[1]) for r in rows if r[0] == "user") if u is not None]
        teams = [t for t in (self.team_by_id(r[1]) for r in rows if r[0] == "team") if t is not None]
        return users, teams

    def remove_review_request(self, repo_id: int, number: int, kind: str, reviewer_id: int) -> None:
        self._db.execute(
            "DELETE FROM review_requests WHERE repo_id = ? AND number = ? AND kind = ? AND reviewer_id = ?",
            (repo_id, number, kind, reviewer_id),
        )

    # reviews ---------------------------------------------------------------------------------------

    @staticmethod
    def _review(row: sqlite3.Row) -> Review:
        return Review(*(row[k] for k in Review.__dataclass_fields__))

    def insert_review(self, repo_id: int, number: int, user_id: int, state: str, body: str, commit_id: str) -> Review:
        submitted = None if state == "PENDING" else now_iso()
        cur = self._db.execute(
            "INSERT INTO reviews (repo_id, number, user_id, state, body, commit_id, submitted_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (repo_id, number, user_id, state, body, commit_id, submitted),
        )
        return self.review(repo_id, number, int(cur.lastrowid or 0))  # type: ignore[return-value]

    def review(self, repo_id: int, number: int, review_id: int) -> Review | None:
        row = self._db.execute(
            "SELECT * FROM reviews WHERE repo_id = ? AND number = ? AND id = ?", (repo_id, number, review_id)
        ).fetchone()
        return self._review(row) if row else None

    def reviews(self, repo_id: int, number: int) -> list[Review]:
        """Every review of one pull request, oldest first (GitHub's order)."""
        rows = self._db.execute(
            "SELECT * FROM reviews WHERE repo_id = ? AND number = ? ORDER BY id", (repo_id, number)
        ).fetchall()
        return [self._review(r) for r in rows]

    def set_review_state(self, review: Review, state: str) -> Review:
        self._db.execute("UPDATE reviews SET state = ? WHERE id = ?", (state, review.id))
        return self.review(review.repo_id, review.number, review.id)  # type: ignore[return-value]
