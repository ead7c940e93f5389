"""The state store: requests, the audit log, the rate-limit ledger and the store-backed pull requests.

SQLite under the state directory by default, PostgreSQL when ``DATABASE_URL`` says so. The schema is
owned by Alembic; :func:`open_store` brings any database to the newest revision before use.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.sql.expression import Executable

from . import tables
from .errors import ConfigurationError, DevopsCrewError, NotFound
from .models import ActorRef, CapabilityGap, RequestState, TeamCreationRequest, check_transition, skills_key
from .notify.events import EventKind, kind_for, payload_of

HEAD_REVISION = "0013"
_WRITE = "devops_crew_write"
#: What a request id can look like (``req-`` and 12 hex digits when this store makes one).
REQUEST_ID = re.compile(r"req-[A-Za-z0-9_-]{1,36}")
GENESIS_HASH = "0" * 64


class StoreError(DevopsCrewError):
    """The store's data is not what the code expects (a bug or a concurrent deletion)."""


class NameTaken(StoreError):
    """Another open request already holds a slot for the same new team name."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"request {holder} already proposes this team")
        self.holder = holder


def normalize_url(url: str) -> str:
    """Map the common PostgreSQL spellings to the psycopg 3 driver the package ships."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        # Another process may be switching it at this very moment; WAL is a property of the file.
        with suppress(sqlite3.OperationalError):
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two processes never interleave a
        # read-then-write (rate-limit check, audit chain), they queue.
        # Only write transactions (Store._write) take it; reads begin deferred and never queue behind writers.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _audit_row(row: Any) -> AuditRow:
    values = row._asdict()
    values["ts"] = utc(values["ts"])
    return AuditRow(**values)


def open_store(url: str) -> Store:
    """The store at ``url``, migrated to the newest schema. Raises ConfigurationError (naming the URL
    without its password) when the URL is not one SQLAlchemy can use or the database does not answer."""
    url = normalize_url(url)
    try:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = _sqlite_engine(url)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        reason = f"is not a database URL SQLAlchemy can use: {exc}"
        raise ConfigurationError(f"DATABASE_URL {_shown(url)} {reason}") from None
    store = Store(engine)
    try:
        store.migrate()
    except OperationalError as exc:
        engine.dispose()
        reason = " ".join(str(exc.orig or exc).split())[:300]
        raise ConfigurationError(f"cannot reach the database at {_shown(url)}: {reason}") from None
    return store


