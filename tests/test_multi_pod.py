"""Several pods, one PostgreSQL: server processes and CLI runs race to create teams and still agree.

What the Deployment and the CronJobs share is ``DATABASE_URL`` only; each process has its own
``DEVOPS_CREW_HOME`` (its own git checkout: the pod's emptyDir). The forge is one embedded forge on
loopback, speaking GitHub's REST shape, as GitHub would be for every pod. Two ``devops-crew serve``
processes and three ``devops-crew request`` processes submit the same gaps at once; afterwards there are
never more pull requests than the rate limit, never two requests for one gap, and one audit chain that
verifies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from devops_automation.registry import SEED_DIR
from devops_automation.store import open_store
from localforge import LocalForge

from .helpers import new_gap
from .server_fixtures import bearer, web_users_json

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TOKEN = "ghp_" + "R4c3P0d5" * 5
RATE_LIMIT = 3
GAPS = [new_gap(n) for n in range(1, 6)]  # five new teams wanted, three allowed per day
SETTLED = {"published", "refused", "failed", "rejected", "needs_review", "reused", "merged", "closed"}


@pytest.fixture
def github(tmp_path: Path) -> Iterator[LocalForge]:
    with LocalForge(tmp_path / "github", token=TOKEN, owner_login="crew-bot") as forge:
        forge.create_repo("acme/teams", seed_from=SEED_DIR)
        yield forge


def pod_env(home: Path, database_url: str, github: LocalForge) -> dict[str, str]:
    """The environment one pod sees: its own home, the shared database, GitHub (here: the embedded forge)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "GITHUB_", "OPENAI_"))}
    env.update(
        DEVOPS_CREW_HOME=str(home),
        DATABASE_URL=database_url,
        GITHUB_API_URL=github.base_url,
        GITHUB_TOKEN=TOKEN,
        TARGET_REPO="acme/teams",
        DEVOPS_CREW_ALLOW_BROAD_TOKEN="true",
        DEVOPS_CREW_COOLDOWN_SECONDS="0",
        DEVOPS_CREW_RATE_LIMIT=str(RATE_LIMIT),
        DEVOPS_CREW_VALIDATE_RENDER="false",  # validation is tested elsewhere; here it only costs CPU
        DEVOPS_CREW_WEB_USERS=web_users_json(),
        DEVOPS_CREW_SESSION_SECRET="shared-session-secret-0123456789",
        DEVOPS_CREW_RETRY_MAX_WAIT="2",
    )
    return env


@contextmanager
def serve(env: dict[str, str]) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "devops_automation.cli", "serve", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stderr is not None
        url, deadline = "", time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            if "serving at " in line:
                url = line.split("serving at ", 1)[1].split()[0]
                break
        assert url, f"a server did not start (exit {process.poll()})"
        yield url
    finally:
        process.terminate()
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def cli_request(env: dict[str, str], gap_index: int) -> subprocess.Popen[str]:
    gap = GAPS[gap_index]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devops_automation.cli",
            "request",
            gap.description,
            *[arg for skill in gap.required_skills for arg in ("--skill", skill)],
            "--name",
            str(gap.proposed_name),
            "--gap-id",
            gap.id,
            "--json",
            "-q",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_servers_and_cli_runs_racing_on_one_postgresql_agree(
    tmp_path: Path, pg_url: str, github: LocalForge
) -> None:
    with ExitStack() as stack:
        urls = [stack.enter_context(serve(pod_env(tmp_path / f"server{i}", pg_url, github))) for i in range(2)]
        clients = [stack.enter_context(httpx.Client(base_url=url, timeout=60)) for url in urls]
        # Every gap is filed twice through the servers (once each) and three gaps once more by CLI runs,
        # all at once: the CLI processes start first, then the API posts follow while they run.
        cli = [cli_request(pod_env(tmp_path / f"cli{i}", pg_url, github), i) for i in range(3)]
        ids: dict[str, set[str]] = {gap.id: set() for gap in GAPS}
        for gap in GAPS:
            for client in clients:
                response = client.post("/api/v1/requests", json=gap.model_dump(mode="json"), headers=bearer("alice"))
                assert response.status_code in (200, 202), response.text  # 200: a duplicate
                ids[gap.id].add(response.json()["request"]["id"])
        for index, process in enumerate(cli):
            out, err = process.communicate(timeout=600)
            assert process.returncode in (0, 1, 3, 4), err[-2000:]  # published, failed/refused: never a crash
            assert "Traceback" not in err, err[-2000:]
            ids[GAPS[index].id].add(json.loads(out)["request"]["id"])
        # Let the servers' workers finish what they took.
        deadline = time.monotonic() + 300
        while True:
            states = {
                rid: clients[0].get(f"/api/v1/requests/{rid}", headers=bearer("vic")).json()["request"]["state"]
                for rids in ids.values()
                for rid in rids
            }
            if all(state in SETTLED for state in states.values()):
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.2)
        verify = clients[1].get("/api/v1/audit/verify", headers=bearer("oscar")).json()

    # One request per gap, whoever filed it and on whichever pod.
    assert {gap: len(rids) for gap, rids in ids.items()} == {gap.id: 1 for gap in GAPS}
    published = [rid for rid, state in states.items() if state == "published"]
    refused = [rid for rid, state in states.items() if state == "refused"]
    assert len(published) == RATE_LIMIT, states
    assert len(refused) == len(GAPS) - RATE_LIMIT, states
    # Never more pull requests than the limit, on the one forge every pod publishes to.
    pulls = [entry for entry in github.request_log if entry[0] == "POST" and entry[1].endswith("/pulls")]
    assert len(pulls) == RATE_LIMIT
    # One audit chain, written by five processes, that verifies.
    assert verify["ok"] is True, verify
    store = open_store(pg_url)
    try:
        assert len(store.list_requests(limit=100)) == len(GAPS)
        audited = {row.request_id for row in list(store.iter_audit())}
        assert set(states) <= audited
    finally:
        store.close()
