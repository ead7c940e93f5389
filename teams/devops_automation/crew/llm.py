"""The language model behind the crew: any LangChain chat model, driven through a ``crewai.BaseLLM``.

Why LangChain here (README: "LLM drafting"): ``langchain-openai``'s ``ChatOpenAI`` speaks to OpenAI
and to any OpenAI-compatible server (``OPENAI_BASE_URL``), its ``bind_tools`` gives native tool calls
and its ``with_structured_output(method="json_schema")`` gives schema-constrained output, and it
reports token usage on every reply. :class:`LangChainLLM` is the small adapter that lets CrewAI agents
use it, so swapping in another LangChain chat model (Anthropic, Ollama, Azure, ...) is one argument to
:func:`devops_automation.crew.build_crew_components`, with nothing CrewAI-specific to configure.

Every HTTP call to the model is counted where it is made (:mod:`.metering`: the chat model's httpx client
counts each ``/chat/completions`` request and reads its reply's usage), also when LangChain or the SDK fail
on the reply, and for a timed-out attempt; what the server did not report is estimated and marked so. For a
chat model built elsewhere (no metered client), CrewAI's own per-LLM accounting of the replies is used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from crewai.llms.base_llm import BaseLLM
from pydantic import BaseModel, Field, ValidationError

from ..errors import ConfigurationError
from ..models import LLMUsage
from ..settings import Settings
from .metering import CURRENT, Tally, metered_client

LLMFactory = Callable[[], BaseLLM]


class StructuredOutputError(ValueError):
    """The model's structured reply was not valid JSON for the schema, or failed its pydantic model."""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return "" if content is None else str(content)


def to_langchain_messages(messages: list[dict[str, Any]]) -> list[Any]:
    """CrewAI's OpenAI-style message dicts as LangChain messages (tool calls and results included)."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    converted: list[Any] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "system":
            converted.append(SystemMessage(content=_text(content)))
        elif role == "assistant":
            calls = []
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                arguments = function.get("arguments") or "{}"
                args = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
                calls.append(
                    {"name": function.get("name", ""), "args": args, "id": call.get("id"), "type": "tool_call"}
                )
            converted.append(AIMessage(content=_text(content), tool_calls=calls))
        elif role == "tool":
            converted.append(ToolMessage(content=_text(content), tool_call_id=str(message.get("tool_call_id", ""))))
        else:
            converted.append(HumanMessage(content=content if isinstance(content, list) else _text(content)))
    return converted


def response_format_for(model: type[BaseModel]) -> dict[str, Any]:
    """The ``json_schema`` response format for ``model``, prepared the way CrewAI's own OpenAI provider
    prepares it (``strict``, references inlined, every property required). The schema constrains the
    model's reply; the pydantic model, then the policy gate, still judge it."""
    from crewai.utilities.pydantic_schema_utils import generate_model_description

    return dict(generate_model_description(model)["json_schema"])


