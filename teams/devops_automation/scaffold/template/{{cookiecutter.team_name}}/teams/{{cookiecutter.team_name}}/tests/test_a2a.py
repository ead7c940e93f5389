"""A2A tests of the {{ cookiecutter.team_name }} team: its agent card comes from team.yaml, and a message sent
with the a2a-sdk client runs the crew (a scripted LLM, no network) and returns the crew's answer.

Run with ``pytest --import-mode=importlib teams/{{ cookiecutter.team_name }}/tests``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

for _name in ("CREWAI_DISABLE_TELEMETRY", "CREWAI_DISABLE_VERSION_CHECK", "OTEL_SDK_DISABLED"):
    os.environ.setdefault(_name, "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

import httpx  # noqa: E402 (after the offline switches)
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory, create_text_message_object  # noqa: E402
from a2a.types import Task, TaskState  # noqa: E402
from crewai import BaseLLM  # noqa: E402

TEAM_DIR = Path(__file__).resolve().parents[1]
TEAM_NAME = "{{ cookiecutter.team_name }}"
PACKAGE = "_generated_team_" + TEAM_NAME
BASE_URL = "http://team.test"
ANSWER = "A2A-ANSWER-7f3c the scripted crew's final answer"


def _import(module: str) -> ModuleType:
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, TEAM_DIR / "__init__.py", submodule_search_locations=[str(TEAM_DIR)]
        )
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.{module}")


#: Every prompt any copy of the scripted LLM was given (CrewAI may copy an agent's LLM), as text when
#: given (CrewAI reuses and extends its message lists).
PROMPTS: list[str] = []


class ScriptedLLM(BaseLLM):
    """Answers every call with the final answer and records the prompts it was given in PROMPTS."""

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        PROMPTS.append(str(messages))
        return f"Thought: I can answer now.\nFinal Answer: {ANSWER}"

    def supports_function_calling(self) -> bool:
        return False


@pytest.fixture(scope="module")
def server() -> ModuleType:
    return _import("server")


@pytest.fixture(scope="module")
def entry() -> dict[str, Any]:
    return _import("crew").safe_load((TEAM_DIR / "team.yaml").read_text(encoding="utf-8"))


async def _card_and_reply(app: Any, text: str) -> tuple[Any, list[Any]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=120) as http:
        card = await A2ACardResolver(http, BASE_URL).get_agent_card()
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
        events = [event async for event in client.send_message(create_text_message_object(content=text))]
    return card, events


def test_the_card_is_built_from_the_team_spec(server: ModuleType, entry: dict[str, Any]) -> None:
    card = server.agent_card(BASE_URL + "/")
    assert card.name == entry["name"] == TEAM_NAME
    assert card.description == entry["description"]
    assert [skill.name for skill in card.skills] == [str(s) for s in entry["skills"]]
    assert len({skill.id for skill in card.skills}) == len(card.skills)
    assert card.url == BASE_URL + "/"


def test_a_message_runs_the_crew_and_answers_through_a2a(server: ModuleType, entry: dict[str, Any]) -> None:
    crew = _import("crew")
    llm = ScriptedLLM(model="scripted-offline")
    def build(request: str) -> Any:
        return crew.build_crew(llm=llm, request=request)

    app = server.create_app(BASE_URL + "/", build_crew=build)
    request = "Please handle {this} for the billing team"
    card, events = asyncio.run(_card_and_reply(app, request))

    assert card.name == entry["name"]
    ((task, _update),) = events
    assert isinstance(task, Task)
    assert task.status.state == TaskState.completed
    reply = " ".join(part.root.text for part in task.status.message.parts)
    assert ANSWER in reply
    # The crew really ran on the caller's text, braces and all (no template interpolation).
    assert any(request in prompt for prompt in PROMPTS)


def test_probes_answer(server: ModuleType) -> None:
    app = server.create_app(BASE_URL + "/")

    async def probe() -> tuple[int, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
            return (await http.get("/healthz")).status_code, (await http.get("/readyz")).status_code

    assert asyncio.run(probe()) == (200, 200)
