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


def _gap(n: int) -> dict:
    return new_gap(n).model_dump(mode="json")


def test_wait_true_answers_when_the_run_stops(server: RunningServer) -> None:
    with server.client() as client:
        answer = client.post("/api/v1/requests", params={"wait": "true"}, json=_gap(2), headers=bearer("alice"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["request"]["state"] == "published"
        again = client.post("/api/v1/requests", json=_gap(2), headers=bearer("alice"))
        assert again.status_code == 200 and again.json()["request"]["duplicate"] is True


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope-not-a-token-at-all"},
        {"Authorization": "Basic YWxpY2U6cHc="},
        {"Authorization": "Bearer"},
    ],
)
def test_every_api_call_needs_a_known_bearer_token(server: RunningServer, headers: dict) -> None:
    with server.client() as client:
        for method, path in [("GET", "/api/v1/requests"), ("POST", "/api/v1/requests"), ("GET", "/api/v1/audit")]:
            answer = client.request(method, path, headers=headers, json=_gap(3) if method == "POST" else None)
            assert answer.status_code == 401, (path, answer.text)
            assert answer.json()["error"]["type"] == "not_authenticated"
        assert server.runtime.service.list(_viewer(), limit=10) == []  # nothing was recorded


def _viewer():  # type: ignore[no-untyped-def]
    from devops_automation.authz import Actor, Channel, Role

    return Actor(id="test", channel=Channel.web, roles=frozenset({Role.viewer}))