class LangChainLLM(BaseLLM):
    """A CrewAI LLM backed by a LangChain chat model (native tool calls, json_schema output, usage)."""

    llm_type: str = "langchain"
    chat_model: Any = Field(exclude=True, description="a langchain_core BaseChatModel")
    context_window: int = 128_000
    tally: Tally = Field(default_factory=Tally, exclude=True, description="HTTP calls this adapter made")

    def call(
        self,
        messages: str | list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: type[BaseModel] | None = None,
    ) -> str | list[dict[str, Any]] | BaseModel:
        """One chat completion: a list of tool calls, a validated ``response_model``, or text."""
        history = to_langchain_messages(self._format_messages(messages))  # type: ignore[arg-type]
        token = CURRENT.set(self.tally)  # the metered HTTP client counts into this adapter's tally
        try:
            return self._call(history, tools, response_model)
        finally:
            CURRENT.reset(token)

    def _call(
        self, history: list[Any], tools: list[dict[str, Any]] | None, response_model: type[BaseModel] | None
    ) -> str | list[dict[str, Any]] | BaseModel:
        if response_model is not None and not tools:
            return self._structured(history, response_model)
        model = self.chat_model.bind_tools(tools) if tools else self.chat_model
        reply = model.invoke(history)
        self._count(reply)
        if getattr(reply, "tool_calls", None):
            return [
                {
                    "id": call.get("id") or f"call_{index}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call.get("args") or {})},
                }
                for index, call in enumerate(reply.tool_calls)
            ]
        return _text(reply.content)

    def _structured(self, history: list[Any], response_model: type[BaseModel]) -> BaseModel:
        runnable = self.chat_model.with_structured_output(
            response_format_for(response_model), method="json_schema", include_raw=True
        )
        out = runnable.invoke(history)
        self._count(out.get("raw"))
        if out.get("parsing_error") is not None or not isinstance(out.get("parsed"), dict):
            raise StructuredOutputError(
                f"the model's {response_model.__name__} is not a JSON object: {out.get('parsing_error')}"
            )
        try:
            return response_model.model_validate(out["parsed"])
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:8]
            )
            raise StructuredOutputError(f"the model's {response_model.__name__} is invalid: {problems}") from exc

    def _count(self, reply: Any) -> None:
        """Add one call and its reported tokens to this LLM's usage (zero tokens if none reported)."""
        usage = getattr(reply, "usage_metadata", None) or {}
        self._track_token_usage_internal(
            {
                "prompt_tokens": int(usage.get("input_tokens", 0)),
                "completion_tokens": int(usage.get("output_tokens", 0)),
            }
        )

    def supports_function_calling(self) -> bool:
        return True

    def supports_stop_words(self) -> bool:
        return False  # native tool calling needs no ReAct stop words

    def get_context_window_size(self) -> int:
        return int(self.context_window * 0.85)

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        """A rough count (4 characters a token) for CrewAI's context-window checks; never billed."""
        text = messages if isinstance(messages, str) else json.dumps(messages, default=str)
        return math.ceil(len(text) / 4)


def split_model_name(name: str) -> tuple[str, str]:
    """``"openai/gpt-4o-mini"`` -> ``("openai", "gpt-4o-mini")``; no prefix means OpenAI."""
    provider, _, model = name.partition("/")
    return (provider, model) if model else ("openai", provider)


def make_chat_model(settings: Settings) -> Any:
    """``ChatOpenAI`` for ``DEVOPS_CREW_LLM=openai/<model>``, at ``OPENAI_BASE_URL`` when set."""
    from langchain_openai import ChatOpenAI

    assert settings.llm
    provider, model = split_model_name(settings.llm)
    if provider != "openai" or not model:
        raise ConfigurationError(
            f"DEVOPS_CREW_LLM={settings.llm}: only openai/<model> is built in (any OpenAI-compatible server "
            "through OPENAI_BASE_URL); pass another LangChain chat model to build_crew_components(chat_model=...)"
        )
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if not key and not settings.openai_base_url:
        raise ConfigurationError(
            f"DEVOPS_CREW_LLM={settings.llm} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)"
        )
    return ChatOpenAI(
        model=model,
        api_key=key or "unused",  # local OpenAI-compatible servers often take no key
        base_url=settings.openai_base_url,
        http_client=metered_client(settings.llm_timeout_seconds),
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
        temperature=settings.llm_temperature,
        use_responses_api=False,  # chat completions: what OpenAI-compatible servers speak
    )


def llm_factory(chat_model: Any, model_name: str) -> LLMFactory:
    """A fresh adapter per kickoff, so each kickoff's usage is counted on its own instance."""

    def build() -> BaseLLM:
        return LangChainLLM(model=model_name, chat_model=chat_model)

    return build


def usage_of(llm: BaseLLM, settings: Settings, model_name: str) -> LLMUsage:
    """What ``llm`` consumed so far, priced with the settings' table (USD per million tokens): the HTTP
    calls its metered client counted (estimates marked), else CrewAI's accounting of the replies."""
    tally = getattr(llm, "tally", None)
    if isinstance(tally, Tally) and tally.calls:
        calls, prompt, completion, estimated = tally.totals()
    else:
        metrics = llm.get_token_usage_summary()
        calls, prompt, completion = metrics.successful_requests, metrics.prompt_tokens, metrics.completion_tokens
        estimated = False
    prompt_price, completion_price = settings.llm_price(model_name)
    cost = (prompt * prompt_price + completion * completion_price) / 1_000_000
    return LLMUsage(
        calls=calls, prompt_tokens=prompt, completion_tokens=completion, cost_usd=round(cost, 6), estimated=estimated
    )
