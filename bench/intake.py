"""A2A intake under load: 200 gaps from 20 concurrent A2A clients against `devops-crew serve`.

    .venv/bin/python bench/intake.py --clients 20 --per-client 10

The server runs in its own process (`devops_automation.server.run.serve`, as `devops-crew serve` runs it) on
127.0.0.1 with the offline drafter, the fake forge, render validation off (`--validate` turns it on), the
rate limit at 5 a day and no cooldown. Each client sends its gaps one after another with `message/send`
(non-blocking: the answer is the task as recorded) and the benchmark reads the task table until every task
is final. Before that, one client alone sends 20 gaps (`--sequential`): the acknowledgement with no other
caller.

Checks, for each load: no task lost or duplicated (as many tasks and requests as gaps sent, one request per
task), exactly 5 pull requests opened (5 tasks completed; 5 `auto/team-*` branches pushed), and every other
task `input-required` naming the rule (rate-limit). Prints the acknowledgement latency (p50, p99; target
p99 < 200 ms) and the time until every task was final, beside the floor: the same load against a bare
a2a-sdk server (a trivial executor that answers a completed task at once) on this machine, with its tasks in
memory and in SQLite. Exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")
# As the product does (quiet.OFFLINE_ENV), for the bare a2a-sdk floor too: set before a2a is imported.
os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import DataPart, Message, Part, Role, Task, TaskQueryParams, TaskState

FINAL = {"completed", "failed", "rejected", "canceled", "input-required"}
RATE_LIMIT = 5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tokens(clients: int) -> dict[str, str]:
    return {f"bench_team_{i:02d}": f"bench-a2a-token-{i:02d}-{uuid.uuid4().hex[:12]}" for i in range(clients)}


# -- the servers (each in its own process) ----------------------------------------------------------
def serve_crew(
    home: str, database_url: str | None, callers: dict[str, str], workers: int, validate: bool, ready: Any
) -> None:
    """`devops-crew serve`'s own entry point, with the bench's settings."""
    from devops_automation.quiet import silence_crewai
    from devops_automation.server.run import serve
    from devops_automation.settings import Settings

    silence_crewai()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        home=Path(home),
        database_url=database_url,
        forge="fake",
        validate_render=validate,
        rate_limit_per_day=RATE_LIMIT,
        cooldown_seconds=0,
        server_workers=workers,
        a2a_tokens=",".join(f"{team}:{token}" for team, token in callers.items()),
        shutdown_grace_seconds=10,
    )
    serve(settings, host="127.0.0.1", port=0, ready=ready.send)


def serve_floor(db_url: str | None, ready: Any) -> None:
    """A bare a2a-sdk server: a trivial executor answering a completed task at once."""
    import uvicorn
    from a2a.server.agent_execution import AgentExecutor
    from a2a.server.apps import A2AStarletteApplication
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.tasks import DatabaseTaskStore, InMemoryTaskStore, TaskStore
    from a2a.types import AgentCapabilities, AgentCard, TaskStatus

    class Trivial(AgentExecutor):
        async def execute(self, context: Any, event_queue: Any) -> None:
            status = TaskStatus(state=TaskState.completed)
            await event_queue.enqueue_event(Task(id=context.task_id, context_id=context.context_id, status=status))

        async def cancel(self, context: Any, event_queue: Any) -> None:
            raise NotImplementedError

    store: TaskStore = InMemoryTaskStore()
    if db_url:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(db_url)
        store = DatabaseTaskStore(engine)

        async def create_table() -> None:  # once, before concurrent first calls race to create it
            await store.initialize()
            await engine.dispose()

        asyncio.run(create_table())
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    card = AgentCard(
        name="floor",
        description="trivial",
        url=f"http://127.0.0.1:{port}/",
        version="0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[],
    )
    app = A2AStarletteApplication(card, DefaultRequestHandler(Trivial(), store)).build()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    ready.send(f"http://127.0.0.1:{port}")
    server.run(sockets=[sock])


class Child:
    """A server process; ``url`` once it answers. Stopped with SIGTERM (the drain `serve` does)."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self.process = context.Process(target=target, args=(*args, theirs), daemon=True)
        self.process.start()
        if not ours.poll(120):
            raise SystemExit("the server did not start within 120 s")
        self.url: str = ours.recv()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(30)


# -- the load ---------------------------------------------------------------------------------------
def gap(n: int) -> dict[str, Any]:
    return {
        "id": f"bench-gap-{n}",
        "description": f"Bench gap {n}: tasks need quantum widget {n} calibration for the zyx{n} pipeline",
        "required_skills": [f"quantum widget {n}", f"zyx{n} calibration"],
        "proposed_name": f"bench_intake_{n}",
    }


