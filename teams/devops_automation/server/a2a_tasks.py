"""Where A2A tasks live: a2a-sdk's ``DatabaseTaskStore`` over the state store's own database.

The table is ``a2a_tasks``, with exactly the columns of a2a-sdk's ``TaskMixin`` (``a2a/server/models.py``),
created by the Alembic migration 0005 like every other table (never by ``create_all``). Every replica and
every restart sees the same tasks, so ``tasks/get`` answers wherever it lands.

A task names its request in ``metadata["request_id"]``. The request is the truth; a task is its view for
one A2A caller, and can always be brought up to date from it (:func:`advanced`, :meth:`RequestTaskStore.get`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.models import create_task_model
from a2a.server.tasks import DatabaseTaskStore
from a2a.types import Message, Part, Role, Task, TaskState, TaskStatus
from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from ..errors import ConfigurationError

log = logging.getLogger("devops_crew.server.a2a")

TABLE = "a2a_tasks"
#: Task states that may still change: the start-up hook and ``tasks/get`` bring these up to date.
OPEN_STATES = frozenset({TaskState.submitted, TaskState.working, TaskState.input_required})
#: Progress (``working`` after ``working``) of one task is written at most this often (seconds).
COALESCE_SECONDS = 0.5
#: Entries of tasks last written as ``working`` kept before the stale ones are dropped.
PRUNE_AFTER = 1024
#: How long a SQLite writer waits for the lock before giving up, as the synchronous store does.
SQLITE_BUSY_SECONDS = 30


class _Base(DeclarativeBase):
    """A declarative base of our own: a2a-sdk's ``Base.metadata`` stays without our table."""


# Made once per process: a2a-sdk's DatabaseTaskStore(table_name=...) defines a new mapped class on every
# construction and the second one fails ("Table 'a2a_tasks' is already defined"), so a process that builds
# two applications (tests, the benchmark) would break. The store below uses this one class instead.
TaskRow: Any = create_task_model(TABLE, _Base)