def test_four_eyes_and_roles_hold_over_the_api(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", monthly_cost_ceiling_usd=5)) as server, server.client() as c:
        waiting = c.post("/api/v1/requests", params={"wait": "true"}, json=_gap(4), headers=bearer("carol"))
        request_id = waiting.json()["request"]["id"]
        assert waiting.json()["request"]["state"] == "awaiting_approval"
        own = c.post(f"/api/v1/requests/{request_id}/approve", json={"reason": "mine"}, headers=bearer("carol"))
        assert own.status_code == 403 and own.json()["error"]["rule"] == "four-eyes", own.text
        no_role = c.post(f"/api/v1/requests/{request_id}/approve", headers=bearer("alice"))
        assert no_role.status_code == 403 and no_role.json()["error"]["rule"] == "role"
        crew = c.post(f"/api/v1/requests/{request_id}/approve", headers=bearer("billing_ops"))  # an A2A caller
        assert crew.status_code == 403
        assert c.get(f"/api/v1/requests/{request_id}", headers=bearer("vic")).json()["request"]["approvals"] == []
        approved = c.post(f"/api/v1/requests/{request_id}/approve", json={"reason": "ok"}, headers=bearer("bob"))
        assert approved.status_code == 200, approved.text
        view = approved.json()["request"]
        assert view["state"] == "published" and view["approvals"][0]["by"]["id"] == "bob"
        assert view["approvals"][0]["by"]["channel"] == "web"


def test_an_override_needs_a_reason_and_bad_input_names_its_field(server: RunningServer) -> None:
    with server.client() as client:
        rid = client.post("/api/v1/requests", params={"wait": "true"}, json=_gap(5), headers=bearer("alice")).json()
        rid, state = rid["request"]["id"], rid["request"]["state"]
        empty = client.post(f"/api/v1/requests/{rid}/override", json={"reason": "  "}, headers=bearer("bob"))
        assert empty.status_code == 403 and empty.json()["error"]["rule"] == "reason-required"
        missing = client.post(f"/api/v1/requests/{rid}/override", headers=bearer("bob"))
        assert missing.status_code == 422 and missing.json()["error"]["type"] == "invalid_input"
        null = client.post(f"/api/v1/requests/{rid}/override", json={"reason": None}, headers=bearer("bob"))
        assert null.status_code == 403 and null.json()["error"]["rule"] == "reason-required"  # null: no reason
        typo = client.post(f"/api/v1/requests/{rid}/override", json={"reasn": "ok"}, headers=bearer("bob"))
        assert typo.status_code == 422 and "reasn" in typo.json()["error"]["message"]  # never silently dropped
        assert client.get(f"/api/v1/requests/{rid}", headers=bearer("bob")).json()["request"]["state"] == state
        bad = client.post(
            "/api/v1/requests", json={"description": "x", "required_skills": ["<script>"]}, headers=bearer("alice")
        )
        assert bad.status_code == 422 and "required_skills" in bad.json()["error"]["message"]
        extra = client.post("/api/v1/requests", json={"description": "x", "state": "merged"}, headers=bearer("alice"))
        assert extra.status_code == 422 and "state" in extra.json()["error"]["message"]
        for odd in ["..%2F..%2Fetc%2Fpasswd", "req-" + "a" * 80, "req-x%00y"]:
            answer = client.get(f"/api/v1/requests/{odd}", headers=bearer("vic"))
            assert answer.status_code in {404, 422}, (odd, answer.status_code)
        cursor = client.get("/api/v1/requests", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=bearer("vic"))
        assert cursor.status_code == 422 and "cursor" in cursor.json()["error"]["message"]


def test_pages_follow_the_keyset_cursor_with_filters(server: RunningServer) -> None:
    with server.client() as client:
        ids = [
            client.post("/api/v1/requests", params={"wait": "true"}, json=_gap(10 + n), headers=bearer("alice")).json()[
                "request"
            ]["id"]
            for n in range(5)
        ]
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/requests", params=params, headers=bearer("vic")).json()
            seen += [r["id"] for r in page["requests"]]
            cursor = page["next"]
            if cursor is None:
                break
        assert seen == list(reversed(ids))
        team = client.get("/api/v1/requests", params={"team": "mobile_team_12"}, headers=bearer("vic")).json()
        assert [r["id"] for r in team["requests"]] == [ids[2]]
        states = client.get("/api/v1/requests", params={"state": "failed"}, headers=bearer("vic")).json()
        assert states["requests"] == []
        unknown = client.get("/api/v1/requests", params={"state": "bogus"}, headers=bearer("vic"))
        assert unknown.status_code == 422


def test_oversize_bodies_are_refused_before_parsing(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", max_request_bytes=4096)) as server, server.client() as c:
        big = {"description": "x" * 5000}
        declared = c.post("/api/v1/requests", json=big, headers=bearer("alice"))
        assert declared.status_code == 413 and declared.json()["error"]["type"] == "too_large"

        def chunks():  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b"x" * 1000

        streamed = c.post(
            "/api/v1/requests", content=chunks(), headers={**bearer("alice"), "content-type": "application/json"}
        )
        assert streamed.status_code == 413
        rpc = c.post("/a2a", content=b"{" + b" " * 5000 + b"}", headers=bearer("billing_ops"))
        assert rpc.status_code == 413 and rpc.json()["error"]["code"] == -32600
        assert server.runtime.service.list(_viewer(), limit=10) == []


def test_readyz_reports_each_dependency_and_turns_503_while_draining(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devops_automation.server import health

    forge = server.runtime.service.app.forge
    with server.client() as client:
        for _ in range(30):  # anonymous probes do not spend the forge token: one call per interval
            ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["store"]["detail"].startswith("schema ")
        assert forge.calls.count("ping") == 1
        monkeypatch.setattr(health, "FORGE_CHECK_TTL_SECONDS", 0.0)
        forge.fail("ping")
        down = client.get("/readyz")
        assert down.status_code == 503 and "injected failure" in down.json()["checks"]["forge"]["detail"]
        assert client.get("/readyz").status_code == 200  # it recovered
        server.runtime.draining.set()
        draining = client.get("/readyz")
        assert draining.status_code == 503 and draining.json()["checks"]["intake"]["ok"] is False
        assert client.get("/healthz").status_code == 200  # alive all the same
        refused = client.post("/api/v1/requests", json=_gap(6), headers=bearer("alice"))
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert refused.json()["error"]["type"] == "unavailable"


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and line.split(" ")[0] == name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_states_prs_refusals_and_step_times(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", rate_limit_per_day=1)) as server, server.client() as c:
        for n in (20, 21):
            c.post("/api/v1/requests", params={"wait": "true"}, json=_gap(n), headers=bearer("alice"))
        text = c.get("/metrics").text
        assert _metric(text, 'devops_crew_requests{state="published"}') == 1
        assert _metric(text, 'devops_crew_requests{state="refused"}') == 1
        assert _metric(text, "devops_crew_pull_requests_opened_total") == 1
        assert _metric(text, 'devops_crew_policy_refusals_total{rule="rate-limit"}') == 1
        assert _metric(text, 'devops_crew_step_duration_seconds_count{outcome="published",step="scaffolded"}') == 1
        assert "devops_crew_llm_calls_total" in text and "devops_crew_worker_jobs" in text


def test_the_openapi_description_lists_the_json_api(server: RunningServer) -> None:
    with server.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in ["/api/v1/requests", "/api/v1/requests/{request_id}/approve", "/api/v1/audit", "/readyz"]:
        assert path in paths


def test_reasons_are_as_untrusted_as_gaps(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", monthly_cost_ceiling_usd=5)) as server, server.client() as c:
        rid = c.post("/api/v1/requests", params={"wait": "true"}, json=_gap(30), headers=bearer("billing_ops"))
        rid = rid.json()["request"]["id"]
        for reason in ["ok\x1b]0;PWNED\x07\x1b[2K\r approved by bob", "fine \u202eevil", "x" * 2001]:
            for action in ("reject", "approve"):
                who = "billing_ops" if action == "reject" else "bob"
                answer = c.post(f"/api/v1/requests/{rid}/{action}", json={"reason": reason}, headers=bearer(who))
                assert answer.status_code == 422 and "reason" in answer.json()["error"]["message"], answer.text
        view = c.get(f"/api/v1/requests/{rid}", headers=bearer("vic")).json()["request"]
        assert view["state"] == "awaiting_approval" and view["approvals"] == [] and view["error"] is None


def test_errors_keep_one_shape_and_nothing_loads_from_elsewhere(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    with server.client() as client:
        assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
        missing = client.get("/api/v1/nothing-here", headers=bearer("vic"))
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
        broken = client.post(
            "/api/v1/requests", content=b"{not json", headers={**bearer("alice"), "content-type": "application/json"}
        )
        assert broken.status_code == 422 and "error" in broken.json()

        def locked(*_args: object, **_kwargs: object) -> None:
            raise OperationalError("SELECT", {}, Exception("database is locked"))

        monkeypatch.setattr(server.runtime.service.store, "list_requests", locked)
        down = client.get("/api/v1/requests", headers=bearer("vic"))
        assert down.status_code == 503 and down.headers["retry-after"]
        assert down.json()["error"] == {
            "type": "unavailable",
            "message": "the state store did not answer: database is locked",
        }
