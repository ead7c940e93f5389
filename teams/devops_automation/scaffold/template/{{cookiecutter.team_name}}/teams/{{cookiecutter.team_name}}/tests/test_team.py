"""Offline tests of the {{ cookiecutter.team_name }} team: its config loads and its crew builds.

No network: the crew is built around a scripted ``crewai.BaseLLM`` that answers from a list. Run
with ``pytest --import-mode=importlib teams/{{ cookiecutter.team_name }}/tests``.
"""

from __future__ import annotations

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

from crewai import BaseLLM, Crew, Process  # noqa: E402 (after the offline switches)

TEAM_DIR = Path(__file__).resolve().parents[1]
TEAM_NAME = "{{ cookiecutter.team_name }}"
# The team folder is imported under a private name, so a team called like a library cannot shadow it.
PACKAGE = "_generated_team_" + TEAM_NAME


def _yaml(relative: str) -> Any:
    return _import_team().safe_load((TEAM_DIR / relative).read_text(encoding="utf-8"))


def _import_team() -> ModuleType:
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, TEAM_DIR / "__init__.py", submodule_search_locations=[str(TEAM_DIR)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = module
        spec.loader.exec_module(module)
    return importlib.import_module(PACKAGE + ".crew")


class ScriptedLLM(BaseLLM):
    """Answers every call with the next scripted reply and records the prompts it was given."""

    replies: list[str] = ["Final Answer: done"]
    prompts: list[Any] = []

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        self.prompts.append(messages)
        return self.replies[min(len(self.prompts), len(self.replies)) - 1]


@pytest.fixture(scope="module")
def crew_module() -> ModuleType:
    return _import_team()


@pytest.fixture(scope="module")
def agents_config() -> dict[str, Any]:
    return _yaml("config/agents.yaml")


@pytest.fixture(scope="module")
def tasks_config() -> dict[str, Any]:
    return _yaml("config/tasks.yaml")


def test_config_loads(agents_config: dict[str, Any], tasks_config: dict[str, Any]) -> None:
    assert agents_config and tasks_config
    for role, agent in agents_config.items():
        for key in ("role", "goal", "backstory"):
            assert isinstance(agent.get(key), str) and agent[key].strip(), f"{role}.{key}"
    for name, task in tasks_config.items():
        for key in ("description", "expected_output", "agent"):
            assert isinstance(task.get(key), str) and task[key].strip(), f"{name}.{key}"
        assert task["agent"] in agents_config, f"task {name} names unknown agent {task['agent']}"


def test_registry_entry_matches_the_config(agents_config: dict[str, Any]) -> None:
    entry = _yaml("team.yaml")
    assert entry["name"] == TEAM_NAME == TEAM_DIR.name
    assert entry["agents"] == list(agents_config)
    for key in ("description", "department", "skills", "owner", "monthly_cost_usd", "llm_model"):
        assert key in entry, key


def test_exactly_one_manager(crew_module: ModuleType, agents_config: dict[str, Any]) -> None:
    modules = {role: importlib.import_module(f"{PACKAGE}.agents.{role}") for role in agents_config}
    managers = [role for role, module in modules.items() if module.IS_MANAGER]
    assert managers == [crew_module.MANAGER_ROLE]


def test_every_agent_has_a_module(crew_module: ModuleType, agents_config: dict[str, Any]) -> None:
    modules = {path.stem for path in (TEAM_DIR / "agents").glob("*.py") if path.stem != "__init__"}
    assert modules == set(agents_config)
    for role in agents_config:
        module = importlib.import_module(f"{PACKAGE}.agents.{role}")
        assert role == module.ROLE and callable(module.build)


def test_crew_builds_offline(
    crew_module: ModuleType, agents_config: dict[str, Any], tasks_config: dict[str, Any]
) -> None:
    llm = ScriptedLLM(model="scripted-offline")
    crew = crew_module.build_crew(llm=llm)

    assert isinstance(crew, Crew)
    assert crew.process == Process.hierarchical
    manager = agents_config[crew_module.MANAGER_ROLE]
    assert crew.manager_agent is not None and crew.manager_agent.goal == manager["goal"]
    assert [agent.goal for agent in crew.agents] == [
        agent["goal"] for role, agent in agents_config.items() if role != crew_module.MANAGER_ROLE
    ]
    assert [task.description for task in crew.tasks] == [t["description"] for t in tasks_config.values()]
    assert [task.agent.goal for task in crew.tasks] == [
        agents_config[t["agent"]]["goal"] for t in tasks_config.values()
    ]
    assert all(agent.llm is llm for agent in [*crew.agents, crew.manager_agent])
    assert llm.prompts == []  # building a crew asks the model nothing