def _shown(url: str) -> str:
    """``url`` with any password masked, for an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url[:80])


class AuditCheckpoint(NamedTuple):
    """The last point of the audit chain a walk found intact: row ``verified_seq`` with hash
    ``verified_hash``, recorded by the ``audit.checkpoint`` row ``row_seq``; ``mac`` is the HMAC-SHA256
    (hex) of the first two under the configured audit key, None without one."""

    verified_seq: int
    verified_hash: str
    row_seq: int
    mac: str | None


@dataclass(frozen=True)
class AuditRow:
    seq: int
    ts: datetime
    request_id: str | None
    action: str
    phase: str
    target: str
    detail: str
    prev_hash: str
    hash: str


#: :meth:`Store.save_request`'s statements, built once (as the audit chain's below).
_READ_STATE = select(tables.requests.c.state).where(tables.requests.c.id == bindparam("request_id"))
_SAVE_REQUEST = (
    update(tables.requests)
    .where(tables.requests.c.id == bindparam("request_id"))
    .values(
        state=bindparam("new_state"),
        payload=bindparam("new_payload"),
        updated_at=bindparam("new_updated_at"),
        team=bindparam("new_team"),
        skills_key=bindparam("new_skills_key"),
        withdrawn=bindparam("new_withdrawn"),
    )
)
#: The audit chain's statements (:meth:`Store.append_audit`), built once: each row binds its values.
_CHAIN_LOCK = text("SELECT pg_advisory_xact_lock(7302)")
_READ_HEAD = select(tables.audit_head.c.seq, tables.audit_head.c.hash).where(tables.audit_head.c.id == 1)
_APPEND = insert(tables.audit_log)
_MOVE_HEAD = (
    update(tables.audit_head)
    .where(tables.audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_APPEND_AND_MOVE_HEAD = _MOVE_HEAD.add_cte(
    insert(tables.audit_log).values({c.name: bindparam(f"row_{c.name}") for c in tables.audit_log.c}).cte("appended")
)


class Store:
    """All persistence. Every method runs in its own transaction unless given a connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: The notification channels configured (set by the app's wiring): each event gets one delivery
        #: row per channel, written in the transaction that saves the state change.
        self.notification_channels: tuple[str, ...] = ()
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._writers: threading.RLock | contextlib.nullcontext[None] = (
            threading.RLock() if database else contextlib.nullcontext()
        )
        self._lock_dir = Path(database).parent / "locks" if database else None

    @contextmanager
    def request_lock(self, request_id: str, timeout: float = 600) -> Iterator[None]:
        """Only one process at a time drives a given request: a PostgreSQL advisory lock, or a file
        lock beside the SQLite database. Held across the whole run, released on exit or crash."""
        if self.dialect == "postgresql":
            key = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big", signed=True)
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
            return
        from filelock import FileLock

        if not REQUEST_ID.fullmatch(request_id):  # the id names a file: never a path
            raise NotFound(f"no request {request_id[:60]!r}")
        assert self._lock_dir is not None
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self._lock_dir / f"{request_id}.lock"), timeout=timeout):
            yield

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction: on SQLite ``BEGIN IMMEDIATE`` (the write lock up front, so two writers queue
        instead of failing a read-then-write), on PostgreSQL a plain transaction."""
        # Writers of this process queue on a lock instead of on SQLite's busy handler, which sleeps and
        # backs off (tens of ms each time) while another thread of the same server holds the file.
        with self._writers, self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def execute_write(self, statement: Executable, parameters: dict[str, Any] | None = None) -> None:
        """Run one statement (with ``parameters``) in a write transaction of its own, queued with this
        process's other writers (the A2A task store's saves on SQLite). Raises what SQLAlchemy raises."""
        with self._write() as conn:
            conn.execute(statement, parameters)

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction for the store's companions (the notification outbox, the gap review)."""
        return self._write()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------------
    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self) -> None:
        """Upgrade to the newest schema. Alembic is imported only when there is work to do."""
        if self.current_revision() == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7301)"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    # -- requests -----------------------------------------------------------------------------
    def create_request(
        self,
        gap: CapabilityGap,
        *,
        requester: ActorRef | None = None,
        received: Callable[[Connection, TeamCreationRequest], None] | None = None,
    ) -> tuple[TeamCreationRequest, bool]:
        """Insert a request for ``gap`` asked for by ``requester``; if one exists for the same gap id,
        return it instead (with ``False``). ``received(conn, request)`` runs inside the insert's transaction
        for a new request only (its ``request.received`` audit row: :meth:`Auditor.event_within`), so the
        request and its audit row commit together, in one write instead of two (an acknowledgement's
        whole cost in the store, bench/intake.py)."""
        request = TeamCreationRequest(id="req-" + secrets.token_hex(6), gap=gap, requester=requester)
        try:
            with self._write() as conn:
                conn.execute(
                    insert(tables.requests).values(
                        id=request.id,
                        gap_id=gap.id,
                        state=request.state.value,
                        payload=request.model_dump(mode="json"),
                        created_at=request.created_at,
                        updated_at=request.updated_at,
                        skills_key=skills_key(gap.required_skills),
                    )
                )
                if received is not None:
                    received(conn, request)
            return request, True
        except IntegrityError:
            existing = self.get_request_by_gap(gap.id or "")
            if existing is None:  # pragma: no cover - the row we collided with vanished
                raise
            return existing, False

    def _load(self, payload: dict[str, Any]) -> TeamCreationRequest:
        return TeamCreationRequest.model_validate(payload)

    def get_request(self, request_id: str) -> TeamCreationRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tables.requests.c.payload).where(tables.requests.c.id == request_id)).first()
        return self._load(row[0]) if row else None

    def require_request(self, request_id: str) -> TeamCreationRequest:
        """The stored request. Raises :class:`~devops_automation.errors.NotFound` (also for an id that
        cannot be one: ids reach here from URLs and chat messages)."""
        request = self.get_request(request_id) if REQUEST_ID.fullmatch(request_id) else None
        if request is None:
            raise NotFound(f"no request {request_id[:60]!r}; `devops-crew status` lists them")
        return request

    def get_request_by_gap(self, gap_id: str) -> TeamCreationRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tables.requests.c.payload).where(tables.requests.c.gap_id == gap_id)).first()
        return self._load(row[0]) if row else None

    def list_requests(
        self,
        limit: int = 50,
        states: set[RequestState] | None = None,
        *,
        team: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[TeamCreationRequest]:
        """Newest first, at most ``limit``; optionally only ``states`` and one proposed ``team``.
        ``before`` is a keyset cursor, the (created_at, id) of the last row of the previous page: each
        page is one indexed range read, however deep (no OFFSET)."""
        c = tables.requests.c
        query = select(c.payload).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        if states:
            query = query.where(c.state.in_([s.value for s in states]))
        if team is not None:
            query = query.where(c.team == team)
        if before is not None:
            at, last_id = before
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < last_id)))
        with self.engine.connect() as conn:
            return [self._load(row[0]) for row in conn.execute(query)]

    def count_by_state(self) -> dict[str, int]:
        """``{state: number of requests}`` (one grouped, indexed query; for metrics)."""
        c = tables.requests.c
        with self.engine.connect() as conn:
            return {state: n for state, n in conn.execute(select(c.state, func.count()).group_by(c.state))}

    def save_request(
        self,
        request: TeamCreationRequest,
        new_state: RequestState | None = None,
        *,
        event: EventKind | None = None,
    ) -> TeamCreationRequest:
        """Persist ``request``; with ``new_state``, check the transition against the stored state. A
        transition that is a notification event (:func:`~.notify.events.kind_for`), or an explicit
        ``event``, is written to the outbox in the same transaction: saved once, told once."""
        with self._write() as conn:
            stored = conn.execute(_READ_STATE, {"request_id": request.id}).scalar()
            if stored is None:
                raise StoreError(f"request {request.id} does not exist")
            before = RequestState(stored)
            if new_state is not None:
                check_transition(before, new_state)
                request.state = new_state
            request.updated_at = datetime.now(UTC)
            conn.execute(
                _SAVE_REQUEST,
                {
                    "request_id": request.id,
                    "new_state": request.state.value,
                    "new_payload": request.model_dump(mode="json"),
                    "new_updated_at": request.updated_at,
                    "new_team": request.spec.name if request.spec else None,
                    "new_skills_key": skills_key(request.gap.required_skills),
                    "new_withdrawn": request.withdrawn,
                },
            )
            kind = event or kind_for(before, request.state, request)
            if kind is not None:
                self._add_notification(conn, kind, request)
        return request

    def _add_notification(self, conn: Connection, kind: EventKind, request: TeamCreationRequest) -> None:
        now = datetime.now(UTC)
        notification_id = "ntf-" + secrets.token_hex(10)
        conn.execute(
            insert(tables.notifications).values(
                id=notification_id,
                request_id=request.id,
                kind=kind.value,
                created_at=now,
                payload=payload_of(kind, request),
            )
        )
        for channel in self.notification_channels:
            conn.execute(
                insert(tables.notification_deliveries).values(
                    notification_id=notification_id,
                    channel=channel,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )

    def rejected_like(self, team: str | None, skills: list[str]) -> TeamCreationRequest | None:
        """The newest rejected request for the same ``team`` name or the same set of ``skills``
        (:func:`~.models.skills_key`), or None: two indexed queries (the ``previously-rejected`` rule).
        A requester's own withdrawal is not a rejection: it is left out by the query (the ``withdrawn``
        column), so no number of withdrawals hides a reviewer's no."""
        c = tables.requests.c
        found: list[TeamCreationRequest] = []
        key = skills_key(skills)
        with self.engine.connect() as conn:
            for column, value in ((c.team, team), (c.skills_key, key)):
                if not value:
                    continue
                query = (
                    select(c.payload)
                    .where(column == value, c.state == RequestState.rejected.value, c.withdrawn.is_(False))
                    .order_by(c.updated_at.desc())
                    .limit(1)
                )
                row = conn.execute(query).first()
                if row:
                    found.append(self._load(row[0]))
        return max(found, key=lambda r: r.updated_at) if found else None

    def open_with_skills(self, skills: list[str], states: set[RequestState]) -> list[TeamCreationRequest]:
        """Requests in ``states`` whose gap asks for exactly these skills (indexed; the gap review)."""
        key = skills_key(skills)
        if key is None:
            return []
        c = tables.requests.c
        query = select(c.payload).where(c.skills_key == key, c.state.in_([s.value for s in states])).limit(10)
        with self.engine.connect() as conn:
            return [self._load(row[0]) for row in conn.execute(query)]

    def request_index(
        self, *, gap_ids: list[str], keys: list[str]
    ) -> list[tuple[str, str, str | None, str, bool]]:
        """``(id, gap_id, skills_key, state, withdrawn)`` of every request with one of ``gap_ids`` or ``keys``
        (:func:`~.models.skills_key`): a few indexed ``IN`` queries for a whole gap review, not one per gap."""
        c = tables.requests.c
        found: dict[str, tuple[str, str, str | None, str, bool]] = {}
        with self.engine.connect() as conn:
            for column, values in ((c.gap_id, gap_ids), (c.skills_key, keys)):
                unique = sorted(set(values))
                for start in range(0, len(unique), 500):
                    chunk = unique[start : start + 500]
                    query = select(c.id, c.gap_id, c.skills_key, c.state, c.withdrawn).where(column.in_(chunk))
                    for row in conn.execute(query):
                        found[row.id] = (row.id, row.gap_id, row.skills_key, row.state, bool(row.withdrawn))
        return list(found.values())

    # -- leases -------------------------------------------------------------------------------
    def try_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        """Take (or renew) the lease ``name`` for ``holder`` for ``ttl_seconds``: True if this holder has it
        now. Only one holder at a time across processes and replicas (one serialised write); an expired
        lease is free. Used so two replicas never run the scheduled gap review at once."""
        now = datetime.now(UTC)
        until = now + timedelta(seconds=ttl_seconds)
        c = tables.leases.c
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7304)"))
            row = conn.execute(select(c.holder, c.expires_at).where(c.name == name)).first()
            if row is None:
                conn.execute(insert(tables.leases).values(name=name, holder=holder, expires_at=until))
                return True
            if row[0] != holder and utc(row[1]) > now:
                return False
            conn.execute(update(tables.leases).where(c.name == name).values(holder=holder, expires_at=until))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease back early (only its holder can)."""
        c = tables.leases.c
        with self._write() as conn:
            conn.execute(delete(tables.leases).where(c.name == name, c.holder == holder))

    # -- audit log ----------------------------------------------------------------------------
    def append_audit(
        self,
        *,
        request_id: str | None,
        action: str,
        phase: str,
        target: str,
        detail: str,
        hasher: Any,
        conn: Connection | None = None,
    ) -> AuditRow:
        """Append one row, chained to the previous one. ``hasher`` computes a row's hash. With ``conn`` (a
        write transaction of :meth:`transaction`), inside that transaction; else in its own."""
        if conn is not None:
            return self._append_audit(conn, request_id, action, phase, target, detail, hasher)
        with self._write() as conn:
            return self._append_audit(conn, request_id, action, phase, target, detail, hasher)

    def _append_audit(
        self, conn: Connection, request_id: str | None, action: str, phase: str, target: str, detail: str, hasher: Any
    ) -> AuditRow:
        """Chain a row to the recorded head (``audit_head``: seq and hash of the last row written) and move
        the head, in ``conn``'s transaction. Writers queue on the chain's lock (PostgreSQL: an advisory
        lock, which every version of this program takes, so replicas of two versions side by side during a
        rolling update never chain to the same row; SQLite: the write lock of ``BEGIN IMMEDIATE``). Under
        the lock, PostgreSQL reads the head and then inserts the row and moves the head in one statement
        (a data-modifying ``WITH``): three round trips instead of four, since every audit row of the
        process passes through that lock (an acknowledgement's too, bench/intake.py).

        Without a head row the log's last row is chained to: for an empty log the head is created; for a
        log that has rows but lost its head (only someone with database access removes it: migration 0003
        made one for every log) the head is left missing, not rebuilt over the evidence."""
        head = tables.audit_head
        postgres = self.dialect == "postgresql"
        if postgres:
            conn.execute(_CHAIN_LOCK)
        last = conn.execute(_READ_HEAD).first()
        headless = last is None
        if headless:
            log = tables.audit_log
            last = conn.execute(select(log.c.seq, log.c.hash).order_by(log.c.seq.desc()).limit(1)).first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        ts = datetime.now(UTC)
        row = AuditRow(seq, ts, request_id, action, phase, target, detail, prev_hash, "")
        row = AuditRow(**{**row.__dict__, "hash": hasher(row)})
        if headless:
            conn.execute(insert(tables.audit_log), row.__dict__)
            if last is None:  # the first row of an empty log
                conn.execute(insert(head).values(id=1, seq=row.seq, hash=row.hash))
            return row
        # Statements built once, values bound: building them per row (values() of nine columns, its cache
        # key) cost more than the transaction's commit, and every audit row of the process goes through here.
        moved = {"new_seq": row.seq, "new_hash": row.hash}
        if postgres:  # one statement: a data-modifying WITH runs whether or not the UPDATE reads it
            conn.execute(_APPEND_AND_MOVE_HEAD, {**{f"row_{k}": v for k, v in row.__dict__.items()}, **moved})
        else:
            conn.execute(_APPEND, row.__dict__)
            conn.execute(_MOVE_HEAD, moved)
        return row

    def record_audit_checkpoint(
        self, *, verified: tuple[int, str], target: str, detail: str, hasher: Any, mac: str | None = None
    ) -> AuditCheckpoint:
        """In one transaction: append the ``audit.checkpoint`` row that records ``verified`` (seq, hash)
        in the chain itself (``detail``), and make it the checkpoint, with ``mac`` (its HMAC, hex, or None
        without a key)."""
        with self._write() as conn:
            row = self._append_audit(conn, None, "audit.checkpoint", "recorded", target, detail, hasher)
            point = AuditCheckpoint(verified[0], verified[1], row.seq, mac)
            conn.execute(delete(tables.audit_checkpoint))
            conn.execute(insert(tables.audit_checkpoint).values(id=1, **point._asdict()))
            return point

    def audit_checkpoint(self) -> AuditCheckpoint | None:
        """The last verified point of the chain (see :meth:`record_audit_checkpoint`), None before any."""
        c = tables.audit_checkpoint.c
        with self.engine.connect() as conn:
            row = conn.execute(select(c.verified_seq, c.verified_hash, c.row_seq, c.mac)).first()
        return AuditCheckpoint(*row) if row else None

    def audit_row(self, seq: int) -> AuditRow | None:
        """The audit row numbered ``seq`` (a primary-key read), None if there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tables.audit_log).where(tables.audit_log.c.seq == seq)).first()
        return _audit_row(row) if row is not None else None

    def iter_audit_range(self, after: int = 0, through: int | None = None, batch: int = 5000) -> Iterator[AuditRow]:
        """Audit rows ``after < seq <= through`` (no upper bound when None), oldest first, read in keyset
        batches of ``batch`` rows on the primary key: constant memory, and no transaction is held open
        between batches however long the walk."""
        c = tables.audit_log.c
        last = after
        while True:
            query = select(tables.audit_log).where(c.seq > last).order_by(c.seq).limit(batch)
            if through is not None:
                query = query.where(c.seq <= through)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield _audit_row(row)
            if len(rows) < batch:
                return
            last = rows[-1].seq

    def audit_head(self) -> tuple[int, str] | None:
        """The last (seq, hash) written, kept apart from the rows to anchor the chain's end."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tables.audit_head.c.seq, tables.audit_head.c.hash)).first()
        return (row[0], row[1]) if row else None

    def iter_audit(self, request_id: str | None = None) -> Iterator[AuditRow]:
        """Every audit row (of one request), oldest first, streamed in batches (a server-side cursor on
        PostgreSQL): memory stays constant however long the log is."""
        query = select(tables.audit_log).order_by(tables.audit_log.c.seq)
        if request_id is not None:
            query = query.where(tables.audit_log.c.request_id == request_id)
        with self.engine.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=1000).execute(query):
                yield _audit_row(row)

    def tail_audit(self, request_id: str | None = None, limit: int = 50) -> list[AuditRow]:
        """The last ``limit`` audit rows (of one request), oldest first: one indexed read of ``limit``
        rows, not the whole log."""
        c = tables.audit_log.c
        query = select(tables.audit_log).order_by(c.seq.desc()).limit(limit)
        if request_id is not None:
            query = query.where(c.request_id == request_id)
        with self.engine.connect() as conn:
            return [_audit_row(row) for row in reversed(conn.execute(query).all())]

    # -- web sessions -------------------------------------------------------------------------
    def create_session(self, user_name: str, ttl_seconds: int) -> str:
        """A new session for ``user_name``: returns its id (32 random bytes, URL-safe); only its SHA-256
        is stored. Expired sessions are purged on the way."""
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._write() as conn:
            conn.execute(delete(tables.web_sessions).where(tables.web_sessions.c.expires_at < now))
            conn.execute(
                insert(tables.web_sessions).values(
                    id_hash=_session_hash(session_id),
                    user_name=user_name,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_seconds),
                )
            )
        return session_id

    def session_user(self, session_id: str) -> str | None:
        """The user of a live session, or None (unknown, ended or expired)."""
        c = tables.web_sessions.c
        with self.engine.connect() as conn:
            row = conn.execute(select(c.user_name, c.expires_at).where(c.id_hash == _session_hash(session_id))).first()
        if row is None or utc(row[1]) <= datetime.now(UTC):
            return None
        return str(row[0])

    def end_session(self, session_id: str) -> None:
        with self._write() as conn:
            conn.execute(delete(tables.web_sessions).where(tables.web_sessions.c.id_hash == _session_hash(session_id)))

    # -- rate-limit ledger --------------------------------------------------------------------
    def consume_slot(
        self, request_id: str, team_name: str, *, overridden: bool, check: Any = None, record: bool = True
    ) -> None:
        """Record that ``request_id`` used a slot for ``team_name``. Inside one serialised transaction:
        :class:`NameTaken` if another open request holds the name, then ``check(ledger)`` may veto, so
        concurrent processes can neither both take the last slot nor both claim one new team.
        ``record=False`` makes every check and records nothing (a dry run)."""
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7303)"))
            already = conn.execute(
                select(tables.rate_ledger.c.id).where(tables.rate_ledger.c.request_id == request_id)
            ).first()
            if already:
                return
            ledger, requests = tables.rate_ledger, tables.requests
            holder = conn.execute(
                select(ledger.c.request_id)
                .join(requests, requests.c.id == ledger.c.request_id)
                .where(
                    ledger.c.team_name == team_name,
                    ledger.c.request_id != request_id,
                    requests.c.state.not_in(["rejected", "merged", "rolled_back"]),
                )
            ).first()
            if holder:
                raise NameTaken(holder[0])
            if check is not None:
                check(self._ledger_rows(conn))
            if not record:
                return
            conn.execute(
                insert(tables.rate_ledger).values(
                    request_id=request_id,
                    team_name=team_name,
                    consumed_at=datetime.now(UTC),
                    overridden=overridden,
                )
            )

    def _ledger_rows(self, conn: Connection) -> list[datetime]:
        """When each slot was used, oldest first: overridden ones too (an override lifts the limit for its
        own request; the team it made still counts for every later one)."""
        rows = conn.execute(select(tables.rate_ledger.c.consumed_at).order_by(tables.rate_ledger.c.consumed_at))
        return [utc(r[0]) for r in rows]

    def ledger(self) -> list[datetime]:
        with self.engine.connect() as conn:
            return self._ledger_rows(conn)

    def release_slot(self, request_id: str) -> None:
        with self._write() as conn:
            conn.execute(tables.rate_ledger.delete().where(tables.rate_ledger.c.request_id == request_id))
