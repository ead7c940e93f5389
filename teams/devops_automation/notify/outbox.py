"""The outbox's reads and writes: due deliveries, claiming one, recording its outcome, the feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from .. import tables
from ..store import Store, utc

STATUSES = ("pending", "sending", "sent", "dead")


@dataclass(frozen=True)
class Delivery:
    """One event for one channel: ``payload`` is :func:`~.events.payload_of`'s snapshot."""

    notification_id: str
    channel: str
    attempts: int
    kind: str
    request_id: str | None
    payload: dict[str, Any]


class Outbox:
    """The outbox tables of one store. Every method is one short transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def due(self, now: datetime, limit: int = 50) -> list[Delivery]:
        """Deliveries to try now: pending and due, or left ``sending`` by a process that died (its claim
        has expired). Oldest first."""
        d, n = tables.notification_deliveries.c, tables.notifications.c
        query = (
            select(d.notification_id, d.channel, d.attempts, n.kind, n.request_id, n.payload)
            .join(tables.notifications, n.id == d.notification_id)
            .where(d.status.in_(("pending", "sending")), d.next_attempt_at <= now)
            .order_by(d.next_attempt_at, n.created_at)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [Delivery(*row) for row in conn.execute(query)]

    def claim(self, delivery: Delivery, now: datetime, lease_seconds: float) -> bool:
        """Mark ``delivery`` as being sent by this process until ``now + lease_seconds``: False if another
        process claimed or finished it first (only one sender per delivery)."""
        d = tables.notification_deliveries.c
        with self.store.transaction() as conn:
            result = conn.execute(
                update(tables.notification_deliveries)
                .where(
                    d.notification_id == delivery.notification_id,
                    d.channel == delivery.channel,
                    d.attempts == delivery.attempts,
                    or_(d.status == "pending", and_(d.status == "sending", d.next_attempt_at <= now)),
                )
                .values(
                    status="sending",
                    attempts=delivery.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
            )
            return result.rowcount == 1

    def finish(
        self, delivery: Delivery, *, status: str, error: str | None = None, retry_at: datetime | None = None
    ) -> None:
        """Record the outcome of a claimed delivery: ``sent``, ``dead`` (given up), or ``pending`` again
        with ``retry_at``."""
        assert status in STATUSES
        d = tables.notification_deliveries.c
        now = datetime.now(UTC)
        with self.store.transaction() as conn:
            conn.execute(
                update(tables.notification_deliveries)
                .where(d.notification_id == delivery.notification_id, d.channel == delivery.channel)
                .values(status=status, last_error=error, next_attempt_at=retry_at or now, updated_at=now)
            )

    def feed(self, *, limit: int = 50, request_id: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` events (of one request), newest first, each with its deliveries:
        ``{"id", "kind", "request_id", "created_at", "payload", "deliveries": {channel: {...}}}``. This is
        the dashboard's feed."""
        n, d = tables.notifications.c, tables.notification_deliveries.c
        query = select(n.id, n.kind, n.request_id, n.created_at, n.payload).order_by(n.created_at.desc(), n.id.desc())
        if request_id is not None:
            query = query.where(n.request_id == request_id)
        with self.store.engine.connect() as conn:
            events = [
                {
                    "id": r[0],
                    "kind": r[1],
                    "request_id": r[2],
                    "created_at": utc(r[3]).isoformat(),
                    "payload": r[4],
                    "deliveries": {},
                }
                for r in conn.execute(query.limit(limit))
            ]
            by_id = {e["id"]: e for e in events}
            if by_id:
                rows = conn.execute(
                    select(d.notification_id, d.channel, d.status, d.attempts, d.last_error).where(
                        d.notification_id.in_(list(by_id))
                    )
                )
                for nid, channel, status, attempts, error in rows:
                    by_id[nid]["deliveries"][channel] = {"status": status, "attempts": attempts, "error": error}
        return events
