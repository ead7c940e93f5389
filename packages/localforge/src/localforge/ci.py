"""The forge's records of CI and access: commit statuses, check runs, branch protections, forge admins.

A companion of :class:`~.state.ForgeState`: its tables live in the same SQLite file and every method runs
inside the same forge-wide transaction (``state.transaction()``). GitHub's rules over these records (the
combined state, required checks, who may update a protected branch) are in :mod:`.rules`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from .state import ForgeState, now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id),
    sha TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('error', 'failure', 'pending', 'success')),
    context TEXT NOT NULL,
    description TEXT,
    target_url TEXT,
    creator_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS statuses_by_commit ON statuses (repo_id, sha, id);
CREATE TABLE IF NOT EXISTS check_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos(id),
    head_sha TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    conclusion TEXT,
    details_url TEXT,
    external_id TEXT NOT NULL DEFAULT '',
    started_at TEXT,
    completed_at TEXT,
    title TEXT,
    summary TEXT,
    text TEXT
);
CREATE INDEX IF NOT EXISTS check_runs_by_commit ON check_runs (repo_id, head_sha, id);
CREATE TABLE IF NOT EXISTS branch_protections (
    repo_id INTEGER NOT NULL REFERENCES repos(id),
    branch TEXT NOT NULL,
    required_contexts TEXT NOT NULL DEFAULT '[]',
    enforce_admins INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    PRIMARY KEY (repo_id, branch)
);
CREATE TABLE IF NOT EXISTS forge_admins (
    user_id INTEGER PRIMARY KEY REFERENCES users(id)
);
"""

# Columns added to branch_protections after its first release, with their defaults for older files: the
# protection of an existing forge keeps its meaning (pull requests required, no review, no force push).
PROTECTION_COLUMNS = {
    "require_pull_request": "INTEGER NOT NULL DEFAULT 1",
    "required_approving_review_count": "INTEGER NOT NULL DEFAULT 0",
    "dismiss_stale_reviews": "INTEGER NOT NULL DEFAULT 0",
    "allow_force_pushes": "INTEGER NOT NULL DEFAULT 0",
    "allow_deletions": "INTEGER NOT NULL DEFAULT 0",
}

STATUS_STATES = ("error", "failure", "pending", "success")
CHECK_STATUSES = ("queued", "in_progress", "completed")
CHECK_CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")


@dataclass(frozen=True)
class Status:
    id: int
    repo_id: int
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator_id: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class CheckRun:
    id: int
    repo_id: int
    head_sha: str
    name: str
    status: str
    conclusion: str | None
    details_url: str | None
    external_id: str
    started_at: str | None
    completed_at: str | None
    title: str | None
    summary: str | None
    text: str | None


@dataclass(frozen=True)
class Protection:
    """A protected branch, with GitHub's classic protection rules.

    ``require_pull_request``: changes only through pull requests, which need
    ``required_approving_review_count`` approvals from users other than the author (stale ones, given on an
    older head, do not count when ``dismiss_stale_reviews``); ``required_contexts`` must have succeeded on
    the head. Force pushes and deletion are refused unless allowed. Admins may bypass the pull request
    rules unless ``enforce_admins``."""

    repo_id: int
    branch: str
    required_contexts: tuple[str, ...]
    enforce_admins: bool
    require_pull_request: bool = True
    required_approving_review_count: int = 0
    dismiss_stale_reviews: bool = False
    allow_force_pushes: bool = False
    allow_deletions: bool = False


