"""A scripted ``crewai.BaseLLM`` for crew-logic tests: no HTTP, every call recorded and counted."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from crewai.llms.base_llm import BaseLLM
from pydantic import BaseModel, Field

from .fake_model import FakeModel, Reply, approx_tokens, message_text


class Recorder:
    """Shared by every ScriptedLLM a factory makes: the calls, in order."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []


class ScriptedLLM(BaseLLM):
    """Answers from a :class:`FakeModel` (or a queue of scripted replies, taken first)."""

    llm_type: str = "scripted"
    model_impl: Any = Field(exclude=True)
    recorder: Any = Field(exclude=True)
    queue: Any = Field(default=None, exclude=True)  # list of Reply or callables, shared

    def call(
        self,
        messages: Any,
        tools: list[dict[str, Any]] | None = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: type[BaseModel] | None = None,
    ) -> Any:
        messages = self._format_messages(messages)
        names = [t["function"]["name"] for t in tools or []]
        schema = response_model.__name__ if response_model is not None and not tools else None
        reply: Reply = self.queue.pop(0) if self.queue else self.model_impl.reply(messages, names, schema)
        if callable(reply):
            reply = reply(messages, names, schema)
        self.recorder.calls.append({"messages": messages, "tools": names, "schema": schema, "reply": reply})
        out = reply.content or json.dumps([[n, a] for n, a in reply.tool_calls])
        self._track_token_usage_internal(
            {"prompt_tokens": approx_tokens(message_text(messages)), "completion_tokens": approx_tokens(out)}
        )
        if reply.tool_calls:
            return [
                {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                for i, (n, a) in enumerate(reply.tool_calls)
            ]
        if schema is not None:
            assert response_model is not None
            return response_model.model_validate_json(reply.content or "")
        return reply.content or ""

    def supports_function_calling(self) -> bool:
        return True

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 100_000

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        return 1


def scripted_factory(
    model: FakeModel | None = None, queue: list[Reply | Callable[..., Reply]] | None = None
) -> tuple[Callable[[], BaseLLM], Recorder, FakeModel]:
    """A factory of ScriptedLLMs sharing one fake model, one queue and one recorder."""
    model = model or FakeModel()
    recorder = Recorder()
    shared = queue if queue is not None else []

    def build() -> BaseLLM:
        return ScriptedLLM(model="scripted", model_impl=model, recorder=recorder, queue=shared)

    return build, recorder, model
