"""``devops-crew serve``'s A2A endpoint (a2a-sdk 0.3), against a real uvicorn on loopback over the fake forge:
the agent card, gaps sent as data and as text, polling and streaming, authentication, the task states a
request ends in, tasks that outlive a restart, JSON-RPC errors, and a CrewAI agent delegating a gap.

Everything stays on 127.0.0.1; CrewAI's telemetry is off (conftest) and what it writes goes to a
temporary folder, never to ``$HOME``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from devops_automation.quiet import isolate_crewai

isolate_crewai(Path(tempfile.mkdtemp(prefix="devops-crew-tests-a2a-")))  # before anything imports CrewAI

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory  # noqa: E402
from a2a.client.errors import A2AClientHTTPError  # noqa: E402
from a2a.types import (  # noqa: E402
    AgentCard,
    DataPart,
    FilePart,
    FileWithUri,
    Message,
    Part,
    Role,
    Task,
    TaskQueryParams,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    TextPart,
)

from devops_automation.authz import Actor, Channel  # noqa: E402
from devops_automation.authz import Role as ActorRole  # noqa: E402
from devops_automation.errors import InvalidInput, PermissionDenied, Unavailable  # noqa: E402
from devops_automation.models import IN_PROGRESS, CapabilityGap, RequestState  # noqa: E402
from devops_automation.server.a2a_card import agent_card  # noqa: E402
from devops_automation.server.a2a_messages import SETTLED, gap_from_message, outcome, refusal  # noqa: E402
from devops_automation.server.a2a_tasks import (  # noqa: E402
    RequestTaskStore,
    async_database_url,
    task_engine,
    with_answer_in_history,
)
from devops_automation.service import CrewService  # noqa: E402
from devops_automation.settings import Settings  # noqa: E402

from .helpers import new_gap  # noqa: E402
from .server_fixtures import A2A_CALLERS, RunningServer, bearer, running_server, server_settings  # noqa: E402

CALLER = Actor(id="billing_ops", channel=Channel.a2a, roles={ActorRole.requester, ActorRole.viewer})
FINAL = {TaskState.completed, TaskState.failed, TaskState.rejected, TaskState.canceled, TaskState.input_required}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(server_settings(tmp_path / "home")) as running:
        yield running


# -- helpers --------------------------------------------------------------------------------------
def message(text: str | None = None, data: dict[str, Any] | None = None, task_id: str | None = None) -> Message:
    parts: list[Part] = []
    if data is not None:
        parts.append(Part(root=DataPart(data=data)))
    if text is not None:
        parts.append(Part(root=TextPart(text=text)))
    return Message(role=Role.user, message_id=str(uuid.uuid4()), parts=parts, task_id=task_id)


def gap_data(n: int, **changes: Any) -> dict[str, Any]:
    return {**new_gap(n).model_dump(mode="json", exclude_none=True), **changes}


@asynccontextmanager
async def a2a(
    url: str, caller: str = "billing_ops", *, streaming: bool, token: str | None = None
) -> AsyncIterator[Any]:
    """An a2a-sdk client for the server's card; polling (message/send non-blocking) unless ``streaming``."""
    headers = {"Authorization": f"Bearer {token or A2A_CALLERS[caller]}"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        config = ClientConfig(httpx_client=http, streaming=streaming, polling=not streaming)
        yield ClientFactory(config).create(card)


async def send(client: Any, msg: Message) -> list[tuple[Task, Any]]:
    """Every event of one send (one, the task, when polling), the task as it was at that event (the client
    updates one task object in place)."""
    return [(task.model_copy(deep=True), update) async for task, update in client.send_message(msg)]


async def until_final(client: Any, task_id: str, timeout: float = 60) -> Task:
    deadline = time.monotonic() + timeout
    while True:
        task = await client.get_task(TaskQueryParams(id=task_id))
        if task.status.state in FINAL:
            return task
        assert time.monotonic() < deadline, f"task {task_id} stayed {task.status.state}"
        await asyncio.sleep(0.05)


def answer(task: Task) -> tuple[str, dict[str, Any] | None]:
    """The final status message's text and the request SUMMARY of its data part."""
    assert task.status.message is not None
    parts = [p.root for p in task.status.message.parts]
    text = " ".join(p.text for p in parts if isinstance(p, TextPart))
    data = [p.data for p in parts if isinstance(p, DataPart)]
    return text, (data[0]["request"] if data else None)


def rpc(
    server: RunningServer, body: bytes | dict[str, Any], *, path: str = "/a2a", caller: str = "billing_ops"
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**bearer(caller), "content-type": "application/json"}
    with server.client() as client:
        return client.post(path, content=content, headers=headers)


def stored_tasks(home: Path) -> dict[str, dict[str, Any]]:
    """The a2a_tasks table read straight from SQLite: {id: {"state", "metadata", "history"}}."""
    with sqlite3.connect(home / "state.db") as db:
        rows = db.execute("SELECT id, status, metadata, history FROM a2a_tasks").fetchall()
    return {
        tid: {"state": json.loads(s)["state"], "metadata": json.loads(m or "null"), "history": json.loads(h or "[]")}
        for tid, s, m, h in rows
    }


def requests_of(server: RunningServer) -> list[dict[str, Any]]:
    with server.client() as client:
        return client.get("/api/v1/requests", headers=bearer("vic")).json()["requests"]


# -- the card -------------------------------------------------------------------------------------
def test_the_agent_card_offers_create_team_at_the_url_clients_post_to_with_bearer_auth(server: RunningServer) -> None:
    with server.client() as client:
        raw = client.get("/.well-known/agent-card.json")
        at_endpoint = client.get("/a2a/")  # where CrewAI looks when its endpoint is the card's url
    assert raw.status_code == 200 and at_endpoint.json() == raw.json()
    card = AgentCard.model_validate(raw.json())
    assert card.name == "devops-crew" and card.protocol_version == "0.3.0"
    assert card.url == server.url + "/a2a/"  # the port uvicorn bound, not DEVOPS_CREW_SERVER_PORT's 8080
    assert card.capabilities.streaming is True
    assert raw.json()["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "description": card.security_schemes["bearer"].root.description}
    }
    assert card.security == [{"bearer": []}]
    (skill,) = card.skills
    assert skill.id == "create_team"
    assert {"application/json", "text/plain"} <= set(skill.input_modes or [])
    assert "data part" in skill.description and "plain text" in skill.description
    for field in CapabilityGap.model_fields:
        assert field in skill.description, field
    text_example, json_example = skill.examples or []
    assert CapabilityGap.model_validate(json.loads(json_example)).required_skills
    assert gap_from_message(message(text=text_example), CALLER)["description"] == text_example


def test_the_card_url_is_the_public_url_when_one_is_set(tmp_path: Path) -> None:
    settings = server_settings(tmp_path / "home", public_url="https://crew.example.org/")
    assert agent_card(settings).url == "https://crew.example.org/a2a/"
    plain = server_settings(tmp_path / "home", server_host="10.0.0.7", server_port=9000)
    assert agent_card(plain).url == "http://10.0.0.7:9000/a2a/"


# -- gaps in, tasks out ---------------------------------------------------------------------------
def test_a_gap_sent_as_data_is_acknowledged_at_once_and_polled_to_its_pull_request(server: RunningServer) -> None:
    async def scenario() -> tuple[float, Task, Task]:
        async with a2a(server.url, streaming=False) as client:
            started = time.perf_counter()
            ((ack, _),) = await send(client, message(data=gap_data(1)))
            took = time.perf_counter() - started
            return took, ack, await until_final(client, ack.id)

    took, ack, final = asyncio.run(scenario())
    assert ack.status.state in {TaskState.submitted, TaskState.working} and took < 5
    rid = ack.metadata["request_id"]
    assert final.status.state is TaskState.completed
    text, view = answer(final)
    assert view is not None and view["id"] == rid and view["state"] == "published"
    pr = view["pull_request"]
    assert rid in text and pr["url"] in text and f"#{pr['number']}" in text and view["team"] in text
    assert final.metadata["request_id"] == rid
    assert final.history and final.history[0].role is Role.user  # the caller's message, then ours
    assert final.history[-1].message_id == final.status.message.message_id  # polled history ends with the answer
    (listed,) = requests_of(server)
    assert listed["requester"] == {"id": "billing_ops", "channel": "a2a", "display_name": "billing_ops"}
    gap = server.runtime.service.store.get_request(rid).gap
    assert gap.id == "gap-n1" and gap.requesting_team == "billing_ops"  # the gap named none: the caller's team


def test_a_gap_sent_as_text_streams_progress_and_ends_with_one_answer(server: RunningServer) -> None:
    description = "Field sales needs kotlin and swift mobile apps to log visits offline"

    async def scenario() -> list[tuple[Task, Any]]:
        async with a2a(server.url, "web_frontend", streaming=True) as client:
            return await send(client, message(text=description))

    events = asyncio.run(scenario())
    states = [task.status.state for task, _update in events]
    assert states[0] is TaskState.submitted and states[-1] is TaskState.completed
    updates = [u for _t, u in events if isinstance(u, TaskStatusUpdateEvent)]
    progress = [u for u in updates if u.status.state is TaskState.working]
    assert len(progress) >= 3, [u.status.message for u in progress]  # the engine's steps, as they happen
    assert [u.final for u in updates] == [False] * (len(updates) - 1) + [True]
    final_task = events[-1][0]
    text, view = answer(final_task)
    assert view is not None and view["pull_request"]["url"] in text
    request = server.runtime.service.store.get_request(view["id"])
    assert request.gap.description == description and request.gap.requesting_team == "web_frontend"
    assert request.requester is not None and (request.requester.id, request.requester.channel) == (
        "web_frontend",
        "a2a",
    )


def test_a_message_with_data_and_text_takes_the_data_and_the_text_fills_a_missing_description() -> None:
    both = gap_from_message(message(text="from the text", data={"required_skills": ["kotlin"]}), CALLER)
    assert both == {"required_skills": ["kotlin"], "description": "from the text", "requesting_team": "billing_ops"}
    data_wins = gap_from_message(
        message(text="ignored", data={"description": "d", "requesting_team": "billing_ops"}), CALLER
    )
    assert data_wins == {"description": "d", "requesting_team": "billing_ops"}
    with pytest.raises(InvalidInput, match="files gaps for its own team"):  # not in another team's name
        gap_from_message(message(data={"description": "d", "requesting_team": "ops"}), CALLER)
    with pytest.raises(InvalidInput, match="carries no gap"):
        gap_from_message(message(), CALLER)
    with pytest.raises(InvalidInput, match="one gap per message"):
        two = message(data={"description": "a"})
        two.parts.append(Part(root=DataPart(data={"description": "b"})))
        gap_from_message(two, CALLER)
    with pytest.raises(InvalidInput, match="file parts are not read"):
        files = message(text="see the file")
        files.parts.append(Part(root=FilePart(file=FileWithUri(uri="https://example.org/gap.json"))))
        gap_from_message(files, CALLER)


def test_every_request_state_maps_to_a_task_state_with_its_reason() -> None:
    base = {"id": "req-1", "gap_id": "g", "team": "t", "matched_team": "ops", "match_score": 0.9, "error": "boom"}
    base |= {"pull_request": {"number": 3, "url": "u"}, "rollback": {"pull_request": {"number": 4, "url": "v"}}}
    decision = {"outcome": "refused", "rule": "reserved-name", "message": "no", "remedy": ""}
    phrases = {
        "published": "pull request #3",
        "merged": "merged",
        "rolled_back": "rolled back by pull request #4",
        "reuse_existing": "reuse team ops",
        "awaiting_approval": "waits for a human approver",
        "refused": "refused by rule reserved-name",
        "rejected": "boom",
        "failed": "failed at",
    }
    assert set(SETTLED) | IN_PROGRESS == set(RequestState) and not set(SETTLED) & IN_PROGRESS
    for state in RequestState:
        got = outcome({**base, "state": state.value, "decision": decision})
        if state in IN_PROGRESS:
            assert got is None, state
            continue
        assert got is not None and got.state is SETTLED[state] and "req-1" in got.text, state
        assert phrases[state.value] in got.text, (state, got.text)
    rate = {**base, "state": "refused", "decision": {**decision, "rule": "rate-limit", "message": "5 today"}}
    held = outcome(rate)
    assert held is not None and held.state is TaskState.input_required and "override" in held.text
    assert outcome({**base, "state": "some_future_state", "decision": None}).state is TaskState.completed
    assert refusal(InvalidInput("invalid input: x\nmore")).text == "invalid input: x"
    assert refusal(PermissionDenied("no")).state is TaskState.rejected
    assert refusal(Unavailable("draining")).state is TaskState.failed
    assert "internal error" in refusal(KeyError("secret detail")).text


def test_unauthenticated_and_wrong_token_calls_are_refused_with_401_and_no_task(server: RunningServer) -> None:
    send_body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "message/send",
        "params": {"message": message(data=gap_data(1)).model_dump(mode="json", by_alias=True, exclude_none=True)},
    }
    with server.client() as client:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-token-of-anyone-at-all"},
            bearer("alice"),
            {"Authorization": "Basic eDp5"},
        ):
            for path in ("/a2a", "/a2a/"):
                refused = client.post(path, json=send_body, headers=headers)
                assert refused.status_code == 401, (headers, refused.text)
                assert refused.headers["www-authenticate"].startswith("Bearer")
                body = refused.json()
                assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32000
                assert "authentication required" in body["error"]["message"]
        unread = client.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "x"}})
        assert unread.status_code == 401

    async def with_a_wrong_token() -> None:
        async with a2a(server.url, streaming=False, token="wrong-token-0123456789") as client:
            with pytest.raises(A2AClientHTTPError) as refused:
                await send(client, message(text="needs kotlin apps"))
            assert refused.value.status_code == 401

    asyncio.run(with_a_wrong_token())
    assert stored_tasks(server.runtime.settings.home) == {} and requests_of(server) == []


