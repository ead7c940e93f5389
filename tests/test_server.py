"""``devops-crew serve``: the JSON API, probes, metrics, limits and drain, against a real uvicorn on
loopback over the fake forge (a real bare repository)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import new_gap
from .server_fixtures import RunningServer, bearer, running_server, server_settings, wait_for_state


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(server_settings(tmp_path / "home")) as running:
        yield running


def test_a_gap_posted_to_the_api_is_acknowledged_at_once_and_published_on_a_worker(server: RunningServer) -> None:
    with server.client() as client:
        answer = client.post("/api/v1/requests", json=new_gap(1).model_dump(mode="json"), headers=bearer("alice"))
        assert answer.status_code == 202, answer.text
        view = answer.json()["request"]
        assert view["state"] == "received" and view["requester"]["id"] == "alice"
        assert view["requester"]["channel"] == "web"
        final = wait_for_state(client, view["id"], {"published", "failed", "awaiting_approval"})
        assert final["state"] == "published", final["error"]
        assert final["pull_request"]["number"] >= 1
