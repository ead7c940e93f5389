"""Fixtures for the crew: an app wired with the crew's components, a scripted LLM, an OpenAI stub.

CrewAI is imported here first, through ``isolate_crewai``, so what it writes on import lands in a
temporary folder rather than in the home directory of whoever runs the tests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_automation.quiet import isolate_crewai

isolate_crewai(Path(tempfile.mkdtemp(prefix="devops-crew-tests-crewai-")))

from devops_automation.app import App, build_app  # noqa: E402
from devops_automation.crew import CrewComponents, build_crew_components  # noqa: E402
from devops_automation.settings import Settings  # noqa: E402

from ..conftest import make_settings  # noqa: E402
from ..helpers import swap  # noqa: E402
from .fake_model import FakeModel  # noqa: E402
from .openai_stub import API_KEY, OpenAIStub  # noqa: E402
from .scripted import Recorder, scripted_factory  # noqa: E402


def wire(app: App, components: CrewComponents) -> App:
    """What app.py does when DEVOPS_CREW_LLM is set: the crew drafts, revises and writes the PR."""
    swap(app, drafter=components.drafter, reviser=components.reviser, pr_writer=components.pr_writer)
    app.drafter = components.drafter
    return app


class ScriptedCrewApp:
    """An app whose crew talks to a scripted BaseLLM driven by a :class:`FakeModel`."""

    def __init__(self, settings: Settings, model: FakeModel, queue: list[Any] | None = None) -> None:
        factory, self.recorder, self.model = scripted_factory(model, queue)
        self.app = offline_app(settings)
        self.components = build_crew_components(settings, self.app.auditor, self.app.target, llm_factory=factory)
        wire(self.app, self.components)

    @property
    def recorder_calls(self) -> list[dict[str, Any]]:
        return self.recorder.calls


# The scripted tests never reach a provider: the URL is a closed port, should anything try.
SCRIPTED = {"llm": "openai/gpt-4o-mini", "openai_api_key": "sk-unused", "openai_base_url": "http://127.0.0.1:9/v1"}


@pytest.fixture
def crew_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home", **SCRIPTED)


def offline_app(settings: Settings) -> App:
    """build_app with the offline drafter (the crew's components are wired in by the test)."""
    from devops_automation.drafting.offline import OfflineDrafter

    return build_app(settings, drafter=OfflineDrafter())


@pytest.fixture
def scripted_app(crew_settings: Settings) -> Iterator[Callable[..., ScriptedCrewApp]]:
    """``scripted_app(model=FakeModel(...), **settings_overrides)`` -> a ScriptedCrewApp."""
    built: list[ScriptedCrewApp] = []

    def make(model: FakeModel | None = None, queue: list[Any] | None = None, **overrides: Any) -> ScriptedCrewApp:
        settings = make_settings(crew_settings.home, **SCRIPTED, **overrides) if overrides else crew_settings
        crew_app = ScriptedCrewApp(settings, model or FakeModel(), queue)
        built.append(crew_app)
        return crew_app

    yield make
    for crew_app in built:
        crew_app.app.close()


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def stub_settings(home: Path, stub: OpenAIStub | str, **overrides: Any) -> Settings:
    """Settings for the real provider path against ``stub`` (or a base URL)."""
    values: dict[str, Any] = {
        "llm": "openai/gpt-4o-mini",
        "openai_api_key": API_KEY,
        "openai_base_url": stub if isinstance(stub, str) else stub.base_url,
    }
    values.update(overrides)
    return make_settings(home, **values)


__all__ = ["Recorder", "ScriptedCrewApp", "offline_app", "stub_settings", "wire"]
