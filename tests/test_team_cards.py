"""The registry reads a merged team's A2A agent card (issue "Packaged as a pod", point 5): the card built
from its ``team.yaml`` is the card the team's generated server serves, read live over loopback from a
checkout of the merged main; a served answer is untrusted; a request that reuses a team, or opened a new
one, says where the team answers A2A. Real forge, real git, a real uvicorn process for the team."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from devops_automation.authz import Actor, Channel, Role
from devops_automation.errors import InvalidInput, NotFound, Unavailable
from devops_automation.models import RegistryEntry
from devops_automation.service import CrewService
from devops_automation.team_cards import DEFAULT_TEAM_A2A_URL, MAX_CARD_BYTES, card_url, fetch_card

from .conftest import make_settings
from .helpers import bare, new_gap
from .notify_fixtures import free_port

ALICE = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
BOB = Actor(id="bob", channel=Channel.web, roles=frozenset({Role.approver, Role.viewer}))


def _serve_team(checkout: Path, team: str, port: int) -> subprocess.Popen[bytes]:
    """``python -m teams.<team>.server`` from a checkout of the teams monorepo, as the team's image runs it
    (without PUBLIC_URL: the card advertises the URL it was rendered with)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(checkout.parent / "team-home"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "OTEL_SDK_DISABLED": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", f"teams.{team}.server"],
        cwd=checkout,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "the team exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the team's server did not answer /healthz in 60 s")


