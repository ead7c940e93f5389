"""Count what the model server was asked to do, at the HTTP layer, so no call goes uncounted.

LangChain and the OpenAI SDK can fail *after* a reply arrived and before anything reports its usage (tool
arguments that are not a JSON object; a structured reply cut off at the length limit), and a timed-out
attempt has no reply at all. So the chat model's ``httpx`` client carries event hooks: every
``/chat/completions`` request is one call; its reply's ``usage`` is read when there is one. What the server
did not report is estimated (four characters a token over the request body and the reply's text) and the
usage is marked ``estimated``; it is never zero for work the server was asked to do.

The hooks add to the :class:`Tally` of the LLM adapter that is calling (a context variable set around each
call by :class:`~devops_automation.crew.llm.LangChainLLM`), so concurrent kickoffs on one shared chat model
count apart.
"""

from __future__ import annotations

import json
import math
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str | bytes) -> int:
    """A rough token count: four characters a token (at least 1 for non-empty text)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


@dataclass
class _Call:
    prompt_estimate: int
    prompt: int | None = None
    completion: int | None = None
    answered: bool = False
    estimated: bool = True


@dataclass
class Tally:
    """The HTTP calls one LLM adapter made. Thread-safe."""

    calls: list[_Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self, body: bytes) -> _Call:
        call = _Call(prompt_estimate=estimate_tokens(body))
        with self._lock:
            self.calls.append(call)
        return call

    def discard(self, call: _Call) -> None:
        """Forget ``call``: it never reached the server."""
        with self._lock:
            self.calls = [c for c in self.calls if c is not call]

    def totals(self) -> tuple[int, int, int, bool]:
        """``(calls, prompt_tokens, completion_tokens, estimated)``: reported where the server reported,
        estimated otherwise (a call without an answer costs at least its prompt)."""
        with self._lock:
            calls = list(self.calls)
        prompt = sum(c.prompt if c.prompt is not None else c.prompt_estimate for c in calls)
        completion = sum(c.completion or 0 for c in calls)
        return len(calls), prompt, completion, any(c.estimated for c in calls)


CURRENT: ContextVar[Tally | None] = ContextVar("devops_crew_llm_tally", default=None)
_PENDING = "devops_crew_call"


def _on_request(request: httpx.Request) -> None:
    tally = CURRENT.get()
    if tally is None or not request.url.path.rstrip("/").endswith("/chat/completions"):
        return
    request.extensions[_PENDING] = tally.started(request.content)


def _on_response(response: httpx.Response) -> None:
    call: _Call | None = response.request.extensions.get(_PENDING)
    if call is None:
        return
    response.read()
    call.answered = True
    if response.status_code >= 400:  # refused before any generation: nothing billed, the prompt unread
        call.prompt, call.completion, call.estimated = 0, 0, False
        return
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        body = {}
    settle(call, body if isinstance(body, dict) else {})


def settle(call: _Call, body: dict[str, Any]) -> None:
    """Fill ``call`` from a chat completion body: its ``usage`` where given, estimates for the rest."""
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    prompt, completion, total = (usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    text = ""
    for choice in body.get("choices") or []:
        message = (choice.get("message") or {}) if isinstance(choice, dict) else {}
        text += str(message.get("content") or "")
        text += "".join(json.dumps(c.get("function", {})) for c in message.get("tool_calls") or [])
    if isinstance(prompt, int) and isinstance(completion, int):
        call.prompt, call.completion, call.estimated = prompt, completion, False
    elif isinstance(total, int):
        call.prompt = min(total, call.prompt_estimate)
        call.completion = total - call.prompt
    else:
        call.prompt, call.completion = call.prompt_estimate, estimate_tokens(text)


class _Transport(httpx.HTTPTransport):
    """Un-counts a request that never reached the server (connection refused): the server was asked nothing."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except httpx.ConnectError:
            call = request.extensions.get(_PENDING)
            tally = CURRENT.get()
            if call is not None and tally is not None:
                tally.discard(call)
            raise


def metered_client(timeout: float) -> httpx.Client:
    """The httpx client for ``ChatOpenAI(http_client=...)``: every chat completion the server got is counted
    (a request refused at connect time is not: the server was asked nothing)."""
    return httpx.Client(
        timeout=timeout,
        transport=_Transport(),
        event_hooks={"request": [_on_request], "response": [_on_response]},
    )
