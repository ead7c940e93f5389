"""The A2A agent: an a2a-sdk ``AgentExecutor`` that turns a message into a request and its task.

``execute`` (a new task): the caller (authenticated by the route, carried in the call context) and the gap
of the message (:func:`~.a2a_messages.gap_from_message`) go to ``CrewService.accept`` (on the runtime's
short-call threads, so an acknowledgement never waits behind queued runs); the answer is at once a task
``submitted`` (then ``working``) whose metadata names the request. The run goes on on a worker
(``Runtime.drive``); its progress events become ``working`` status updates and its end the final status
(:func:`~.a2a_messages.outcome`). A gap that already has a request answers with that request's current
state (and follows it while it is mid-way). Service errors end the task ``rejected`` or ``failed`` with
their one-line message; nothing reaches the caller as a 500 or a traceback.

A message to a task that is still open (``input-required``) answers with its request's current state: the
crew needs nothing from the caller, a human approver decides.

:class:`TaskWatch` keeps tasks whose run this process does not follow up to date: at start-up (open tasks
whose request moved on are brought up to date; those still mid-way are followed), and on ``tasks/get``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from a2a.auth.user import User
from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.apps.jsonrpc.jsonrpc_app import CallContextBuilder
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import (
    DataPart,
    InvalidParamsError,
    InvalidRequestError,
    Part,
    Task,
    TaskNotCancelableError,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    TextPart,
)
from a2a.utils.errors import ServerError
from starlette.requests import Request

from ..authz import Actor, Channel, Role
from ..errors import DevopsCrewError, NotFound, Unavailable
from ..models import RequestState
from .a2a_messages import (
    Outcome,
    answer_parts,
    dry_run_asked,
    gap_from_message,
    outcome,
    refusal,
    task_metadata,
    working_text,
)
from .a2a_tasks import OPEN_STATES, RequestTaskStore, advanced, agent_message
from .events import Event
from .runtime import Runtime

log = logging.getLogger("devops_crew.server.a2a")

View = dict[str, Any]
#: Reads requests for the tasks no caller is waiting on (start-up, ``tasks/get`` refresh). Read only.
READER = Actor(id="devops-crew-a2a", channel=Channel.a2a, display_name="A2A task watch", roles={Role.viewer})
#: a2a-sdk's task table keeps ids in String(36) (a UUID); PostgreSQL refuses longer ones.
MAX_ID_CHARS = 36
#: Reading the request when no run of ours will say it ended (a duplicate's, one another replica drives).
POLL_FIRST_SECONDS, POLL_MAX_SECONDS = 0.5, 5.0
#: A task is followed this long at most; after that it stays as it is until ``tasks/get`` or a restart.
FOLLOW_SECONDS = 3600.0
#: After the last execution ended at shutdown, a2a-sdk's consumer still saves its last event.
SETTLE_SECONDS = 0.25
#: An acknowledgement holds the intake gate until its task's first save, this long at most (seconds).
ACK_HOLD_SECONDS = 5.0
#: A task counts as followed until its last event is saved, or this long after its execution returned.
LIVE_AFTER_SECONDS = 30.0


# -- who is calling -------------------------------------------------------------------------------
class Caller(User):
    """The authenticated A2A caller, as a2a-sdk's ``ServerCallContext.user``."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.actor.id


class CallerContextBuilder(CallContextBuilder):
    """Puts the actor the route authenticated (``request.state.a2a_actor``) into the call context:
    ``state["actor"]``, and ``user`` (:class:`Caller`). Headers are kept, without ``Authorization``."""

    def build(self, request: Request) -> ServerCallContext:
        actor: Actor | None = getattr(request.state, "a2a_actor", None)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        context = ServerCallContext(
            state={"actor": actor, "headers": headers},
            requested_extensions=get_requested_extensions(request.headers.getlist(HTTP_EXTENSION_HEADER)),
        )
        if actor is not None:
            context.user = Caller(actor)
        return context


def caller_of(context: ServerCallContext | None) -> Actor | None:
    """The actor of a call context, or None."""
    actor = context.state.get("actor") if context is not None else None
    return actor if isinstance(actor, Actor) else None


# -- where a task's updates go --------------------------------------------------------------------
class Sink(Protocol):
    async def working(self, text: str, step: str = "") -> None: ...

    async def settle(self, answer: Outcome, view: View | None) -> None: ...


