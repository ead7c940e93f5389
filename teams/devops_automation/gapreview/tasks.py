"""The unassigned-task table and the review's sightings: the store's part of the gap review."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from .. import tables
from ..store import Store, utc

MAX_OPEN = 200_000


class TaskStore:
    """Reads and writes of ``unassigned_tasks`` and ``gap_sightings`` (one short transaction each)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, *, source: str, summary: str, skills: list[str], urgency: str) -> dict[str, Any]:
        """Record one unassigned task (already validated by the caller). Returns its row."""
        row = {
            "id": "task-" + secrets.token_hex(6),
            "source": source,
            "summary": summary,
            "skills": skills,
            "urgency": urgency,
            "created_at": datetime.now(UTC),
        }
        with self.store.transaction() as conn:
            conn.execute(insert(tables.unassigned_tasks).values(**row))
        return row

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        """Bulk insert (seeding, benchmarks): rows as :meth:`add` makes them."""
        with self.store.transaction() as conn:
            conn.execute(insert(tables.unassigned_tasks), rows)

    def open_tasks(self, limit: int = MAX_OPEN) -> list[tuple[Any, ...]]:
        """Tasks no review has placed yet, oldest first: ``(id, source, summary, skills, urgency,
        created_at)`` tuples (``created_at`` naive on SQLite: pass it through :func:`~..store.utc`)."""
        c = tables.unassigned_tasks.c
        query = (
            select(c.id, c.source, c.summary, c.skills, c.urgency, c.created_at)
            .where(c.request_id.is_(None), c.team.is_(None))
            .order_by(c.created_at)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def assign(self, task_ids: Iterable[str], *, request_id: str | None = None, team: str | None = None) -> None:
        """Mark tasks as placed: on a submitted request, or on an existing team that covers them."""
        ids = list(task_ids)
        if not ids:
            return
        c = tables.unassigned_tasks.c
        with self.store.transaction() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(
                    update(tables.unassigned_tasks)
                    .where(c.id.in_(ids[start : start + 500]))
                    .values(request_id=request_id, team=team)
                )

    def sightings(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Earlier sightings by key: ``{key: {"first_seen", "last_seen", "times_seen", "request_id"}}``."""
        wanted = list(set(keys))
        c = tables.gap_sightings.c
        found: dict[str, dict[str, Any]] = {}
        with self.store.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                query = select(c.key, c.first_seen, c.last_seen, c.times_seen, c.request_id).where(
                    c.key.in_(wanted[start : start + 500])
                )
                for row in conn.execute(query):
                    found[row.key] = {
                        "first_seen": utc(row.first_seen),
                        "last_seen": utc(row.last_seen),
                        "times_seen": row.times_seen,
                        "request_id": row.request_id,
                    }
        return found

    def record_sightings(self, seen: dict[str, tuple[str, str | None]], known: dict[str, dict[str, Any]]) -> None:
        """Upsert ``{key: (label, request_id or None)}`` in one transaction (``known``: :meth:`sightings`)."""
        now = datetime.now(UTC)
        c = tables.gap_sightings.c
        new = [
            {"key": k, "label": label[:500], "first_seen": now, "last_seen": now, "times_seen": 1, "request_id": rid}
            for k, (label, rid) in seen.items()
            if k not in known
        ]
        with self.store.transaction() as conn:
            if new:
                conn.execute(insert(tables.gap_sightings), new)
            for key, (_label, rid) in seen.items():
                if key in known:
                    values: dict[str, Any] = {"last_seen": now, "times_seen": known[key]["times_seen"] + 1}
                    if rid is not None:
                        values["request_id"] = rid
                    conn.execute(update(tables.gap_sightings).where(c.key == key).values(**values))