class CiStore:
    """Typed access to the CI and access tables; call every method inside ``state.transaction()``."""

    _CHECK_COLUMNS = frozenset(
        {"name", "status", "conclusion", "details_url", "external_id", "started_at", "completed_at", "title"}
        | {"summary", "text"}
    )

    def __init__(self, state: ForgeState) -> None:
        state.add_schema(SCHEMA)
        state.add_columns("branch_protections", PROTECTION_COLUMNS)
        self.state = state

    # commit statuses -------------------------------------------------------------------------------

    @staticmethod
    def _status(row: sqlite3.Row) -> Status:
        return Status(*(row[k] for k in Status.__dataclass_fields__))

    def insert_status(
        self,
        repo_id: int,
        sha: str,
        state: str,
        context: str,
        description: str | None,
        target_url: str | None,
        creator_id: int,
    ) -> Status:
        ts = now_iso()
        cur = self.state.execute(
            "INSERT INTO statuses (repo_id, sha, state, context, description, target_url, creator_id, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (repo_id, sha, state, context, description, target_url, creator_id, ts, ts),
        )
        row = self.state.execute("SELECT * FROM statuses WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self._status(row)

    def statuses(self, repo_id: int, sha: str) -> list[Status]:
        """Every status of one commit, newest first (GitHub's order)."""
        rows = self.state.execute(
            "SELECT * FROM statuses WHERE repo_id = ? AND sha = ? ORDER BY id DESC", (repo_id, sha)
        ).fetchall()
        return [self._status(r) for r in rows]

    # check runs ------------------------------------------------------------------------------------

    @staticmethod
    def _check_run(row: sqlite3.Row) -> CheckRun:
        return CheckRun(*(row[k] for k in CheckRun.__dataclass_fields__))

    def insert_check_run(self, repo_id: int, head_sha: str, name: str, **fields: object) -> CheckRun:
        unknown = set(fields) - self._CHECK_COLUMNS
        if unknown:
            raise ValueError(f"unknown check run columns: {sorted(unknown)}")
        values = {"repo_id": repo_id, "head_sha": head_sha, "name": name, "status": "queued", **fields}
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.state.execute(
            f"INSERT INTO check_runs ({columns}) VALUES ({marks})",  # noqa: S608 - names from a fixed set
            tuple(values.values()),
        )
        return self.check_run(repo_id, int(cur.lastrowid or 0))  # type: ignore[return-value]

    def update_check_run(self, run: CheckRun, **fields: object) -> CheckRun:
        unknown = set(fields) - self._CHECK_COLUMNS
        if unknown:
            raise ValueError(f"unknown check run columns: {sorted(unknown)}")
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            self.state.execute(
                f"UPDATE check_runs SET {assignments} WHERE id = ?",  # noqa: S608 - names from a fixed set
                (*fields.values(), run.id),
            )
        return self.check_run(run.repo_id, run.id)  # type: ignore[return-value]

    def check_run(self, repo_id: int, run_id: int) -> CheckRun | None:
        row = self.state.execute("SELECT * FROM check_runs WHERE repo_id = ? AND id = ?", (repo_id, run_id)).fetchone()
        return self._check_run(row) if row else None

    def check_runs(self, repo_id: int, sha: str) -> list[CheckRun]:
        """Every check run of one commit, newest first."""
        rows = self.state.execute(
            "SELECT * FROM check_runs WHERE repo_id = ? AND head_sha = ? ORDER BY id DESC", (repo_id, sha)
        ).fetchall()
        return [self._check_run(r) for r in rows]

    # branch protection -----------------------------------------------------------------------------

    def protect(
        self,
        repo_id: int,
        branch: str,
        required_contexts: list[str],
        enforce_admins: bool,
        *,
        require_pull_request: bool = True,
        required_approving_review_count: int = 0,
        dismiss_stale_reviews: bool = False,
        allow_force_pushes: bool = False,
        allow_deletions: bool = False,
    ) -> Protection:
        """Protect ``branch`` (or replace its rules); see :class:`Protection`."""
        self.state.execute(
            "INSERT INTO branch_protections (repo_id, branch, required_contexts, enforce_admins, created_at,"
            " require_pull_request, required_approving_review_count, dismiss_stale_reviews, allow_force_pushes,"
            " allow_deletions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo_id, branch) DO UPDATE SET"
            " required_contexts = excluded.required_contexts, enforce_admins = excluded.enforce_admins,"
            " require_pull_request = excluded.require_pull_request,"
            " required_approving_review_count = excluded.required_approving_review_count,"
            " dismiss_stale_reviews = excluded.dismiss_stale_reviews,"
            " allow_force_pushes = excluded.allow_force_pushes, allow_deletions = excluded.allow_deletions",
            (
                repo_id,
                branch,
                json.dumps(list(dict.fromkeys(required_contexts))),
                int(enforce_admins),
                now_iso(),
                int(require_pull_request),
                int(required_approving_review_count),
                int(dismiss_stale_reviews),
                int(allow_force_pushes),
                int(allow_deletions),
            ),
        )
        return self.protection(repo_id, branch)  # type: ignore[return-value]

    def unprotect(self, repo_id: int, branch: str) -> bool:
        cur = self.state.execute("DELETE FROM branch_protections WHERE repo_id = ? AND branch = ?", (repo_id, branch))
        return cur.rowcount > 0

    @staticmethod
    def _protection(row: sqlite3.Row) -> Protection:
        contexts = tuple(str(c) for c in json.loads(row["required_contexts"]))
        return Protection(
            row["repo_id"],
            row["branch"],
            contexts,
            bool(row["enforce_admins"]),
            require_pull_request=bool(row["require_pull_request"]),
            required_approving_review_count=int(row["required_approving_review_count"]),
            dismiss_stale_reviews=bool(row["dismiss_stale_reviews"]),
            allow_force_pushes=bool(row["allow_force_pushes"]),
            allow_deletions=bool(row["allow_deletions"]),
        )

    def protection(self, repo_id: int, branch: str) -> Protection | None:
        row = self.state.execute(
            "SELECT * FROM branch_protections WHERE repo_id = ? AND branch = ?", (repo_id, branch)
        ).fetchone()
        return self._protection(row) if row else None

    def protections(self, repo_id: int) -> dict[str, Protection]:
        rows = self.state.execute("SELECT * FROM branch_protections WHERE repo_id = ?", (repo_id,)).fetchall()
        return {r["branch"]: self._protection(r) for r in rows}

    # forge admins ----------------------------------------------------------------------------------

    def set_forge_admin(self, user_id: int, admin: bool) -> None:
        """An admin of the forge administers every repository on it (as an organisation owner would)."""
        if admin:
            self.state.execute("INSERT OR IGNORE INTO forge_admins (user_id) VALUES (?)", (user_id,))
        else:
            self.state.execute("DELETE FROM forge_admins WHERE user_id = ?", (user_id,))

    def is_forge_admin(self, user_id: int) -> bool:
        row = self.state.execute("SELECT 1 FROM forge_admins WHERE user_id = ?", (user_id,)).fetchone()
        return row is not None
