"""The JSON API under property-based requests generated from its own OpenAPI description (schemathesis):
whatever a caller sends, the server answers with a documented shape and never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .server_fixtures import RunningServer, bearer, running_server, server_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = Path(tmp_path_factory.mktemp("fuzz")) / "home"
    with running_server(server_settings(home, server_workers=2)) as server:
        yield server


def test_no_request_makes_the_api_fail(fuzz_server: RunningServer) -> None:
    """Every operation of /openapi.json, with generated parameters and bodies (schemathesis strategies,
    driven by hypothesis here: schemathesis' own pytest plugin does not load under this pytest)."""
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    answered: dict[int, int] = {}
    for operation in operations:
        headers = bearer("oscar" if any(w in operation.path for w in ("audit", "resume", "track")) else "carol")

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=headers, timeout=60)  # noqa: B023 - called before the next loop turn
            answered[response.status_code] = answered.get(response.status_code, 0) + 1
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
            if response.status_code >= 400:
                assert "error" in response.json(), response.text[:300]

        check()
    print(f"fuzzed {len(operations)} operations: statuses {dict(sorted(answered.items()))}")
