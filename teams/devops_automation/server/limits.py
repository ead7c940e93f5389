"""A pure ASGI middleware that refuses request bodies over a size limit before anything parses them.

Applied to the whole application: an A2A message, a JSON API body and a dashboard form are all
untrusted. The answer is 413 with a JSON body; on the A2A endpoint it is a JSON-RPC error object, since a
JSON-RPC client reads only that.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSONRPC_INVALID_REQUEST = -32600


class BodyLimit:
    """Refuse bodies over ``max_bytes`` (by Content-Length, and by counting a streamed body).
    ``jsonrpc_paths``: paths whose refusal is shaped as a JSON-RPC error."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, jsonrpc_paths: frozenset[str] = frozenset()) -> None:
        self.app, self.max_bytes, self.jsonrpc_paths = app, max_bytes, jsonrpc_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(scope, send)
                return
        # Read the whole body first (it is at most max_bytes), so a streamed body over the limit is
        # refused here and not half-parsed by a framework that would turn the error into a 400.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        message = f"request body larger than {self.max_bytes} bytes"
        if scope.get("path") in self.jsonrpc_paths:
            payload: dict[str, Any] = {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": JSONRPC_INVALID_REQUEST, "message": message},
            }
        else:
            payload = {"error": {"type": "too_large", "message": message}}
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