class UpdaterSink:
    """Updates of a task being executed: into a2a-sdk's event queue (streamed, then saved)."""

    def __init__(self, updater: TaskUpdater, prefix: str = "") -> None:
        self.updater, self.prefix = updater, prefix

    async def working(self, text: str, step: str = "") -> None:
        message = self.updater.new_agent_message(
            [Part(root=TextPart(text=text))], metadata={"step": step} if step else None
        )
        await self.updater.update_status(TaskState.working, message=message)

    async def settle(self, answer: Outcome, view: View | None) -> None:
        message = self.updater.new_agent_message(answer_parts(self.prefix + answer.text, view))
        metadata = task_metadata(view) if view is not None else None
        await self.updater.update_status(answer.state, message=message, final=True, metadata=metadata)


class _Tracked:
    """An event queue that tells ``sent`` the message of every status enqueued (see TaskWatch.sent)."""

    def __init__(self, queue: EventQueue, task_id: str, sent: Callable[[str, str], None]) -> None:
        self._queue, self._task_id, self._sent = queue, task_id, sent

    async def enqueue_event(self, event: Any) -> None:
        message = event.status.message if isinstance(event, Task | TaskStatusUpdateEvent) else None
        if message is not None:
            self._sent(self._task_id, message.message_id)
        await self._queue.enqueue_event(event)


class QuietSink(UpdaterSink):
    """An UpdaterSink that leaves progress to the execution already following the task."""

    async def working(self, text: str, step: str = "") -> None:
        return None


class StoredSink:
    """Updates of a task no execution holds (after a restart): straight into the task store."""

    def __init__(self, store: RequestTaskStore, task_id: str) -> None:
        self.store, self.task_id = store, task_id

    async def _move(self, state: TaskState, parts: list[Part], metadata: dict[str, Any] | None) -> None:
        task = await self.store.stored(self.task_id)
        if task is not None and task.status.state in OPEN_STATES:
            await self.store.save(advanced(task, state, agent_message(task, parts), metadata))

    async def working(self, text: str, step: str = "") -> None:
        await self._move(TaskState.working, [Part(root=TextPart(text=text))], None)

    async def settle(self, answer: Outcome, view: View | None) -> None:
        await self._move(answer.state, answer_parts(answer.text, view), task_metadata(view) if view else None)


def brought_up_to_date(task: Task, view: View) -> Task | None:
    """``task`` moved to where its request ``view`` is, or None when it already is there: a settled request
    gives its final state; a request mid-way moves a ``submitted`` or ``input-required`` task (approved
    since) to ``working``."""
    settled = outcome(view)
    seen = (task.metadata or {}).get("request_state")
    if settled is not None:
        if task.status.state is settled.state and seen == view["state"]:
            return None  # already says so (an input-required task polled while its request waits)
        return advanced(task, settled.state, agent_message(task, answer_parts(settled.text, view)), task_metadata(view))
    if task.status.state is not TaskState.working:
        message = agent_message(task, answer_parts(working_text(view), None))
        return advanced(task, TaskState.working, message, task_metadata(view))
    return None


# -- following a run ------------------------------------------------------------------------------
def _drain(events: asyncio.Queue[Event]) -> list[Event]:
    """Every event already waiting in ``events``, without waiting."""
    waiting = []
    while not events.empty():
        waiting.append(events.get_nowait())
    return waiting


def latest_events(events: list[Event]) -> list[Event]:
    """The events a follower still has to pass on, in order, when several arrived at once (a busy loop
    falls behind a run): every state change, and of each run of progress messages between two state
    changes only its last (the earlier ones are already stale). Under load this keeps the loop's work per
    run bounded instead of one status update, and one task save, per progress line."""
    kept: list[Event] = []
    for event in events:
        if event.kind == "progress" and kept and kept[-1].kind == "progress":
            kept[-1] = event
        else:
            kept.append(event)
    return kept