def test_the_registry_reads_the_card_a_merged_team_serves(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        tmp_path / "home",
        forge="local",
        validate_render=False,
        forge_required_checks="",
        forge_required_approvals=0,
        team_a2a_url=url,
    )
    with CrewService(settings) as service:
        view = service.submit(ALICE, new_gap(1))
        team = view["team"]
        assert view["state"] == "published" and view["team_a2a_url"] == url
        with pytest.raises(NotFound, match=f"no team '{team}'"):
            service.team_card(ALICE, team)  # not merged yet: the registry is the base branch's
        assert service.merge(BOB, view["id"])["state"] == "merged"
        offline = service.team_card(ALICE, team)
        assert offline["url"] == url and offline["served"] is None
        assert offline["card"]["name"] == team and offline["card"]["skills"]
        with pytest.raises(Unavailable, match="does not answer"):
            service.team_card(ALICE, team, live=True)  # merged, not deployed yet

        checkout = tmp_path / "main"
        subprocess.run(["git", "clone", "--quiet", str(bare(service.app)), str(checkout)], check=True)
        process = _serve_team(checkout, team, port)  # what Argo CD deploys from main
        try:
            live = service.team_card(ALICE, team, live=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert live["differences"] == [] and live["served"] == live["card"]  # url too: it was rendered with it
    written = RegistryEntry.model_validate(yaml.safe_load((checkout / "teams" / team / "team.yaml").read_text()))
    assert [s["name"] for s in live["card"]["skills"]] == written.skills
    assert live["card"]["description"] == written.description


def test_a_reused_team_is_handed_over_with_its_a2a_url(tmp_path: Path) -> None:
    from devops_automation.models import CapabilityGap
    from devops_automation.server.a2a_messages import outcome

    settings = make_settings(tmp_path / "home", forge="fake", validate_render=False)
    with CrewService(settings) as service:
        names = sorted(service.app.engine.deps.target.team_files())
        assert names, "the embedded target starts with the seed teams"
        entry = RegistryEntry.model_validate(yaml.safe_load(service.app.engine.deps.target.team_files()[names[0]]))
        gap = CapabilityGap(
            description=f"We need help with {entry.skills[0]}: {entry.description}",
            required_skills=entry.skills[:3],
        )
        view = service.submit(ALICE, gap)
        assert view["state"] == "reuse_existing", view["match"]
        expected = card_url(view["matched_team"], DEFAULT_TEAM_A2A_URL)
        assert view["team_a2a_url"] == expected
        assert expected in outcome(view).text
        card = service.team_card(ALICE, view["matched_team"])
        assert card["url"] == expected and card["card"]["url"] == expected
        with pytest.raises(InvalidInput, match="team"):
            service.team_card(ALICE, "../../etc")


@dataclass
class Answer:
    """What the hostile "team" answers: ``drip_seconds`` > 0 sends ``body`` a byte at a time, that long apart,
    without a Content-Length."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drip_seconds: float = 0.0


class _Hostile(BaseHTTPRequestHandler):
    """A "team" that answers its card path with what ``server.answer`` (an :class:`Answer`) says."""

    def do_GET(self) -> None:
        answer: Answer = self.server.answer  # type: ignore[attr-defined]
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if not answer.drip_seconds:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        try:
            if not answer.drip_seconds:
                self.wfile.write(answer.body)
            for byte in answer.body if answer.drip_seconds else b"":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(answer.drip_seconds)
        except OSError:  # the crew hung up: what it should do with such a team
            pass

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


ENTRY = RegistryEntry(name="billing_ops", description="Bills.", department="finance", skills=["invoicing"])


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (
            200,
            json.dumps(
                {
                    "name": "someone_else",
                    "description": "x",
                    "url": "http://x",
                    "version": "1",
                    "capabilities": {},
                    "defaultInputModes": [],
                    "defaultOutputModes": [],
                    "skills": [],
                }
            ).encode(),
            InvalidInput,
            "names another agent",
        ),
        (200, b'{"name": "billing_ops"}', InvalidInput, "not an A2A agent card"),
        (200, b"<html>not json</html>", InvalidInput, "not an A2A agent card"),
        (200, b"[" + b" " * (MAX_CARD_BYTES + 10) + b"]", Unavailable, "more than"),
        (404, b"{}", Unavailable, "HTTP 404"),
        (302, b"", Unavailable, "HTTP 302"),
    ],
)
def test_a_served_card_is_untrusted(
    hostile: ThreadingHTTPServer, status: int, body: bytes, error: type[Exception], match: str
) -> None:
    hostile.answer = Answer(status, body)  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{hostile.server_address[1]}"
    with pytest.raises(error, match=match):
        fetch_card(ENTRY, url, timeout=5)


BOMB = gzip.compress(b"[" + b" " * 50_000_000 + b"]")  # 50 MB once unpacked, about 50 KB sent


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (Answer(200, BOMB, {"Content-Encoding": "gzip"}), InvalidInput, "compressed"),
        (Answer(200, b" " * 100, drip_seconds=0.1), Unavailable, "took more than"),  # 10 s in all
    ],
)
def test_a_compressed_or_dripping_card_is_refused_without_reading_it_all(
    hostile: ThreadingHTTPServer, answer: Answer, error: type[Exception], match: str
) -> None:
    hostile.answer = answer  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(error, match=match):
        fetch_card(ENTRY, f"http://127.0.0.1:{hostile.server_address[1]}", timeout=0.3)
    assert time.monotonic() - started < 5


def test_the_card_version_is_the_templates_and_the_url_setting_is_checked(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from devops_automation.scaffold.render import IMAGE_TAG
    from devops_automation.team_cards import DEFAULT_VERSION

    assert DEFAULT_VERSION == IMAGE_TAG
    for bad in (
        "http://",
        "http://a/?q={name}",
        "http://a#{name}",
        "http://u@a/{name}",
        "http://a/{name!r}",
        "ftp://a/{name}",
        "http://{0}",
    ):
        with pytest.raises(ValidationError):
            make_settings(tmp_path / "home", team_a2a_url=bad)
    good = make_settings(tmp_path / "home", team_a2a_url="https://{k8s_name}.teams.example:8443/a2a")
    assert card_url("billing_ops", good.team_a2a_url) == "https://billing-ops.teams.example:8443/a2a"
