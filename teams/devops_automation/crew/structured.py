"""Structured replies from any OpenAI-compatible server: four ways of asking, in a documented order.

Servers differ in what they honour (README "OpenAI-compatible servers"; issue 15):

- ``json_schema``: ``response_format: {"type": "json_schema", ...}`` (OpenAI; vLLM). llama-cpp-python's
  server answers it with HTTP 500.
- ``json_object``: ``response_format: {"type": "json_object", "schema": ...}``: llama-cpp-python turns the
  schema into a grammar; servers that ignore ``schema`` still return JSON.
- ``tool_call``: the schema as the only tool, forced with ``tool_choice`` (servers that ignore ``tools``
  unless ``tool_choice`` names one).
- ``prompt``: the schema in the prompt, the reply's text parsed as JSON (any chat server).

:class:`ModeChooser` holds the configured mode (``DEVOPS_CREW_LLM_STRUCTURED_OUTPUT``). In ``auto`` it tries
the modes in the order above and moves to the next only when the server *refuses* a mode (an HTTP status in
:data:`REFUSED_STATUSES`, or a connection dropped without an answer, as llama-cpp-python does when llama.cpp
cannot build the schema's grammar, on a mode that has never worked); the first mode that works is kept for every later
call on the same chat model. A reply that arrives but is not valid (cut off, not JSON, fails the pydantic
model) is the model's fault, not the mode's: it raises :class:`StructuredOutputError` and is not retried.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

Mode = Literal["json_schema", "json_object", "tool_call", "prompt"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "tool_call", "prompt")
#: Statuses that mean "this server does not take this way of asking" (llama-cpp-python: 500 for json_schema).
REFUSED_STATUSES = frozenset({400, 404, 415, 422, 500, 501})
PROMPT_INSTRUCTION = (
    "Answer with exactly one JSON object that matches this JSON schema, and nothing else (no prose, no code fence):"
)


class StructuredOutputError(ValueError):
    """The model's structured reply was not valid JSON for the schema, or failed its pydantic model."""


@dataclass
class ModeChooser:
    """Which structured-output mode to ask one chat model with. Thread-safe; shared by the adapters of one
    chat model, so what was learnt about the server holds for the whole process."""

    configured: str = "auto"
    working: Mode | None = None
    refused: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def candidates(self) -> list[Mode]:
        """The modes to try for the next call, in order (one unless ``auto`` is still learning)."""
        with self._lock:
            if self.configured != "auto":
                return [self.configured]  # type: ignore[list-item]
            if self.working is not None:
                return [self.working]
            return [m for m in MODES if m not in self.refused] or [MODES[-1]]

    def may_fall_back(self, mode: Mode, status: int | None) -> bool:
        """Record that the server refused ``mode`` with HTTP ``status`` (None: it dropped the connection without
        an answer); True when another mode may be tried."""
        with self._lock:
            refused = status is None or status in REFUSED_STATUSES
            if self.configured != "auto" or self.working == mode or not refused:
                return False
            self.refused.add(mode)
            return True

    def worked(self, mode: Mode) -> None:
        with self._lock:
            if self.working is None:
                self.working = mode


def response_format_for(model: type[BaseModel]) -> dict[str, Any]:
    """The ``json_schema`` response format for ``model``, prepared the way CrewAI's own OpenAI provider
    prepares it (``strict``, references inlined, every property required): ``{"name", "strict", "schema"}``.
    The schema constrains the model's reply; the pydantic model, then the policy gate, still judge it."""
    from crewai.utilities.pydantic_schema_utils import generate_model_description

    return dict(generate_model_description(model)["json_schema"])


#: Bounds that grammar-based servers expand into one grammar rule per repetition (llama.cpp refuses, and
#: llama-cpp-python's server then died, on the TeamSpec's 2,000-character strings). The pydantic model still
#: enforces them on the reply.
GRAMMAR_HEAVY = frozenset({"maxLength", "minLength", "maxItems", "minItems", "pattern"})


def grammar_friendly(schema: Any) -> Any:
    """``schema`` without :data:`GRAMMAR_HEAVY` keywords (recursively), for modes a server turns into a grammar."""
    if isinstance(schema, dict):
        return {k: grammar_friendly(v) for k, v in schema.items() if k not in GRAMMAR_HEAVY}
    if isinstance(schema, list):
        return [grammar_friendly(v) for v in schema]
    return schema


def ask(chat_model: Any, history: list[Any], response_model: type[BaseModel], mode: Mode) -> tuple[BaseModel, Any]:
    """One structured call in ``mode``: ``(validated response_model, raw AIMessage or None)``.

    Raises the SDK's errors as they are (the caller decides on a fallback) and
    :class:`StructuredOutputError` for a reply that is not a valid ``response_model``."""
    from langchain_core.messages import HumanMessage

    spec = response_format_for(response_model)
    name = str(spec.get("name") or response_model.__name__)
    raw: Any = None
    if mode == "json_schema":
        out = chat_model.with_structured_output(spec, method="json_schema", include_raw=True).invoke(history)
        raw = out.get("raw")
        if out.get("parsing_error") is not None or not isinstance(out.get("parsed"), dict):
            raise StructuredOutputError(f"the model's {name} is not a JSON object: {out.get('parsing_error')}")
        return validate(response_model, out["parsed"]), raw
    if mode == "json_object":
        schema = grammar_friendly(spec["schema"])
        raw = chat_model.bind(response_format={"type": "json_object", "schema": schema}).invoke(history)
        return validate(response_model, parse_json(_content(raw), name)), raw
    if mode == "tool_call":
        tool = {
            "type": "function",
            "function": {"name": name, "description": f"Submit the {name}.", "parameters": spec["schema"]},
        }
        raw = chat_model.bind_tools([tool], tool_choice=name).invoke(history)
        calls = [c for c in getattr(raw, "tool_calls", None) or [] if c.get("name") == name]
        if not calls:
            raise StructuredOutputError(f"the model did not call {name} although tool_choice named it")
        return validate(response_model, calls[0].get("args") or {}), raw
    asked = [*history, HumanMessage(content=f"{PROMPT_INSTRUCTION}\n{json.dumps(spec['schema'])}")]
    raw = chat_model.invoke(asked)
    return validate(response_model, parse_json(_content(raw), name)), raw


def _content(message: Any) -> str:
    content = getattr(message, "content", "")
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content or "")


def parse_json(text: str, name: str) -> dict[str, Any]:
    """The JSON object in ``text`` (a Markdown code fence around it is allowed). Raises StructuredOutputError."""
    from langchain_core.exceptions import OutputParserException
    from langchain_core.output_parsers import JsonOutputParser

    try:
        value = JsonOutputParser().parse(text)
    except OutputParserException as exc:
        raise StructuredOutputError(f"the model's {name} is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(value, dict):
        raise StructuredOutputError(f"the model's {name} is not a JSON object")
    return value


def validate(response_model: type[BaseModel], value: dict[str, Any]) -> BaseModel:
    """``response_model`` from ``value``; the first eight problems in the error. Raises StructuredOutputError."""
    try:
        return response_model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:8]
        )
        raise StructuredOutputError(f"the model's {response_model.__name__} is invalid: {problems}") from exc
