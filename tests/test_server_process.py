"""``devops-crew serve`` as the pod runs it: a real process, real signals, a real validated render.

SIGTERM mid-run: intake stops, the run stops at its next saved state, the process exits within the grace
period, and the next start continues the request to its pull request. While a worker renders and
validates, the event loop keeps answering. The CLI, pointed at the server, returns fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from devops_automation.store import open_store

from .helpers import new_gap
from .server_fixtures import A2A_CALLERS, USERS, bearer, web_users_json

pytestmark = pytest.mark.slow


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "GITHUB_", "OPENAI_"))}
    env.update(
        DEVOPS_CREW_HOME=str(home),
        DEVOPS_CREW_FORGE="fake",
        DEVOPS_CREW_COOLDOWN_SECONDS="0",
        DEVOPS_CREW_RATE_LIMIT="1000",
        DEVOPS_CREW_WEB_USERS=web_users_json(),
        DEVOPS_CREW_A2A_TOKENS=",".join(f"{t}:{k}" for t, k in A2A_CALLERS.items()),
        DEVOPS_CREW_SHUTDOWN_GRACE_SECONDS="30",
    )
    env.update(extra)
    return env


@contextmanager
def serve(home: Path, **extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "devops_automation.cli", "serve", "--port", "0"],
        env=_env(home, **extra),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    url = ""
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        if "serving at " in line:
            url = line.split("serving at ", 1)[1].split()[0]
            break
    assert url, f"the server did not start (exit {process.poll()})"
    try:
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _state(client: httpx.Client, request_id: str) -> str:
    return client.get(f"/api/v1/requests/{request_id}", headers=bearer("vic")).json()["request"]["state"]


def test_sigterm_mid_run_stops_at_a_saved_state_and_the_next_start_finishes_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home) as (process, url), httpx.Client(base_url=url, timeout=30) as client:
        rid = client.post("/api/v1/requests", json=new_gap(1).model_dump(mode="json"), headers=bearer("alice"))
        rid = rid.json()["request"]["id"]
        deadline = time.monotonic() + 60
        while _state(client, rid) != "approved_by_policy":  # scaffolding (render + validation) is next
            assert time.monotonic() < deadline, _state(client, rid)
            time.sleep(0.01)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(40) == 0
        stopped_after = time.monotonic() - started
    assert stopped_after < 30
    store = open_store(f"sqlite:///{home / 'state.db'}")
    try:  # the run finished the step it was in (render + validation) and stopped before publishing
        assert store.require_request(rid).state.value == "scaffolded"
    finally:
        store.close()
    with serve(home) as (_process, url), httpx.Client(base_url=url, timeout=30) as client:
        deadline = time.monotonic() + 60
        while (state := _state(client, rid)) != "published":
            assert state in {"approved_by_policy", "scaffolded"}, state  # never failed, never stuck
            assert time.monotonic() < deadline
            time.sleep(0.05)
        audit = client.get("/api/v1/audit", params={"request_id": rid, "limit": 500}, headers=bearer("oscar"))
        channels = {row["detail"].get("channel") for row in audit.json()["rows"]}
        assert "scheduler" in channels  # the second start continued it as the server itself
        assert client.get("/api/v1/audit/verify", headers=bearer("oscar")).json()["ok"] is True


def test_the_event_loop_answers_while_a_worker_renders_and_validates(tmp_path: Path) -> None:
    with serve(tmp_path / "home") as (_process, url), httpx.Client(base_url=url, timeout=30) as client:
        rid = client.post("/api/v1/requests", json=new_gap(2).model_dump(mode="json"), headers=bearer("alice"))
        rid = rid.json()["request"]["id"]
        latencies, states = [], set()
        while (state := _state(client, rid)) not in {"published", "failed"}:
            states.add(state)
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - started)
        assert state == "published"
        assert "approved_by_policy" in states  # we really polled during the render and validation
        latencies.sort()
        assert latencies[len(latencies) // 2] < 0.05 and latencies[-1] < 0.5, latencies[-5:]


def test_the_cli_uses_a_running_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home) as (_process, url):
        env = _env(tmp_path / "cli-home", DEVOPS_CREW_SERVER_URL=url, DEVOPS_CREW_SERVER_TOKEN=USERS["carol"][1])
        env["DEVOPS_CREW_COST_CEILING_USD"] = "5"  # the server's settings decide, not the CLI's
        started = time.monotonic()
        request = subprocess.run(
            [
                sys.executable,
                "-m",
                "devops_automation.cli",
                "request",
                "We need kotlin apps",
                "--skill",
                "kotlin",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
        assert request.returncode == 0, request.stderr
        import json

        view = json.loads(request.stdout)["request"]
        assert view["state"] == "published" and view["requester"] == {
            "id": "carol",
            "channel": "web",
            "display_name": "Carol",
        }
        assert elapsed < 10, elapsed
        status = subprocess.run(
            [sys.executable, "-m", "devops_automation.cli", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0 and view["id"] in status.stdout
        assert not (tmp_path / "cli-home").exists()  # the CLI ran no engine of its own
        missing = subprocess.run(
            [sys.executable, "-m", "devops_automation.cli", "status", "req-000000000000"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert missing.returncode == 2 and "no request" in missing.stderr
        denied = subprocess.run(
            [sys.executable, "-m", "devops_automation.cli", "reject", view["id"]],
            env={**env, "DEVOPS_CREW_SERVER_TOKEN": USERS["vic"][1]},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert denied.returncode == 2 and "approver" in denied.stderr, denied.stderr
        triage = subprocess.run(  # every option the local CLI takes reaches the server too
            [sys.executable, "-m", "devops_automation.cli", "reject", view["id"], "--use-team", "no-such-team"],
            env={**env, "DEVOPS_CREW_SERVER_TOKEN": USERS["bob"][1]},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert triage.returncode == 2 and "no-such-team" in triage.stderr and "Traceback" not in triage.stderr
        card = subprocess.run(
            [sys.executable, "-m", "devops_automation.cli", "team", "card", "customer_support", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert card.returncode == 0, card.stderr
        assert json.loads(card.stdout)["card"]["name"] == "customer_support"
        for extra, where in (([], "from row 1"), ([], "from the checkpoint"), (["--full"], "from row 1")):
            verified = subprocess.run(
                [sys.executable, "-m", "devops_automation.cli", "audit", "--verify", *extra],
                env={**env, "DEVOPS_CREW_SERVER_TOKEN": USERS["oscar"][1]},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert verified.returncode == 0 and "audit log intact" in verified.stdout, verified.stderr
            assert where in verified.stdout, verified.stdout
        bad_token = subprocess.run(
            [sys.executable, "-m", "devops_automation.cli", "status"],
            env={**env, "DEVOPS_CREW_SERVER_TOKEN": "x" * 20},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad_token.returncode == 2 and "bearer token" in bad_token.stderr
