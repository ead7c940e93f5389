"""An OpenAI-compatible chat completions server on 127.0.0.1, for the real provider path.

``POST /v1/chat/completions`` answers like OpenAI: ``tool_calls`` when the fake model calls a tool
(``finish_reason: tool_calls``), JSON content for a ``response_format`` of type ``json_schema``, and
``usage`` on every reply. Token counts are estimates (four characters a token, over the messages,
the tool schemas and the response format), the same for every crew the benchmark compares. Every
request body is kept in :attr:`OpenAIStub.requests`, every answer in :attr:`OpenAIStub.responses`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devops_automation.crew.structured import PROMPT_INSTRUCTION

from .fake_model import FakeModel, approx_tokens

API_KEY = "sk-stub-0123456789abcdef0123"


class StubError(AssertionError):
    """A request the real API would reject."""


def check_request(body: dict[str, Any]) -> None:
    """Hold a request to the shape OpenAI accepts for what this project sends."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise StubError("model is missing")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise StubError("messages must be a non-empty list")
    pending: set[str] = set()
    for message in messages:
        role = message.get("role")
        if role not in {"system", "user", "assistant", "tool", "developer"}:
            raise StubError(f"unknown role {role!r}")
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                if call.get("type") != "function" or not call.get("id"):
                    raise StubError("an assistant tool call needs an id and type function")
                json.loads(call["function"]["arguments"])
                pending.add(call["id"])
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                raise StubError("a tool message must answer an earlier tool call")
            pending.discard(message["tool_call_id"])
    for tool in body.get("tools") or []:
        function = tool.get("function", {})
        if tool.get("type") != "function" or not function.get("name") or "parameters" not in function:
            raise StubError(f"malformed tool {tool!r:.200}")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type")
        schema = response_format.get("json_schema", {})
        if kind == "json_object":
            if not isinstance(response_format.get("schema"), dict):
                raise StubError("this project sends json_object with its schema (llama-cpp-python's form)")
        elif kind != "json_schema" or not schema.get("name") or "schema" not in schema:
            raise StubError(f"unsupported response_format {response_format!r:.200}")
        if body.get("tools"):
            raise StubError("this project never sends tools and a response format together")
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("auto", "none", "required"):
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        if named not in {t.get("function", {}).get("name") for t in body.get("tools") or []}:
            raise StubError(f"tool_choice names no offered tool: {choice!r:.200}")
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body and (not isinstance(body[key], int) or body[key] < 1):
            raise StubError(f"{key} must be a positive integer")


def forced_tool(body: dict[str, Any]) -> str | None:
    """The tool ``tool_choice`` names, if any."""
    choice = body.get("tool_choice")
    return choice.get("function", {}).get("name") if isinstance(choice, dict) else None