async def one_client(url: str, token: str, first: int, count: int, acks: list[float], ids: list[str]) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False, polling=True)).create(card)
        for n in range(first, first + count):
            msg = Message(role=Role.user, message_id=str(uuid.uuid4()), parts=[Part(root=DataPart(data=gap(n)))])
            started = time.perf_counter()
            async for task, _update in client.send_message(msg):
                acks.append(time.perf_counter() - started)
                ids.append(task.id)


async def load(url: str, callers: dict[str, str], per_client: int) -> tuple[list[float], list[str], float]:
    acks: list[float] = []
    ids: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(one_client(url, token, i * per_client, per_client, acks, ids) for i, token in enumerate(callers.values()))
    )
    return acks, ids, started


def query(url: str, sql: str) -> list[Any]:
    from sqlalchemy import create_engine, text

    from devops_automation.store import normalize_url

    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def wait_final(url: str, expected: int, started: float, timeout: float) -> float:
    """Seconds from the first send until every task in the table is final (read straight from the database)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = query(url, "SELECT status FROM a2a_tasks")
        states = [(s if isinstance(s, dict) else json.loads(s))["state"] for (s,) in rows]
        if len(states) >= expected and all(s in FINAL for s in states):
            return time.perf_counter() - started
        if time.monotonic() > deadline:
            open_ = sum(s not in FINAL for s in states)
            raise SystemExit(f"{open_} of {len(states)} tasks still open after {timeout:.0f} s")
        time.sleep(0.02)


async def read_back(url: str, token: str, ids: list[str]) -> list[Task]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=False, polling=True)).create(card)
        return [await client.get_task(TaskQueryParams(id=i)) for i in ids]


def answer_text(task: Task) -> str:
    message = task.status.message
    return " ".join(p.root.text for p in (message.parts if message else []) if p.root.kind == "text")


def bench_crew(clients: int, per_client: int, workers: int, validate: bool, database_url: str | None) -> bool:
    """One load on a fresh server; False when a check failed."""
    home = Path(tempfile.mkdtemp(prefix="devops-crew-bench-intake-"))
    callers = tokens(clients)
    total = clients * per_client
    try:
        url = database_url or f"sqlite:///{home / 'state.db'}"
        server = Child(serve_crew, str(home), database_url, callers, workers, validate)
        try:
            acks, ids, started = asyncio.run(load(server.url, callers, per_client))
            final_after = wait_final(url, total, started, timeout=600)
            tasks = asyncio.run(read_back(server.url, next(iter(callers.values())), ids))
        finally:
            server.stop()
        report(acks, final_after, total, clients, workers)
        return check(home, url, tasks, ids, total)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def report(acks: list[float], final_after: float, total: int, clients: int, workers: int) -> None:
    who = f"{clients} concurrent clients" if clients > 1 else "one client, one request at a time"
    print(f"intake: {total} A2A requests from {who}, {workers} workers, rate limit {RATE_LIMIT}")
    p50, p99, top = statistics.median(acks) * 1000, percentile(acks, 0.99) * 1000, max(acks) * 1000
    print(f"intake: acknowledgement p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms (target p99 < 200 ms)")
    print(f"intake: every task final {final_after:.2f} s after the first send")


def check(home: Path, url: str, tasks: list[Task], ids: list[str], total: int) -> bool:
    states = [t.status.state for t in tasks]
    request_ids = [(t.metadata or {}).get("request_id") for t in tasks]
    ((requests,),) = query(url, "SELECT count(*) FROM requests")
    ((rows,),) = query(url, "SELECT count(*) FROM a2a_tasks")
    branches = subprocess.run(
        ["git", "--git-dir", str(home / "fake-forge" / "teams.git"), "branch", "--list", "auto/team-*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    completed = [t for t in tasks if t.status.state is TaskState.completed]
    waiting = [t for t in tasks if t.status.state is TaskState.input_required]
    problems = []
    if len(set(ids)) != total or rows != total:
        problems.append(f"{len(set(ids))} task ids answered, {rows} stored, {total} sent")
    if len(set(request_ids)) != total or None in request_ids or requests != total:
        problems.append(f"{len(set(request_ids))} distinct requests named, {requests} stored, {total} sent")
    if len(completed) != RATE_LIMIT or len(branches) != RATE_LIMIT:
        problems.append(f"{len(completed)} completed, {len(branches)} branches pushed, expected {RATE_LIMIT}")
    if not all("pull request #" in answer_text(t) for t in completed):
        problems.append("a completed task does not name its pull request")
    unexplained = [t for t in waiting if "rate-limit" not in answer_text(t)]
    if len(waiting) != total - RATE_LIMIT or unexplained:
        others = sorted({s.value for s in states} - {"completed", "input-required"})
        problems.append(f"{len(waiting)} waiting ({len(unexplained)} without the rule), other states: {others}")
    if problems:
        for task in tasks:  # what went wrong, one line each
            if task.status.state not in (TaskState.completed, TaskState.input_required):
                print(f"intake: {task.status.state.value}: {answer_text(task)[:300]}")
        print("intake: FAILED: " + "; ".join(problems))
        return False
    print(
        f"intake: checks passed: {total} tasks and {requests} requests, one each; {len(completed)} pull requests "
        f"opened ({len(branches)} branches); {len(waiting)} input-required by rule rate-limit"
    )
    return True


def bench_floor(clients: int, per_client: int) -> None:
    callers = tokens(clients)
    for label, db in (("in memory", None), ("SQLite", "sqlite")):
        root = Path(tempfile.mkdtemp(prefix="devops-crew-bench-floor-"))
        try:
            url = f"sqlite+aiosqlite:///{root / 'tasks.db'}" if db else None
            server = Child(serve_floor, url)
            try:
                acks, _ids, started = asyncio.run(load(server.url, callers, per_client))
                elapsed = time.perf_counter() - started
            finally:
                server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(
            f"floor: bare a2a-sdk, trivial executor, tasks {label}: acknowledgement p50 "
            f"{statistics.median(acks) * 1000:.1f} ms, p99 {percentile(acks, 0.99) * 1000:.1f} ms; "
            f"all {len(acks)} answered in {elapsed:.2f} s"
        )


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def bench_oneshot(runs: int) -> None:
    """``devops-crew request`` as a user runs it, on embedded defaults with full render validation: each in
    a fresh process that builds the engine itself, and the same against a running ``devops-crew serve``
    (DEVOPS_CREW_SERVER_URL). Prints both medians side by side."""
    exe = str(Path(sys.executable).with_name("devops-crew"))
    root = Path(tempfile.mkdtemp(prefix="oneshot-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "GITHUB_", "OPENAI_"))}
    base.update(DEVOPS_CREW_COOLDOWN_SECONDS="0", DEVOPS_CREW_RATE_LIMIT="1000", HOME=str(root))
    token = "oneshot-token-" + uuid.uuid4().hex
    users = json.dumps({"ops": {"roles": ["all"], "token": token}})
    port = free_port()
    server = subprocess.Popen(
        [exe, "serve", "--port", str(port)],
        env={**base, "DEVOPS_CREW_HOME": str(root / "server"), "DEVOPS_CREW_WEB_USERS": users},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        while "serving at" not in (line := server.stderr.readline()):
            if not line and server.poll() is not None:
                raise SystemExit("devops-crew serve did not start")
        timings: dict[str, list[float]] = {"local": [], "server": []}
        for n in range(runs):
            for mode in ("local", "server"):
                env = {**base, "DEVOPS_CREW_HOME": str(root / f"{mode}-{n}")}
                if mode == "server":
                    env.update(DEVOPS_CREW_SERVER_URL=f"http://127.0.0.1:{port}", DEVOPS_CREW_SERVER_TOKEN=token)
                skill = f"lang{n}{mode[0]}"
                started = time.perf_counter()
                done = subprocess.run(
                    [exe, "request", f"We need {skill} services built", "--skill", skill, "-q"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                timings[mode].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise SystemExit(f"{mode} request failed: {done.stdout}{done.stderr}")
        local, remote = (statistics.median(timings[m]) for m in ("local", "server"))
        print(
            f"one-shot `devops-crew request` (validated render, PR opened), median of {runs}: "
            f"{local:.2f} s on its own, {remote:.2f} s against a running server ({local / remote:.1f}x)"
        )
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="DEVOPS_CREW_SERVER_WORKERS")
    parser.add_argument("--validate", action="store_true", help="validate each render (seconds per PR)")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite in a temporary home)")
    parser.add_argument("--sequential", type=int, default=20, help="first, this many gaps from one client (0: skip)")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare a2a-sdk floor")
    parser.add_argument("--oneshot", type=int, default=3, help="one-shot `devops-crew request` runs each way (0: skip)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if not args.no_floor:
        bench_floor(args.clients, args.per_client)
    passed = True
    if args.sequential and not args.database_url:  # one empty database per phase: only SQLite makes its own
        passed = bench_crew(1, args.sequential, args.workers, args.validate, args.database_url)
    passed = bench_crew(args.clients, args.per_client, args.workers, args.validate, args.database_url) and passed
    if args.oneshot:
        bench_oneshot(args.oneshot)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