async def follow(
    rt: Runtime,
    read: Callable[[str], Awaitable[View]],
    view: View,
    events: asyncio.Queue[Event],
    sink: Sink,
    run: Future[View] | None,
    stopping: asyncio.Event,
) -> tuple[Outcome, View | None] | None:
    """Follow request ``view`` until it settles: progress events become ``working`` updates in ``sink``.
    ``run`` is the worker's run of it when it is ours (its end is awaited); without one the request is read
    (``read(request_id)``) every few seconds as well. Returns the answer and the last SUMMARY, or None when
    following stops with the request mid-way (shutdown, or :data:`FOLLOW_SECONDS`): the task stays
    ``working`` until the next start or a ``tasks/get`` brings it up to date."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FOLLOW_SECONDS
    ours = asyncio.wrap_future(run) if run is not None else None
    poll = POLL_FIRST_SECONDS
    seen = view["state"]
    while True:
        settled = outcome(view)
        if settled is not None:
            return settled, view
        if ours is not None and ours.done():
            try:
                view = ours.result()
            except asyncio.CancelledError:  # a queued run the shutdown dropped: the next start resumes it
                return None
            except DevopsCrewError as exc:
                return refusal(exc), None
            except Exception:
                log.exception("A2A: the run of %s raised", view["id"])
                return refusal(RuntimeError()), None
            ours = None
            if outcome(view) is None and (rt.draining.is_set() or stopping.is_set()):
                return None  # stopped at a saved state for the shutdown
            continue
        if stopping.is_set() and (run is None or not run.running()):
            return None
        if loop.time() > deadline:
            return None
        getter = asyncio.ensure_future(events.get())
        waiting: set[asyncio.Future[Any]] = {getter} | ({ours} if ours is not None else set())
        stopper = None if stopping.is_set() else asyncio.ensure_future(stopping.wait())  # set: wait for the run
        if stopper is not None:
            waiting.add(stopper)
        timeout = poll if ours is None else max(0.0, deadline - loop.time())
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (getter, stopper):
            if waiter is not None and not waiter.done():
                waiter.cancel()
        if getter in done:
            for event in latest_events([getter.result(), *_drain(events)]):
                if event.kind == "progress" and event.message:
                    await sink.working(f"{view['id']}: {event.message}", event.step)
                elif event.kind == "state" and event.summary is not None:
                    view = event.summary
                    if view["state"] != seen and outcome(view) is None:
                        await sink.working(working_text(view))
                    seen = view["state"]
        elif not done:  # nothing happened for a while and no run of ours will tell: read the request
            try:
                view = await read(view["id"])
            except Unavailable:
                return None
            except DevopsCrewError as exc:
                return refusal(exc), None
            poll = min(poll * 2, POLL_MAX_SECONDS)


# -- the executor ---------------------------------------------------------------------------------
class TaskWatch:
    """What the executor, the task store and the lifespan hooks share: which tasks an execution of this
    process follows (``live``), the followers started at start-up, and the stop signal."""

    def __init__(self, runtime: Callable[[], Runtime], store: RequestTaskStore) -> None:
        self.runtime = runtime
        self.store = store
        self.live: Counter[str] = Counter()  # task id -> executions following it
        self._sent: dict[str, str] = {}  # task id -> the last status message an execution enqueued
        self._saved: dict[str, str] = {}  # task id -> the last status message saved
        self._ending: set[str] = set()  # executions returned, their last event not saved yet
        self._acknowledging: dict[str, contextlib.ExitStack] = {}  # task id -> intake gate, until saved
        self.executions: set[asyncio.Task[Any]] = set()
        self.followers: set[asyncio.Task[Any]] = set()
        self.stopping = asyncio.Event()
        store.refresher, store.on_saved = self.refresh, self.saved

    # An execution's task counts as followed (``live``: tasks/get leaves it alone) until a2a-sdk's consumer
    # has saved the last event the execution sent, which happens after ``execute`` returns: until then the
    # stored task lags, and a tasks/get must not "bring it up to date" with an answer of its own.
    def sent(self, task_id: str, message_id: str) -> None:
        """An execution enqueued a status whose message is ``message_id``."""
        self._sent[task_id] = message_id

    def release_when_saved(self, task_id: str, gate: contextlib.ExitStack) -> None:
        """Hold ``gate`` (the intake gate an acknowledgement entered) until ``task_id`` is next saved, or
        :data:`ACK_HOLD_SECONDS` at most."""
        self.acknowledged(task_id)
        self._acknowledging[task_id] = gate
        asyncio.get_running_loop().call_later(ACK_HOLD_SECONDS, self.acknowledged, task_id)

    def acknowledged(self, task_id: str) -> None:
        """The acknowledgement of ``task_id`` is made: release its intake gate (no-op when released)."""
        gate = self._acknowledging.pop(task_id, None)
        if gate is not None:
            gate.close()

    def saved(self, task: Task) -> None:
        """The task store saved ``task`` (its hook)."""
        self.acknowledged(task.id)
        if task.id in self.live and task.status.message is not None:
            self._saved[task.id] = task.status.message.message_id
            if task.id in self._ending and self._saved[task.id] == self._sent.get(task.id):
                self._release(task.id)

    def finish(self, task_id: str) -> None:
        """An execution of ``task_id`` returned."""
        if self._sent.get(task_id) in (None, self._saved.get(task_id)):
            self._release(task_id)
            return
        self._ending.add(task_id)
        asyncio.get_running_loop().call_later(LIVE_AFTER_SECONDS, self._release, task_id, True)

    def _release(self, task_id: str, late: bool = False) -> None:
        if late and task_id not in self._ending:
            return
        self._ending.discard(task_id)
        self.live[task_id] -= 1
        if self.live[task_id] <= 0:
            del self.live[task_id]
            self._sent.pop(task_id, None)
            self._saved.pop(task_id, None)

    # Recording and reading requests are short calls: on the runtime's ``io`` threads, not the worker pool,
    # where an acknowledgement would wait behind every run queued before it (bench/intake.py, 20 clients:
    # acknowledgement p50 1.3 s on the pool, about 0.3 s on threads of its own).
    async def read(self, rt: Runtime, actor: Actor, request_id: str) -> View:
        """``CrewService.get`` (``Runtime.quick``). Raises what it raises, and Unavailable once the watch
        stopped."""
        if self.stopping.is_set():
            raise Unavailable("the server is shutting down")
        return await rt.quick(rt.service.get, actor, request_id)

    async def accept(self, rt: Runtime, actor: Actor, gap: dict[str, Any]) -> View:
        """``CrewService.accept`` (``Runtime.quick``), announced to the hub. Refused before anything is
        recorded (Unavailable) while the server drains or when its work queue has no room for the run."""
        if self.stopping.is_set():
            raise Unavailable("the server is shutting down; retry against another replica or after restart")
        rt.pool.check_capacity(1)  # the run; raises Unavailable while draining too
        return rt.published(await rt.quick(rt.service.accept, actor, gap))

    async def refresh(self, task: Task, context: ServerCallContext | None) -> Task | None:
        """On ``tasks/get``: the task brought up to date from its request, unless an execution of this
        process follows it (it is current then) or its request cannot be read now."""
        rid = (task.metadata or {}).get("request_id")
        if task.id in self.live or not isinstance(rid, str):
            return None
        rt = self.runtime()
        try:
            view = await self.read(rt, caller_of(context) or READER, rid)
        except DevopsCrewError as exc:
            log.info("A2A: task %s: its request %s cannot be read now: %s", task.id, rid, exc)
            return None
        return brought_up_to_date(task, view)

    async def start(self, rt: Runtime) -> None:
        """Start-up hook: bring every open task up to date, and follow those whose request is mid-way (the
        runtime resumes such requests right after the hooks; a follower hears their events)."""
        self.stopping = asyncio.Event()
        state = rt.service.store
        same_file = state.engine.url.database == self.store.engine.url.database
        if state.dialect == "sqlite" and self.store.engine.dialect.name == "sqlite" and same_file:
            self.store.writer = functools.partial(rt.quick, state.execute_write)
        tasks = await self.store.open_tasks()
        moved = followed = 0
        for task in tasks:
            rid = (task.metadata or {}).get("request_id")
            if not isinstance(rid, str):
                continue
            try:
                view = await self.read(rt, READER, rid)
            except NotFound:
                gone = Outcome(TaskState.failed, f"{rid}: the request no longer exists")
                await self.store.save(advanced(task, gone.state, agent_message(task, answer_parts(gone.text, None))))
                moved += 1
                continue
            except DevopsCrewError as exc:
                log.warning("A2A: task %s: request %s: %s", task.id, rid, exc)
                continue
            fresher = brought_up_to_date(task, view)
            if fresher is not None:
                await self.store.save(fresher)
                moved += 1
            if outcome(view) is None:
                self._follow_stored(rt, task.id, view)
                followed += 1
        if tasks:
            log.info("A2A: %d open task(s): %d brought up to date, %d followed", len(tasks), moved, followed)

    def _follow_stored(self, rt: Runtime, task_id: str, view: View) -> None:
        stack = contextlib.ExitStack()
        events = stack.enter_context(rt.hub.subscribe(view["id"]))  # now: the resumed run may start at once

        async def run() -> None:
            with stack:
                sink = StoredSink(self.store, task_id)
                read = functools.partial(self.read, rt, READER)
                result = await follow(rt, read, view, events, sink, None, self.stopping)
                if result is not None:
                    await sink.settle(*result)

        follower = asyncio.create_task(run(), name=f"a2a-follow:{task_id}")
        self.followers.add(follower)
        follower.add_done_callback(self._follower_done)

    def _follower_done(self, follower: asyncio.Task[Any]) -> None:
        self.followers.discard(follower)
        if not follower.cancelled() and follower.exception() is not None:
            log.error("A2A: %s failed", follower.get_name(), exc_info=follower.exception())

    async def stop(self, rt: Runtime) -> None:
        """Shutdown hook (the drain flag is already set): executions and followers stop following; those
        whose run is on a worker wait for it to reach its next saved state (within the grace period). Then
        the task store closes."""
        self.stopping.set()
        pending = self.executions | self.followers
        if pending:
            await asyncio.wait(pending, timeout=rt.settings.shutdown_grace_seconds)
            await asyncio.sleep(SETTLE_SECONDS)
        for follower in list(self.followers):
            follower.cancel()
        await self.store.close()


class GapExecutor(AgentExecutor):
    """The ``create_team`` skill (see the module)."""

    def __init__(self, watch: TaskWatch) -> None:
        self.watch = watch

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Raises ServerError (a JSON-RPC error, no task) only for a call without a caller (the route lets
        none through) or with a ``contextId`` longer than 36 characters (the task table's)."""
        actor = caller_of(context.call_context)
        if actor is None:
            raise ServerError(error=InvalidRequestError(message="authentication required"))
        if len(context.context_id or "") > MAX_ID_CHARS or len(context.task_id or "") > MAX_ID_CHARS:
            raise ServerError(error=InvalidParamsError(message=f"contextId: at most {MAX_ID_CHARS} characters"))
        assert context.task_id is not None and context.context_id is not None
        watch, current = self.watch, asyncio.current_task()
        already_followed = context.task_id in watch.live
        watch.live[context.task_id] += 1
        if current is not None:
            watch.executions.add(current)
        try:
            queue = cast(EventQueue, _Tracked(event_queue, context.task_id, watch.sent))
            updater = TaskUpdater(queue, context.task_id, context.context_id)
            if context.current_task is not None:
                await self._again(watch.runtime(), actor, context.current_task, updater, quiet=already_followed)
            else:
                await self._new(watch.runtime(), actor, context, queue, updater)
        finally:
            watch.acknowledged(context.task_id)
            watch.finish(context.task_id)
            if current is not None:
                watch.executions.discard(current)

    async def _new(
        self, rt: Runtime, actor: Actor, context: RequestContext, queue: EventQueue, updater: TaskUpdater
    ) -> None:
        async def first(state: TaskState, text: str, view: View | None = None) -> None:
            message = updater.new_agent_message(answer_parts(text, view))
            status = TaskStatus(state=state, message=message, timestamp=datetime.now(UTC).isoformat())
            task = Task(
                id=updater.task_id,
                context_id=updater.context_id,
                status=status,
                history=[context.message] if context.message is not None else None,
                metadata=task_metadata(view) if view is not None else None,
            )
            await queue.enqueue_event(task)

        if dry_run_asked(context.message):
            await self._dry_run(rt, actor, context, queue, updater)
            return
        # The acknowledgement: runs hold back (the intake gate) until the request is recorded and the
        # task's first state saved (the caller's answer); then the run goes on and this follows it.
        with contextlib.ExitStack() as acknowledging:
            acknowledging.enter_context(rt.gate.intake())
            try:
                view = await self.watch.accept(rt, actor, gap_from_message(context.message, actor))
            except Exception as exc:
                if isinstance(exc, DevopsCrewError):
                    log.info("A2A: refused a message of %s: %s", actor.key, exc)
                else:
                    log.exception("A2A: a message of %s could not be handled", actor.key)
                answer = refusal(exc)
                await first(answer.state, answer.text)
                return
            prefix = f"gap {view['gap_id']} already has request {view['id']}. " if view["duplicate"] else ""
            with rt.hub.subscribe(view["id"]) as events:
                run: Future[View] | None = None
                # A new request, or the caller's own duplicate still in `received` (its run was refused or
                # cut off): drive it. A run already driving it holds its lock; this one then finds nothing.
                requester = view.get("requester") or {}
                own = (requester.get("id"), requester.get("channel")) == (actor.id, actor.channel.value)
                if view["state"] == RequestState.received.value and (not view["duplicate"] or own):
                    try:
                        run = rt.pool.submit(rt.drive, actor, view["id"])
                    except Unavailable as exc:  # recorded, not run now: a later start resumes it
                        log.warning("A2A: %s recorded but not queued: %s", view["id"], exc)
                settled = outcome(view)
                if settled is not None:
                    await first(settled.state, prefix + settled.text, view)
                    return
                await first(TaskState.submitted, f"{prefix}{view['id']}: recorded for gap {view['gap_id']}", view)
                self.watch.release_when_saved(updater.task_id, acknowledging.pop_all())
                sink = UpdaterSink(updater, prefix)
                await sink.working(working_text(view))
                read = functools.partial(self.watch.read, rt, actor)
                result = await follow(rt, read, view, events, sink, run, self.watch.stopping)
        if result is not None:
            await sink.settle(*result)

    async def _dry_run(
        self, rt: Runtime, actor: Actor, context: RequestContext, queue: EventQueue, updater: TaskUpdater
    ) -> None:
        """A message with ``metadata.dry_run: true``: ``CrewService.dry_run`` on a worker, answered as one
        completed task (nothing is stored but that task), or rejected/failed as a submission would be."""
        try:
            rt.pool.check_capacity(1)
            view = await rt.pool.run(rt.service.dry_run, actor, gap_from_message(context.message, actor))
            summary = view["request"]
            text = f"dry run: {view['outcome']}" + (f" for team {summary['team']}" if summary["team"] else "")
            text += f" ({summary['files']} files; nothing stored, pushed or counted)"
            state = TaskState.completed
            parts = [Part(root=TextPart(text=text)), Part(root=DataPart(data={"schema": 1, **view}))]
        except Exception as exc:
            if not isinstance(exc, DevopsCrewError):
                log.exception("A2A: a dry run of %s could not be handled", actor.key)
            answer = refusal(exc)
            state, parts = answer.state, [Part(root=TextPart(text=answer.text))]
        status = TaskStatus(
            state=state, message=updater.new_agent_message(parts), timestamp=datetime.now(UTC).isoformat()
        )
        history = [context.message] if context.message is not None else None
        task = Task(
            id=updater.task_id,
            context_id=updater.context_id,
            status=status,
            history=history,
            metadata={"dry_run": True},
        )
        await queue.enqueue_event(task)

    async def _again(self, rt: Runtime, actor: Actor, task: Task, updater: TaskUpdater, *, quiet: bool) -> None:
        """A message to an open task. ``quiet``: another execution here follows it and its events reach this
        call too (a2a-sdk taps the same queue): only wait for the end, do not repeat its progress. Returning
        early would be worse: a2a-sdk then closes the task's queue under the other execution."""
        sink: Sink = QuietSink(updater) if quiet else UpdaterSink(updater)
        rid = (task.metadata or {}).get("request_id")
        if not isinstance(rid, str):
            await sink.settle(Outcome(TaskState.rejected, "this task has no request: send the gap in a new task"), None)
            return
        try:
            view = await self.watch.read(rt, actor, rid)
        except DevopsCrewError as exc:
            await sink.settle(refusal(exc), None)
            return
        with rt.hub.subscribe(rid) as events:
            if outcome(view) is None:
                await sink.working(working_text(view))
            read = functools.partial(self.watch.read, rt, actor)
            result = await follow(rt, read, view, events, sink, None, self.watch.stopping)
        if result is not None:
            await sink.settle(*result)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Requests are not cancelled over A2A (a2a-sdk's cancel carries no caller to authorise). Raises
        ServerError (TaskNotCancelable) naming what the requester can do instead."""
        rid = ((context.current_task.metadata or {}) if context.current_task else {}).get("request_id", "ID")
        raise ServerError(
            error=TaskNotCancelableError(
                message=f"requests are not cancelled over A2A; the requester may withdraw a waiting request "
                f"with POST /api/v1/requests/{rid}/reject"
            )
        )