def async_database_url(url: str) -> str:
    """The asynchronous driver's URL for the state store's ``url``: ``sqlite:///…`` ->
    ``sqlite+aiosqlite:///…``; ``postgres://`` and ``postgresql://`` (and psycopg2) ->
    ``postgresql+psycopg://`` (psycopg 3 is asynchronous too); ``postgresql+psycopg://`` stays.
    Raises ConfigurationError for any other database (the state store supports only these two)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError("DATABASE_URL is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ConfigurationError(f"DATABASE_URL: A2A tasks are kept on SQLite or PostgreSQL, not {backend}")


WRITE_OPTION = "devops_crew_write"


def task_engine(url: str) -> AsyncEngine:
    """An async engine for the tasks, beside the state store's synchronous one on the same database.

    SQLite: every write transaction is ``BEGIN IMMEDIATE`` and waits up to 30 s for the lock, as the state
    store's are (``store._sqlite_engine``); reads (``tasks/get`` polls) begin deferred and never queue.
    Raises ConfigurationError."""
    async_url = async_database_url(url)
    if not async_url.startswith("sqlite"):
        return create_async_engine(async_url, pool_pre_ping=True)
    engine = create_async_engine(async_url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # BEGIN is ours, below

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    return engine


def agent_message(task: Task, parts: list[Part], metadata: dict[str, Any] | None = None) -> Message:
    """A new message from this agent in ``task``."""
    return Message(
        role=Role.agent,
        message_id=str(uuid.uuid4()),
        task_id=task.id,
        context_id=task.context_id,
        parts=parts,
        metadata=metadata,
    )


def advanced(task: Task, state: TaskState, message: Message | None, metadata: dict[str, Any] | None = None) -> Task:
    """A copy of ``task`` moved to ``state`` with ``message``, as a2a-sdk's TaskManager moves a task on a
    status update: the previous status message goes to the history, ``metadata`` is merged."""
    moved = task.model_copy(deep=True)
    if moved.status.message is not None:
        moved.history = [*(moved.history or []), moved.status.message]
    moved.status = TaskStatus(state=state, message=message, timestamp=datetime.now(UTC).isoformat())
    if metadata:
        moved.metadata = {**(moved.metadata or {}), **metadata}
    return moved


def with_answer_in_history(task: Task) -> Task:
    """``task`` as it is stored: its history ends with its current status message, once.

    a2a-sdk's client appends every status message to the history it builds while streaming, but its
    server's TaskManager moves a status message into the history only when the next status replaces it, so
    a polled task's history lacks the latest message. CrewAI's polling client hands its LLM the history
    only: the final answer (the pull request URL) would never reach it. Stored this way, ``tasks/get``
    shows the conversation a streaming client sees. The TaskManager appending the same message again on
    the next update is folded away here (same ``message_id``, consecutive)."""
    history: list[Message] = []
    changed = False
    for message in task.history or []:
        if history and history[-1].message_id == message.message_id:
            changed = True
        else:
            history.append(message)
    current = task.status.message
    if current is not None and (not history or history[-1].message_id != current.message_id):
        history.append(current)
        changed = True
    if not changed:
        return task
    return task.model_copy(update={"history": history})


Refresher = Callable[[Task, ServerCallContext | None], Awaitable[Task | None]]


class RequestTaskStore(DatabaseTaskStore):
    """a2a-sdk's database task store on ``a2a_tasks``, with these additions:

    - ``tasks/get`` of a task that may still change first asks ``refresher`` (set by the endpoint) whether
      its request moved on, and saves what it answers: a task whose run this process is not following
      (another replica's, one a restart interrupted, one a human approved later) still answers with its
      request's state;
    - a save is one upsert and stores the history with its answer last (:func:`with_answer_in_history`);
      progress updates are written at most every :data:`COALESCE_SECONDS` (:meth:`save`); ``on_saved``
      hears of every save;
    - :meth:`open_tasks` lists the tasks that may still change (the start-up hook);
    - after :meth:`close`, reads and writes raise instead of opening new connections (a connection left
      open keeps aiosqlite's thread, and the process, alive at exit).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, create_table=False)  # the default table's existing class: nothing is defined
        self.task_model = TaskRow
        self.refresher: Refresher | None = None
        self.on_saved: Callable[[Task], None] | None = None
        #: Set on SQLite by the endpoint's start-up hook: runs a save's statement in the state store's own
        #: write queue (``Store.execute_write`` on a thread). Without it a save waits for the file's write
        #: lock in SQLite's busy handler, which sleeps up to 100 ms a try while another thread of this
        #: process writes (bench/intake.py: the bare a2a-sdk's p99 on SQLite is that sleep).
        self.writer: Callable[[Any, dict[str, Any]], Awaitable[None]] | None = None
        self._upsert_statement: Any = None
        self._held: dict[str, dict[str, Any]] = {}  # task id -> a progress save not written yet
        self._working_written: dict[str, float] = {}  # task id -> loop time its last `working` was written
        self._locks: dict[str, asyncio.Lock] = {}  # task id -> held while one of its saves is written
        self._lock_users: Counter[str] = Counter()
        self._flushes: set[asyncio.Task[None]] = set()
        self._closing = False
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the A2A task store is closed (the server is shutting down)")

    async def get(self, task_id: str, context: ServerCallContext | None = None) -> Task | None:
        """The stored task, brought up to date from its request on ``tasks/get`` (see the class)."""
        self._check_open()
        task = await super().get(task_id, context)
        method = context.state.get("method") if context is not None else None
        if task is None or self.refresher is None or method != "tasks/get" or task.status.state not in OPEN_STATES:
            return task
        fresher = await self.refresher(task, context)
        if fresher is None:
            return task
        await self.save(fresher, context)
        return with_answer_in_history(fresher)

    async def stored(self, task_id: str) -> Task | None:
        """The task as stored, without asking its request."""
        self._check_open()
        return await super().get(task_id)

    async def save(self, task: Task, context: ServerCallContext | None = None) -> None:
        """Saves ``task`` with its current status message as the last message of its history (see
        :func:`with_answer_in_history`), in one ``INSERT ... ON CONFLICT DO UPDATE`` (a2a-sdk's ORM
        ``merge`` reads the row first: two statements and the ORM's bookkeeping for every status update).

        Progress is written at most every :data:`COALESCE_SECONDS` per task: a ``working`` save that
        follows a written ``working`` save sooner than that is held and written then, the latest one only,
        unless a later save of the task replaces it first. Every other save (the first ``working``, and
        every move to another state) is written at once, after any write of the task in flight: a held
        progress update never lands over a newer state. A streaming caller hears every update as before
        (a2a-sdk sends events from its queue, not from the store)."""
        self._check_open()
        await self._ensure_initialized()
        stored = with_answer_in_history(task)
        values = {
            "id": stored.id,
            "context_id": stored.context_id,
            "kind": stored.kind,
            "status": stored.status,
            "artifacts": stored.artifacts,
            "history": stored.history,
            "metadata": stored.metadata,
        }
        loop = asyncio.get_running_loop()
        state = stored.status.state
        written = self._working_written.get(stored.id)
        if len(self._working_written) > PRUNE_AFTER:  # tasks left working: an old entry is as good as none
            now = loop.time()
            self._working_written = {k: t for k, t in self._working_written.items() if now - t < COALESCE_SECONDS}
        recent = written is not None and loop.time() - written < COALESCE_SECONDS
        if state is TaskState.working and recent and not self._closing:
            if stored.id not in self._held:
                loop.call_later(COALESCE_SECONDS - (loop.time() - written), self._flush_soon, stored.id)
            self._held[stored.id] = values
        else:
            self._held.pop(stored.id, None)
            await self._write(stored.id, values, state)
        if self.on_saved is not None:
            self.on_saved(stored)

    async def _write(self, task_id: str, values: dict[str, Any], state: TaskState) -> None:
        """Write one save, after any write of the same task in flight (their order is the saves' order)."""
        lock = self._locks.get(task_id)
        if lock is None:
            lock = self._locks[task_id] = asyncio.Lock()
        self._lock_users[task_id] += 1
        try:
            async with lock:
                await self._execute(values)
                if state is TaskState.working:
                    self._working_written[task_id] = asyncio.get_running_loop().time()
                else:
                    self._working_written.pop(task_id, None)
        finally:
            self._lock_users[task_id] -= 1
            if not self._lock_users[task_id]:
                del self._lock_users[task_id], self._locks[task_id]

    async def _execute(self, values: dict[str, Any]) -> None:
        statement = self._upsert()
        if self.writer is not None:
            await self.writer(statement, values)
            return
        async with self.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                await conn.execute(statement, values)

    def _flush_soon(self, task_id: str) -> None:
        if task_id in self._held and not self._closing:
            flush = asyncio.ensure_future(self._flush(task_id))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _flush(self, task_id: str) -> None:
        """Write the progress save held for ``task_id``, if it is still the latest."""
        values = self._held.pop(task_id, None)
        if values is None:
            return
        try:
            await self._write(task_id, values, TaskState.working)
        except Exception:  # progress only: the next state's save is written at once in any case
            log.warning("A2A: task %s: a progress update could not be saved", task_id, exc_info=True)

    def _upsert(self) -> Any:
        """The save's ``INSERT ... ON CONFLICT (id) DO UPDATE`` of every column, built once and executed
        with each task's values: building it costs ten times more than running it (``excluded`` makes a
        new alias of the table every time; a third of the event loop's time under A2A load)."""
        if self._upsert_statement is None:
            table = TaskRow.__table__
            insert = sqlite_insert if self.engine.dialect.name == "sqlite" else postgresql_insert
            statement = insert(table)
            columns = [c.key for c in table.columns if c.key != "id"]
            self._upsert_statement = statement.on_conflict_do_update(
                index_elements=[table.c.id], set_={k: statement.excluded[k] for k in columns}
            )
        return self._upsert_statement

    async def open_tasks(self, limit: int = 10_000) -> list[Task]:
        """Tasks still ``submitted``, ``working`` or ``input-required`` (at most ``limit``)."""
        self._check_open()
        await self._ensure_initialized()
        state = TaskRow.__table__.c.status["state"].as_string()
        query = select(TaskRow).where(state.in_([s.value for s in OPEN_STATES])).limit(limit)
        async with self.async_session_maker() as session:
            rows = (await session.execute(query)).scalars().all()
            return [self._from_orm(row) for row in rows]

    async def close(self) -> None:
        """Write the progress saves still held (saves from now on are written at once), refuse further
        use and close the engine's connections."""
        self._closing = True
        while self._held or self._flushes:
            for task_id in list(self._held):
                await self._flush(task_id)
            if self._flushes:
                await asyncio.wait(set(self._flushes))
        self.closed = True
        await self.engine.dispose()
