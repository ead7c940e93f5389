"""Running ``devops-crew serve``'s application in tests: settings with users and A2A callers, a real
uvicorn on loopback (port 0) in a thread, and the credentials the tests use.

The forge is the fake one (a real bare repository, no HTTP) unless a test asks for another; the render
is validated only when a test asks (``validate_render=True``), since validation costs seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from devops_automation.server.asgi import create_app, start_runtime
from devops_automation.server.auth import hash_password
from devops_automation.settings import Settings

from .conftest import make_settings

PASSWORD = "correct horse battery"
_HASH = hash_password(PASSWORD)

#: name -> (roles, API token)
USERS: dict[str, tuple[list[str], str]] = {
    "alice": (["requester", "viewer"], "alice-api-token-000000"),
    "bob": (["approver", "viewer"], "bob-api-token-1111111111"),
    "carol": (["approver", "requester", "viewer"], "carol-api-token-22222222"),
    "oscar": (["operator", "viewer", "auditor"], "oscar-api-token-33333333"),
    "vic": (["viewer"], "vic-api-token-444444444444"),
}
A2A_CALLERS = {"billing_ops": "a2a-billing-token-5555555", "web_frontend": "a2a-frontend-token-666666"}


def web_users_json() -> str:
    return json.dumps(
        {
            name: {"password_hash": _HASH, "roles": roles, "token": token, "display_name": name.title()}
            for name, (roles, token) in USERS.items()
        }
    )


def server_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for a test server: fake forge, no render validation, the users and A2A callers above."""
    values: dict[str, Any] = {
        "forge": "fake",
        "validate_render": False,
        "web_users": web_users_json(),
        "a2a_tokens": ",".join(f"{team}:{token}" for team, token in A2A_CALLERS.items()),
        "session_secret": "test-session-secret-0123456789",
        "shutdown_grace_seconds": 10,
    }
    values.update(overrides)
    return make_settings(home, **values)


def bearer(name: str) -> dict[str, str]:
    """The Authorization header of web user ``name`` or A2A caller ``name``."""
    token = USERS[name][1] if name in USERS else A2A_CALLERS[name]
    return {"Authorization": f"Bearer {token}"}


@dataclass
class RunningServer:
    url: str
    app: Any
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def stop(self, timeout: float = 60) -> None:
        """As SIGTERM does: drain at once, then uvicorn's graceful stop."""
        self.runtime.draining.set()
        self.server.should_exit = True
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the server did not stop"


@contextmanager
def running_server(settings: Settings) -> Iterator[RunningServer]:
    """A real uvicorn serving the application on 127.0.0.1 (a free port), started and ready."""
    runtime = start_runtime(settings)
    app = create_app(settings, runtime=runtime)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or 1,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    running = RunningServer(f"http://127.0.0.1:{port}", app, server, thread)
    try:
        yield running
    finally:
        if thread.is_alive():
            running.stop()


def wait_for_state(
    client: httpx.Client, request_id: str, states: set[str], *, user: str = "vic", timeout: float = 60
) -> dict[str, Any]:
    """Poll the JSON API until the request is in one of ``states``; returns its SUMMARY."""
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(f"/api/v1/requests/{request_id}", headers=bearer(user)).json()["request"]
        if view["state"] in states:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"{request_id} stayed {view['state']}, not in {sorted(states)}")
        time.sleep(0.05)