def test_a_gap_over_the_cost_ceiling_waits_for_a_human_and_completes_once_approved(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", monthly_cost_ceiling_usd=5)) as server:

        async def ask() -> tuple[Task, Task]:
            async with a2a(server.url, streaming=False) as client:
                ((ack, _),) = await send(client, message(data=gap_data(2)))
                waiting = await until_final(client, ack.id)
                polled = [await client.get_task(TaskQueryParams(id=ack.id)) for _ in range(3)]
                assert {len(p.history or []) for p in polled} == {len(waiting.history or [])}  # polling adds nothing
                (*_, (again, _)) = await send(client, message(text="any news?", task_id=ack.id))
                return waiting, again

        waiting, again = asyncio.run(ask())
        assert waiting.status.state is TaskState.input_required
        text, view = answer(waiting)
        assert view["state"] == "awaiting_approval" and "cost-ceiling" in text and view["id"] in text
        assert again.status.state is TaskState.input_required and "cost-ceiling" in answer(again)[0]

        with server.client() as client:  # a human approver (four eyes: not the requester) approves
            approved = client.post(
                f"/api/v1/requests/{view['id']}/approve", headers=bearer("bob"), json={"reason": "ok"}
            )
            assert approved.status_code == 200 and approved.json()["request"]["state"] == "published"

        async def look() -> Task:
            async with a2a(server.url, streaming=False) as client:
                return await client.get_task(TaskQueryParams(id=waiting.id))

        done = asyncio.run(look())  # tasks/get brings the task to its request's state
        assert done.status.state is TaskState.completed
        assert answer(done)[1]["pull_request"]["url"] in answer(done)[0]


def test_rate_limited_gaps_wait_for_an_override_and_other_rules_reject(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", rate_limit_per_day=1)) as server:

        async def scenario() -> list[Task]:
            async with a2a(server.url, streaming=True) as client:
                finals = []
                for msg in (
                    message(data=gap_data(3)),
                    message(data=gap_data(4)),
                    message(data=gap_data(5, proposed_name="platform")),
                ):
                    events = await send(client, msg)
                    finals.append(events[-1][0])
                return finals

        first, limited, reserved = asyncio.run(scenario())
    assert first.status.state is TaskState.completed
    assert limited.status.state is TaskState.input_required and "rate-limit" in answer(limited)[0]
    assert reserved.status.state is TaskState.rejected, answer(reserved)[0]  # the name rule comes before the limit
    assert "reserved-name" in answer(reserved)[0]


def test_an_invalid_gap_ends_rejected_with_the_field_named_and_records_nothing(server: RunningServer) -> None:
    async def scenario() -> list[Task]:
        async with a2a(server.url, streaming=False) as client:
            bad = [
                message(data={"description": "charts", "required_skills": ["<script>"]}),
                message(data={"urgency": "now"}),
                message(data={"description": "x", "colour": "red"}),
            ]
            return [(await send(client, m))[0][0] for m in bad]

    tasks = asyncio.run(scenario())
    for task in tasks:
        assert task.status.state is TaskState.rejected
        text, view = answer(task)
        assert text.startswith("invalid input: ") and view is None and "\n" not in text
        assert task.metadata is None  # no request
    texts = [answer(t)[0] for t in tasks]
    assert "required_skills.0" in texts[0] and "description" in texts[1] and "colour" in texts[2]
    assert requests_of(server) == []


def test_the_same_gap_again_answers_with_its_existing_request(server: RunningServer) -> None:
    async def scenario() -> tuple[Task, Task]:
        async with a2a(server.url, streaming=False) as client:
            ((first, _),) = await send(client, message(data=gap_data(6)))
            first = await until_final(client, first.id)
            ((again, _),) = await send(client, message(data=gap_data(6)))
            return first, await until_final(client, again.id)

    first, again = asyncio.run(scenario())
    assert again.id != first.id and again.metadata["request_id"] == first.metadata["request_id"]
    assert again.status.state is TaskState.completed
    text, view = answer(again)
    assert f"already has request {view['id']}" in text and view["duplicate"] is True
    assert len(requests_of(server)) == 1


# -- tasks outlive the process --------------------------------------------------------------------
def test_after_a_restart_tasks_get_answers_and_open_tasks_are_brought_up_to_date(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = server_settings(home)
    with running_server(settings) as first:

        async def complete_one() -> Task:
            async with a2a(first.url, streaming=False) as client:
                ((ack, _),) = await send(client, message(data=gap_data(7)))
                return await until_final(client, ack.id)

        done = asyncio.run(complete_one())
    # Two tasks a crash left open: one whose request was published meanwhile, one whose request was
    # recorded but never run.
    with CrewService(settings) as service:
        stalled = service.accept(CALLER, gap_data(8))
    stale_id, stalled_task_id = str(uuid.uuid4()), str(uuid.uuid4())
    open_tasks = {
        stale_id: (TaskState.working, done.metadata["request_id"]),
        stalled_task_id: (TaskState.submitted, stalled["id"]),
    }
    asyncio.run(_save_open_tasks(settings, open_tasks))
    assert stored_tasks(home)[stale_id]["state"] == "working"

    with running_server(settings) as second:  # a new process on the same database
        deadline = time.monotonic() + 30
        while stored_tasks(home)[stalled_task_id]["state"] != "completed":
            assert time.monotonic() < deadline, stored_tasks(home)[stalled_task_id]
            time.sleep(0.05)
        assert stored_tasks(home)[stale_id]["state"] == "completed"  # at start-up, before anyone asked

        async def ask() -> Task:
            async with a2a(second.url, streaming=False) as client:
                return await client.get_task(TaskQueryParams(id=done.id))

        again = asyncio.run(ask())
    assert again.status.state is TaskState.completed and answer(again) == answer(done)
    stalled_answer = stored_tasks(home)[stalled_task_id]["history"][-1]["parts"]
    assert stalled["id"] in stalled_answer[0]["text"] and "pull request #" in stalled_answer[0]["text"]


def test_a_shutdown_mid_run_stops_promptly_and_the_next_start_finishes_the_task(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = server_settings(home, server_workers=1)
    with running_server(settings) as first:

        async def send_many() -> list[str]:
            async with a2a(first.url, streaming=False) as client:
                return [(await send(client, message(data=gap_data(20 + n))))[0][0].id for n in range(4)]

        ids = asyncio.run(send_many())
        started = time.monotonic()
        first.stop()  # one worker: runs still queued behind the first are dropped, their tasks stay open
        assert time.monotonic() - started < 15
    left = {tid: stored_tasks(home)[tid]["state"] for tid in ids}
    assert set(left.values()) <= {"submitted", "working", "completed"}, left
    assert set(left.values()) != {"completed"}  # some were cut off (else this test shows nothing)
    with running_server(settings):
        deadline = time.monotonic() + 30
        while {stored_tasks(home)[tid]["state"] for tid in ids} != {"completed"}:
            assert time.monotonic() < deadline, {tid: stored_tasks(home)[tid]["state"] for tid in ids}
            time.sleep(0.05)


@pytest.mark.postgres
def test_tasks_live_in_postgresql_too_and_a_second_replica_answers(tmp_path: Path, pg_url: str) -> None:
    settings = server_settings(tmp_path / "home", database_url=pg_url)
    replica = server_settings(tmp_path / "other-home", database_url=pg_url)
    with running_server(settings) as first, running_server(replica) as second:

        async def scenario() -> tuple[Task, Task]:
            async with a2a(first.url, streaming=True) as one, a2a(second.url, streaming=False) as other:
                events = await send(one, message(data=gap_data(10)))
                return events[-1][0], await other.get_task(TaskQueryParams(id=events[-1][0].id))

        done, elsewhere = asyncio.run(scenario())
    assert done.status.state is TaskState.completed and elsewhere.status.state is TaskState.completed
    assert answer(elsewhere)[1]["id"] == done.metadata["request_id"]

    async def open_ones() -> list[Task]:
        store = RequestTaskStore(task_engine(pg_url))
        try:
            await _save_open_tasks(settings, {"b" * 36: (TaskState.working, done.metadata["request_id"])})
            return await store.open_tasks()
        finally:
            await store.close()

    assert [t.id for t in asyncio.run(open_ones())] == ["b" * 36]  # the JSON query works on PostgreSQL


async def _save_open_tasks(settings: Settings, tasks: dict[str, tuple[TaskState, str]]) -> None:
    store = RequestTaskStore(task_engine(settings.effective_database_url))
    try:
        for task_id, (state, request_id) in tasks.items():
            await store.save(
                Task(
                    id=task_id,
                    context_id=str(uuid.uuid4()),
                    status=TaskStatus(state=state),
                    history=[message(text="a gap")],
                    metadata={"request_id": request_id},
                )
            )
    finally:
        await store.close()


def test_the_async_url_is_the_state_stores_database_with_an_async_driver(tmp_path: Path) -> None:
    assert async_database_url(f"sqlite:///{tmp_path}/state.db") == f"sqlite+aiosqlite:///{tmp_path}/state.db"
    assert async_database_url("postgresql://u:p@db:5432/crew") == "postgresql+psycopg://u:p@db:5432/crew"
    assert async_database_url("postgres://u@db/crew") == "postgresql+psycopg://u@db/crew"
    assert async_database_url("postgresql+psycopg://u@db/crew") == "postgresql+psycopg://u@db/crew"
    from devops_automation.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SQLite or PostgreSQL"):
        async_database_url("mysql://u@db/crew")


def test_a_stored_task_history_ends_with_its_answer_once() -> None:
    answer_message = message(text="req-1: done")
    task = Task(
        id="t",
        context_id="c",
        status=TaskStatus(state=TaskState.completed, message=answer_message),
        history=[message(text="gap")],
    )
    stored = with_answer_in_history(task)
    assert [m.message_id for m in stored.history] == [task.history[0].message_id, answer_message.message_id]
    assert with_answer_in_history(stored) is stored
    doubled = stored.model_copy(update={"history": [*stored.history, answer_message]})
    assert len(with_answer_in_history(doubled).history) == 2


# -- JSON-RPC errors ------------------------------------------------------------------------------
def test_malformed_calls_get_json_rpc_errors_never_a_500(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", max_request_bytes=4096)) as server:
        cases: list[tuple[bytes | dict[str, Any], int]] = [
            (b"{not json", -32700),
            (b"\xff\xfe", -32700),
            (b"[" * 2000 + b"]" * 2000, -32700),  # nested deeper than the parser recurses
            ({"jsonrpc": "2.0", "id": 1, "method": "tasks/explode", "params": {}}, -32601),
            ({"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {"message": {"parts": 3}}}, -32602),
            ({"jsonrpc": "2.0", "id": 3}, -32600),
            ({"jsonrpc": "1.0", "id": 3, "method": "message/send", "params": {}}, -32600),
            (b"[]", -32600),
            (b'"just a string"', -32600),
            ({"jsonrpc": "2.0", "id": 4, "method": "tasks/get", "params": {"id": "no-such-task"}}, -32001),
            ({"jsonrpc": "2.0", "id": 5, "method": "tasks/cancel", "params": {"id": "no-such-task"}}, -32001),
        ]
        long_context = message(text="needs kotlin apps").model_dump(mode="json", by_alias=True, exclude_none=True)
        long_context["contextId"] = "c" * 37
        cases.append(
            ({"jsonrpc": "2.0", "id": 6, "method": "message/send", "params": {"message": long_context}}, -32602)
        )
        for body, code in cases:
            for path in ("/a2a", "/a2a/"):
                answered = rpc(server, body, path=path)
                assert answered.status_code < 500, (body, answered.text)
                error = answered.json()["error"]
                assert error["code"] == code, (body, error)
                assert "Traceback" not in answered.text
        for path in ("/a2a", "/a2a/"):
            oversize = rpc(server, b'{"jsonrpc": "2.0", "pad": "' + b"x" * 5000 + b'"}', path=path)
            assert oversize.status_code == 413 and oversize.json()["error"]["code"] == -32600
        assert requests_of(server) == [] and stored_tasks(server.runtime.settings.home) == {}


def test_a_waiting_task_cannot_be_cancelled_over_a2a_and_says_what_to_do(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", monthly_cost_ceiling_usd=5)) as server:

        async def scenario() -> Task:
            async with a2a(server.url, streaming=False) as client:
                ((ack, _),) = await send(client, message(data=gap_data(9)))
                return await until_final(client, ack.id)

        waiting = asyncio.run(scenario())
        answered = rpc(server, {"jsonrpc": "2.0", "id": 1, "method": "tasks/cancel", "params": {"id": waiting.id}})
    assert answered.status_code == 200 and answered.json()["error"]["code"] == -32002
    assert f"/api/v1/requests/{waiting.metadata['request_id']}/reject" in answered.json()["error"]["message"]


# -- a CrewAI agent as the caller -----------------------------------------------------------------
@pytest.mark.parametrize("updates", ["streaming", "polling"])
def test_a_crewai_agent_delegates_a_gap_and_gets_the_pull_request_url_back(
    server: RunningServer, updates: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crewai import Agent, Crew
    from crewai import Task as CrewTask
    from crewai.a2a.auth.client_schemes import BearerTokenAuth
    from crewai.a2a.config import A2AClientConfig
    from crewai.a2a.updates import PollingConfig, StreamingConfig

    from .crew.fake_model import FakeModel, Reply, message_text
    from .crew.scripted import Recorder, ScriptedLLM

    real_home = Path(os.environ.get("HOME", "/nonexistent"))
    before = _home_entries(real_home)
    monkeypatch.setenv("HOME", str(tmp_path / "crewai-home"))
    endpoint = server.url + "/a2a/"  # the card's url; CrewAI reads the card there and posts to it
    seen: dict[str, str] = {}

    def final_answer(messages: Any, _tools: Any, _schema: Any) -> Reply:
        found = re.search(r"fake://pulls/\d+", message_text(messages))
        seen["url"] = found.group(0) if found else ""
        return Reply(content=json.dumps({"a2a_ids": [], "message": f"Pull request: {seen['url']}", "is_a2a": False}))

    delegate = {
        "a2a_ids": [endpoint],
        "message": "We need a team that builds kotlin and swift apps for field sales",
        "is_a2a": True,
    }
    llm = ScriptedLLM(
        model="scripted",
        model_impl=FakeModel(),
        recorder=Recorder(),
        queue=[Reply(content=json.dumps(delegate)), final_answer],
    )
    config = A2AClientConfig(
        endpoint=endpoint,
        auth=BearerTokenAuth(token=A2A_CALLERS["web_frontend"]),
        timeout=60,
        updates=PollingConfig(interval=0.1) if updates == "polling" else StreamingConfig(),
    )
    planner = Agent(role="planner", goal="get missing teams created", backstory="plans the fleet", llm=llm, a2a=config)
    task = CrewTask(
        description="Get a team for kotlin and swift apps and report its pull request URL.",
        expected_output="the URL",
        agent=planner,
    )
    result = Crew(agents=[planner], tasks=[task]).kickoff()

    (request,) = requests_of(server)
    assert request["state"] == "published" and request["requester"]["id"] == "web_frontend"
    assert request["requester"]["channel"] == "a2a"
    assert seen["url"] == request["pull_request"]["url"]  # the remote answer reached the client's LLM
    assert request["pull_request"]["url"] in result.raw
    assert _home_entries(real_home) == before  # CrewAI wrote nothing into the real $HOME


def _home_entries(home: Path) -> set[str]:
    found: set[str] = set()
    for folder in (home, home / ".config", home / ".local" / "share", home / ".cache"):
        if folder.is_dir():
            found |= {str(p) for p in folder.iterdir()}
    return found


def test_a_caller_cannot_write_into_another_teams_task(tmp_path: Path) -> None:
    """A task takes messages from the team whose request it follows: another team's message to it is
    answered as for a task that does not exist, and nothing lands in the history."""
    with running_server(server_settings(tmp_path / "home", monthly_cost_ceiling_usd=5)) as server:

        async def open_task() -> Task:
            async with a2a(server.url, streaming=False, caller="web_frontend") as client:
                ((ack, _),) = await send(client, message(data=gap_data(40)))
                return await until_final(client, ack.id)

        waiting = asyncio.run(open_task())
        assert waiting.status.state is TaskState.input_required
        intruder = message(text="I approve", data={"state": "approved"}, task_id=waiting.id)
        body = intruder.model_dump(mode="json", by_alias=True, exclude_none=True)
        body["contextId"] = waiting.context_id
        for method in ("message/send", "message/stream"):
            answered = rpc(server, {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": body}})
            assert answered.status_code < 500 and answered.json()["error"]["code"] == -32001, answered.text
        history = stored_tasks(server.runtime.settings.home)[waiting.id]["history"]
        assert all("I approve" not in json.dumps(turn) for turn in history)
        own = rpc(
            server,
            {"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {"message": body}},
            caller="web_frontend",
        )
        assert "result" in own.json(), own.text  # its own team may still write


def test_bodies_a2a_sdk_would_choke_on_later_are_refused_up_front(server: RunningServer) -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(300):
        cursor["x"] = {}
        cursor = cursor["x"]
    plain = message(text="needs kotlin apps").model_dump(mode="json", by_alias=True, exclude_none=True)
    nested = {**plain, "metadata": deep}
    started = time.monotonic()
    answered = rpc(server, {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": nested}})
    assert answered.json()["error"]["code"] == -32602 and "nests deeper" in answered.json()["error"]["message"]
    assert time.monotonic() - started < 5
    raw = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {"message": plain}})
    surrogate = raw.replace("needs kotlin apps", "needs \\ud800 apps").encode()  # a JSON escape, not text
    assert b"\\ud800" in surrogate
    answered = rpc(server, surrogate)
    assert answered.status_code < 500 and answered.json()["error"]["code"] in {-32602, -32700}, answered.text
    assert "INSERT" not in answered.text and "codec" not in answered.text
    assert requests_of(server) == []


def test_a_caller_files_gaps_for_its_own_team_only(server: RunningServer) -> None:
    async def ask() -> Task:
        async with a2a(server.url, streaming=False) as client:  # billing_ops
            ((ack, _),) = await send(client, message(data=gap_data(41, requesting_team="web_frontend")))
            return await until_final(client, ack.id)

    refused = asyncio.run(ask())
    assert refused.status.state is TaskState.rejected
    assert "requesting_team" in answer(refused)[0] and requests_of(server) == []


def test_a_dry_run_over_a2a_answers_with_the_diff_and_records_no_request(server: RunningServer) -> None:
    async def scenario() -> Task:
        async with a2a(server.url, streaming=False) as client:
            msg = message(data=gap_data(7))
            msg.metadata = {"dry_run": True}
            ((task, _),) = await send(client, msg)
            return task if task.status.state in FINAL else await until_final(client, task.id)

    final = asyncio.run(scenario())
    assert final.status.state is TaskState.completed
    assert final.status.message is not None
    parts = [p.root for p in final.status.message.parts]
    text = " ".join(p.text for p in parts if isinstance(p, TextPart))
    [data] = [p.data for p in parts if isinstance(p, DataPart)]
    assert text.startswith("dry run: scaffolded for team mobile_team_7") and "nothing stored" in text
    assert data["dry_run"] is True and "diff --git a/teams/mobile_team_7/team.yaml" in data["diff"]
    assert requests_of(server) == []  # nothing but the task itself is stored

    # a gap for another team is refused before anything runs, as a submission would be
    async def other() -> Task:
        async with a2a(server.url, streaming=False) as client:
            msg = message(data=gap_data(8, requesting_team="web_frontend"))
            msg.metadata = {"dry_run": True}
            ((task, _),) = await send(client, msg)
            return task

    refused = asyncio.run(other())
    assert refused.status.state is TaskState.rejected