def asked_schema(body: dict[str, Any]) -> str | None:
    """The schema the request asks the reply to follow, whichever way it asks (the four structured modes)."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"]["name"]
    if response_format.get("type") == "json_object":
        return response_format["schema"].get("title")
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    if forced_tool(body) == "TeamSpec" and tools == ["TeamSpec"]:
        return "TeamSpec"
    last = body["messages"][-1].get("content") if body["messages"] else ""
    if isinstance(last, str) and last.startswith(PROMPT_INSTRUCTION):
        return json.loads(last.split("\n", 1)[1]).get("title")
    return None


class ServerRefused(Exception):
    """The server refuses this way of asking (answered with :attr:`status`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class OpenAIStub:
    """Serves a :class:`FakeModel` over HTTP until :meth:`close`. Use as a context manager."""

    def __init__(self, model: FakeModel | None = None, api_key: str = API_KEY) -> None:
        self.model = model or FakeModel()
        self.api_key = api_key
        #: How replies report usage, as servers differ: "full", "total_only" (total_tokens alone) or "none".
        self.usage_mode = "full"
        #: The next this many structured (json_schema) replies are cut off at the length limit.
        self.cut_off_structured = 0
        #: The next this many tool calls carry arguments that are JSON but not an object.
        self.bad_tool_args = 0
        #: ``response_format`` types answered with HTTP 500, as llama-cpp-python answers ``json_schema``.
        self.refused_formats: set[str] = set()
        #: ``response_format`` types whose requests are dropped without an answer (llama-cpp-python, when the
        #: schema's grammar is too large for llama.cpp).
        self.dropped_formats: set[str] = set()
        #: Ignore ``tools`` unless ``tool_choice`` names one (answer in prose), as llama-cpp-python does.
        self.tools_need_choice = False
        #: Seconds to wait before answering (a slow model; the client's timeout fires first).
        self.delay_seconds = 0.0
        #: Every reply loops (repeats itself) until the output cap or the context (``context_tokens``) ends it.
        self.looping = False
        self.context_tokens = 8192
        #: Requests answered with an HTTP error on purpose (status, message), and requests whose client left.
        self.refused: list[tuple[int, str]] = []
        self.requests: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        check_request(body)
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        response_format = body.get("response_format")
        if response_format and response_format.get("type") in self.refused_formats:
            raise ServerRefused(500, f"response_format {response_format['type']} is not supported")
        schema = asked_schema(body)
        if schema == "TeamSpec" and forced_tool(body) == "TeamSpec":
            tools = []  # the schema is the tool: the model writes the spec as its arguments
        ignored = self.tools_need_choice and tools and forced_tool(body) is None
        with self._lock:
            reply = self.model.reply(body["messages"], [] if ignored else tools, schema)
        if ignored and reply.tool_calls:  # a chatty reply instead of the call the tools were for
            reply = type(reply)(content=f"I would call {reply.tool_calls[0][0]} here. " + self.model.prose)
        if schema == "TeamSpec" and forced_tool(body) == "TeamSpec":
            reply = type(reply)(tool_calls=[("TeamSpec", json.loads(reply.content or "{}"))])
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:20]}",
                    "type": "function",
                    "function": {"name": n, "arguments": json.dumps(a)},
                }
                for n, a in reply.tool_calls
            ]
            if self.bad_tool_args > 0:
                self.bad_tool_args -= 1
                for call in message["tool_calls"]:
                    call["function"]["arguments"] = '["not", "an", "object"]'

        prompt = approx_tokens(
            json.dumps(body["messages"]) + json.dumps(body.get("tools") or "") + json.dumps(response_format or "")
        )
        completion = approx_tokens(reply.content or json.dumps(message.get("tool_calls")))
        finish = "tool_calls" if reply.tool_calls else "stop"
        if schema and self.cut_off_structured > 0:
            self.cut_off_structured -= 1
            message["content"] = (reply.content or "")[: max(1, len(reply.content or "") // 3)]
            finish = "length"
        if self.looping:  # generation runs on until the cap the request set, else to the end of the context
            cap = body.get("max_tokens") or body.get("max_completion_tokens") or self.context_tokens - prompt
            start = (reply.content or "I will now repeat myself. ")[:40]
            message["content"] = (start * (4 * cap // len(start) + 1))[: 4 * cap]
            message.pop("tool_calls", None)
            completion, finish = cap, "length"
        usage: dict[str, int] | None = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if self.usage_mode == "total_only":
            usage = {"total_tokens": prompt + completion}
        elif self.usage_mode == "none":
            usage = None
        answer = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_stub",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
        }
        if usage is not None:
            answer["usage"] = usage
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                sent = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if sent != stub.api_key:  # echoing the key, as some compatible servers do
                    message = f"Incorrect API key provided: {sent}"
                    self._send(401, {"error": {"message": message, "type": "invalid_request_error"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with stub._lock:
                    stub.requests.append(body)
                if stub.delay_seconds:
                    time.sleep(stub.delay_seconds)
                if (body.get("response_format") or {}).get("type") in stub.dropped_formats:
                    with stub._lock:
                        stub.refused.append((0, "dropped"))
                    self.close_connection = True
                    self.connection.shutdown(2)  # no status line, no body: the client sees the connection end
                    return
                try:
                    payload = stub.completion(body)
                except ServerRefused as exc:
                    with stub._lock:
                        stub.refused.append((exc.status, str(exc)))
                    self._send(exc.status, {"error": {"message": str(exc), "type": "server_error", "code": exc.status}})
                    return
                except Exception as exc:  # a bad request: answer 400 like the API, and remember it
                    with stub._lock:
                        stub.errors.append(f"{type(exc).__name__}: {exc}")
                    self._send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                    return
                with stub._lock:
                    stub.responses.append(payload)
                try:
                    self._send(200, payload)
                except OSError:  # the client left (its timeout): the work was done all the same
                    with stub._lock:
                        stub.refused.append((0, "client gone"))

        return Handler
