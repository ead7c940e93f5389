"""HTTP entry point of the {{ cookiecutter.team_name }} team: probes and a kickoff endpoint.

``GET /healthz`` (liveness), ``GET /readyz`` (config loads), ``POST /kickoff`` with a JSON object of
inputs (runs the crew). Run with ``python -m teams.{{ cookiecutter.team_name }}.server``.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import crew as team_crew

MAX_BODY_BYTES = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    """Answers the probes and runs the crew on ``POST /kickoff``."""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif self.path == "/readyz":
            try:
                team_crew.load_config()
            except (OSError, ValueError) as exc:
                self._send(503, {"status": "not ready", "error": type(exc).__name__})
            else:
                self._send(200, {"status": "ready"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/kickoff":
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(413, {"error": "body too large"})
            return
        try:
            inputs = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            inputs = None
        if not isinstance(inputs, dict):
            self._send(400, {"error": "body must be a JSON object"})
            return
        result = team_crew.build_crew().kickoff(inputs=inputs)
        self._send(200, {"result": str(result)})


def main() -> None:
    """Serve on ``$HOST:$PORT`` (default 0.0.0.0:8080) until stopped."""
    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 (a pod serves on its own address)
    address = (host, int(os.environ.get("PORT", "8080")))
    ThreadingHTTPServer(address, Handler).serve_forever()


if __name__ == "__main__":
    main()
