"""The language model behind the crew: any LangChain chat model, driven through a ``crewai.BaseLLM``.

Why LangChain here (README: "LLM drafting"): ``langchain-openai``'s ``ChatOpenAI`` speaks to OpenAI
and to any OpenAI-compatible server (``OPENAI_BASE_URL``), its ``bind_tools`` gives native tool calls
(``tool_choice`` forces an agent's one required tool), :mod:`.structured` asks it for schema-constrained output
in the mode the server takes (json_schema, json_object with a schema, a forced tool call, or the prompt), and it
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
import time
from collections.abc import Callable
from typing import Any

from crewai.llms.base_llm import BaseLLM
from pydantic import BaseModel, Field

from ..errors import ConfigurationError
from ..models import LLMUsage
from ..settings import Settings
from . import structured
from .metering import CURRENT, Tally, metered_client
from .structured import ModeChooser

LLMFactory = Callable[[], BaseLLM]


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


#: Transient failures retried (``DEVOPS_CREW_LLM_MAX_RETRIES``): connection refused or reset, 429, and the
#: gateway statuses. A *timeout* is never retried: the server may still be generating for the client that
#: left (llama.cpp serves one request at a time), so a retry would only queue behind it (issue 15).
RETRIED_STATUSES = frozenset({429, 502, 503, 504})


def required_tool(agent: Any, tools: list[dict[str, Any]] | None) -> str | None:
    """The tool ``agent`` must call, if any: its only tool, when that tool's result is the agent's answer
    (``result_as_answer``) and it is offered now. Sent as ``tool_choice`` (servers ignore ``tools`` without it,
    and a model that answers in prose instead would have its prose taken as the answer)."""
    own = list(getattr(agent, "tools", None) or [])
    offered = {t.get("function", {}).get("name") for t in tools or []}
    if len(own) == 1 and getattr(own[0], "result_as_answer", False) and own[0].name in offered:
        return str(own[0].name)
    return None


class LangChainLLM(BaseLLM):
    """A CrewAI LLM backed by a LangChain chat model (native tool calls, structured output, usage).

    Each call's output is capped (``settings.llm_max_tokens_for(task)``), an agent's one required tool is
    forced with ``tool_choice``, structured replies are asked in the mode :class:`ModeChooser` picks, and
    transient failures (not timeouts) are retried ``settings.llm_max_retries`` times."""

    llm_type: str = "langchain"
    chat_model: Any = Field(exclude=True, description="a langchain_core BaseChatModel")
    settings: Any = Field(default=None, exclude=True, description="the Settings (caps, retries, mode); None: defaults")
    modes: ModeChooser = Field(default_factory=ModeChooser, exclude=True)
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
            model = self._capped(getattr(from_task, "name", None))
            if response_model is not None and not tools:
                return self._structured(model, history, response_model)
            return self._call(model, history, tools, required_tool(from_agent, tools))
        finally:
            CURRENT.reset(token)

    def _capped(self, task: str | None) -> Any:
        """The chat model with this task's output cap (``max_tokens``; ChatOpenAI sends it as
        ``max_completion_tokens``, and also as ``max_tokens`` for servers that read only that)."""
        cap = (self.settings or Settings(_env_file=None)).llm_max_tokens_for(task)
        fields = getattr(type(self.chat_model), "model_fields", {})
        if "max_tokens" not in fields:
            return self.chat_model
        update: dict[str, Any] = {"max_tokens": cap}
        if "extra_body" in fields and getattr(self.chat_model, "openai_api_base", None):
            update["extra_body"] = {**(self.chat_model.extra_body or {}), "max_tokens": cap}
        return self.chat_model.model_copy(update=update)

    def _retrying(self, invoke: Callable[[], Any]) -> Any:
        import openai

        retries = self.settings.llm_max_retries if self.settings is not None else 1
        for attempt in range(retries + 1):
            try:
                return invoke()
            except openai.APITimeoutError:
                raise
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                if attempt >= retries or (status is not None and status not in RETRIED_STATUSES):
                    raise
                time.sleep(min(0.5 * 2**attempt, 8.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(
        self, model: Any, history: list[Any], tools: list[dict[str, Any]] | None, required: str | None
    ) -> str | list[dict[str, Any]]:
        # Tool schemas without length bounds (the tool's args_schema still enforces them): a forced tool is a
        # grammar on llama-cpp-python, and the PR author's 4,000-character summary made it too large (issue 15).
        offered = [structured.grammar_friendly(t) for t in tools or []]
        bound = model.bind_tools(offered, tool_choice=required) if offered else model
        reply = self._retrying(lambda: bound.invoke(history))
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

    def _structured(self, model: Any, history: list[Any], response_model: type[BaseModel]) -> BaseModel:
        import openai

        last: Exception | None = None
        for mode in self.modes.candidates():
            try:
                parsed, raw = self._retrying(lambda m=mode: structured.ask(model, history, response_model, m))
            except openai.APITimeoutError:
                raise
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                # A refusal, or a connection the server dropped without an answer (llama-cpp-python does that
                # when the schema's grammar is too large for llama.cpp): try the next way, if there is one.
                if self.modes.may_fall_back(mode, getattr(exc, "status_code", None)):
                    last = exc
                    continue
                raise
            self._count(raw)
            self.modes.worked(mode)
            return parsed
        assert last is not None
        raise last

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
        max_retries=0,  # LangChainLLM retries transient failures itself, never a timeout
        temperature=settings.llm_temperature,
        use_responses_api=False,  # chat completions: what OpenAI-compatible servers speak
    )


def llm_factory(chat_model: Any, model_name: str, settings: Settings | None = None) -> LLMFactory:
    """A fresh adapter per kickoff, so each kickoff's usage is counted on its own instance; the adapters
    share one :class:`ModeChooser`, so the structured-output mode learnt on the first call is kept."""
    modes = ModeChooser(configured=settings.llm_structured_output if settings is not None else "auto")

    def build() -> BaseLLM:
        return LangChainLLM(model=model_name, chat_model=chat_model, settings=settings, modes=modes)

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
