"""Acknowledgements before runs (server/intake.py) and the A2A task store's progress writes.

The intake gate makes runs wait at a saved state while a caller waits for its acknowledgement, bounded so
a run is never starved; the task store writes progress at most every COALESCE_SECONDS and never lets a
held progress update land over a newer state; a follower passes a burst of progress on as its latest
line; the event hub hands an event to its own request's listeners. bench/intake.py measures the effect.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import pytest
from a2a.types import Message, Part, Role, Task, TaskState, TaskStatus, TextPart

from devops_automation.app import build_app
from devops_automation.engine import Hooks
from devops_automation.models import RequestState
from devops_automation.server.a2a_executor import latest_events
from devops_automation.server.a2a_tasks import COALESCE_SECONDS, RequestTaskStore, task_engine
from devops_automation.server.events import Event, EventHub
from devops_automation.server.intake import IntakeGate
from devops_automation.store import open_store

from .helpers import fast_settings, new_gap


# -- the gate ----------------------------------------------------------------------------------------
def test_a_run_waits_while_an_acknowledgement_is_in_flight_and_goes_on_when_it_is_made() -> None:
    gate = IntakeGate(5.0)
    waited: list[float] = []
    with gate.intake():
        worker = threading.Thread(target=lambda: waited.append(gate.hold_back()))
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive() and gate.in_flight == 1  # still holding back
    worker.join(2)
    assert not worker.is_alive() and 0.25 <= waited[0] < 2.0
    assert gate.in_flight == 0 and gate.hold_back() < 0.05  # nothing in flight: no wait at all


def test_a_run_is_slowed_never_starved_and_the_gate_can_be_switched_off() -> None:
    bounded = IntakeGate(0.2)
    with bounded.intake(), bounded.intake():  # nested intake calls count
        assert bounded.in_flight == 2
        started = time.monotonic()
        assert 0.15 <= bounded.hold_back() < 1.0  # intake never quiet: it gives up after max_wait
        assert time.monotonic() - started < 1.0
    off = IntakeGate(0.0)
    with off.intake():
        assert off.hold_back() == 0.0


def test_the_engine_holds_back_at_each_saved_state_while_intake_is_in_flight(tmp_path: Path) -> None:
    """A run started while an acknowledgement is in flight does not take a step until it is made; then
    it runs to its end. The hook is called once before every step."""
    gate = IntakeGate(30.0)
    calls: list[float] = []

    def before_step() -> object:
        calls.append(gate.hold_back())
        return None

    app = build_app(fast_settings(tmp_path), hooks=Hooks(before_step=before_step))
    try:
        request = app.engine.accept(new_gap(3)).request
        done: list[object] = []
        with gate.intake():
            runner = threading.Thread(target=lambda: done.append(app.engine.run(request.id)))
            runner.start()
            time.sleep(0.5)
            assert app.store.require_request(request.id).state is RequestState.received  # no step yet
            assert not done
        runner.join(60)
        finished = done[0]
        assert finished.state is RequestState.published, finished.error  # type: ignore[attr-defined]
        assert calls[0] >= 0.4  # the first step waited for the acknowledgement
        assert len(calls) >= 4 and all(c < 0.1 for c in calls[1:])  # later steps: intake was quiet
    finally:
        app.close()


# -- the task store's writes -------------------------------------------------------------------------
def _task(task_id: str, state: TaskState, text: str) -> Task:
    message = Message(role=Role.agent, message_id=str(uuid.uuid4()), parts=[Part(root=TextPart(text=text))])
    return Task(id=task_id, context_id=str(uuid.uuid4()), status=TaskStatus(state=state, message=message))


def _text(task: Task | None) -> str:
    assert task is not None and task.status.message is not None
    part = task.status.message.parts[0].root
    assert isinstance(part, TextPart)
    return part.text


def test_progress_is_written_at_most_every_half_second_and_never_over_a_newer_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).close()  # the migrations make the a2a_tasks table

    async def scenario() -> None:
        store = RequestTaskStore(task_engine(url))
        writes: list[str] = []
        execute = store._execute

        async def counted(values: dict[str, object]) -> None:
            writes.append(_text(Task.model_validate({**values, "status": values["status"]})))
            await execute(values)

        store._execute = counted  # type: ignore[method-assign]
        try:
            await store.save(_task("t1", TaskState.submitted, "recorded"))
            await store.save(_task("t1", TaskState.working, "working 1"))  # the first working: at once
            for n in (2, 3, 4):
                await store.save(_task("t1", TaskState.working, f"working {n}"))  # held: the latest wins
            assert _text(await store.stored("t1")) == "working 1"
            await asyncio.sleep(COALESCE_SECONDS + 0.3)
            assert _text(await store.stored("t1")) == "working 4"
            assert writes == ["recorded", "working 1", "working 4"]

            # "working 4" was written by the flush 0.3 s ago: the next progress within the window is held
            await store.save(_task("t1", TaskState.working, "working 5"))
            await store.save(_task("t1", TaskState.working, "working 6"))
            await store.save(_task("t1", TaskState.input_required, "waits for a human"))  # at once
            await asyncio.sleep(COALESCE_SECONDS + 0.3)
            assert _text(await store.stored("t1")) == "waits for a human"  # the held progress never landed
            assert writes == ["recorded", "working 1", "working 4", "waits for a human"]

            await store.save(_task("t2", TaskState.working, "first"))
            await store.save(_task("t2", TaskState.working, "held at shutdown"))
        finally:
            await store.close()  # writes what is held
        reopened = RequestTaskStore(task_engine(url))
        try:
            assert _text(await reopened.stored("t2")) == "held at shutdown"
        finally:
            await reopened.close()

    asyncio.run(scenario())


# -- following a run and the hub ---------------------------------------------------------------------
def test_a_burst_of_progress_is_passed_on_as_its_latest_line_and_every_state_change() -> None:
    def progress(text: str) -> Event:
        return Event("progress", "req-1", message=text)

    state = Event("state", "req-1", summary={"id": "req-1", "state": "gated"})
    burst = [progress("a"), progress("b"), state, progress("c"), progress("d")]
    assert [(e.kind, e.message) for e in latest_events(burst)] == [("progress", "b"), ("state", ""), ("progress", "d")]
    assert latest_events([]) == []


def test_the_hub_hands_an_event_to_its_own_requests_listeners_and_to_those_of_every_request() -> None:
    async def scenario() -> None:
        hub = EventHub()
        hub.bind(asyncio.get_running_loop())
        with hub.subscribe("req-a") as mine, hub.subscribe("req-b") as other, hub.subscribe(None) as every:
            hub.publish(Event("progress", "req-a", message="rendering"))
            await asyncio.sleep(0.05)
            assert mine.get_nowait().message == "rendering" and every.get_nowait().request_id == "req-a"
            assert other.empty()
        with hub.subscribe("req-a") as again:  # a listener that left is gone; a new one hears from now on
            hub.publish(Event("progress", "req-a", message="pushing"))
            await asyncio.sleep(0.05)
            assert again.qsize() == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("value", ["-1", "61"])
def test_the_intake_priority_setting_is_bounded(tmp_path: Path, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from devops_automation.settings import Settings

    monkeypatch.setenv("DEVOPS_CREW_SERVER_INTAKE_PRIORITY_SECONDS", value)
    with pytest.raises(ValidationError, match=r"server_intake_priority_seconds|INTAKE_PRIORITY"):
        Settings(_env_file=None, home=tmp_path)  # type: ignore[call-arg]


def test_a_run_holding_back_lets_go_as_soon_as_the_process_drains() -> None:
    draining = threading.Event()
    gate = IntakeGate(30.0, stop=draining)
    waited: list[float] = []
    with gate.intake():
        worker = threading.Thread(target=lambda: waited.append(gate.hold_back()))
        worker.start()
        time.sleep(0.2)
        draining.set()
        worker.join(2)
        assert not worker.is_alive() and waited[0] < 1.0  # not the 30 s bound: the grace is for saved states
        assert gate.hold_back() < 0.05


def test_every_dashboard_page_is_under_the_dashboards_csrf_and_headers() -> None:
    """The CSRF middleware passes non-dashboard paths straight by (A2A and API calls mint no token), so a
    dashboard page outside DASHBOARD_PREFIXES would lose its token: its sign-out form would be refused."""
    from fastapi.routing import APIRoute

    from devops_automation.server.dashboard.pages import router
    from devops_automation.server.dashboard.security import is_dashboard_path

    paths = [route.path for route in router.routes if isinstance(route, APIRoute)]
    assert "/notifications" in paths and len(paths) >= 8
    concrete = [p.replace("{request_id}", "req-1").replace("{action}", "approve") for p in paths]
    assert [p for p in concrete if not is_dashboard_path(p)] == []
    assert not is_dashboard_path("/a2a") and not is_dashboard_path("/api/v1/requests")


def test_an_append_does_not_rebuild_a_head_someone_removed(tmp_path: Path) -> None:
    """Only database access removes the chain's head (migration 0003 made one for every log): the next
    row still chains to the log's last row, and the head stays missing, which the evidence needs."""
    from sqlalchemy import text

    from devops_automation.audit import Auditor

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        auditor = Auditor(store)
        auditor.event("test.first", "one")
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_head"))
        auditor.event("test.second", "two")
        rows = list(store.iter_audit())
        assert [r.seq for r in rows] == [1, 2] and rows[1].prev_hash == rows[0].hash
        assert store.audit_head() is None
    finally:
        store.close()
