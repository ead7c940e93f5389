"""CrewAI is switched off from the network and kept out of the user's home by the program itself."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devops_automation.quiet import OFFLINE_ENV

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from devops_automation.quiet import isolate_crewai

    isolate_crewai(Path(sys.argv[1]))
    from crewai import Agent, Crew, Task
    from tests.crew.scripted import scripted_factory

    factory, recorder, _ = scripted_factory()
    agent = Agent(role="r", goal="g", backstory="b", llm=factory())
    task = Task(description="say hi", expected_output="hi", agent=agent)
    out = Crew(agents=[agent], tasks=[task], tracing=False).kickoff()
    print(json.dumps({"raw": out.raw, "env": {k: os.environ.get(k) for k in sys.argv[2:]}}))
    """
)


@pytest.mark.slow
def test_crewai_writes_nothing_under_home_and_phones_nowhere(tmp_path: Path) -> None:
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREWAI_", "OTEL_"))}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(state), *OFFLINE_ENV],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert result["raw"] == "Nothing to do."
    assert result["env"] == OFFLINE_ENV
    assert list(home.rglob("*")) == []  # no ~/.config/crewai, no ~/.local/share/crewai, no task-output db
    assert (state / "crewai" / "storage" / "latest_kickoff_task_outputs.db").is_file()


def test_every_offline_switch_is_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the environment says, building the app switches CrewAI's network features off."""
    from devops_automation.app import build_app

    from ..conftest import make_settings

    for name in OFFLINE_ENV:
        monkeypatch.setenv(name, "false" if OFFLINE_ENV[name] == "true" else "true")
    build_app(make_settings(tmp_path / "home")).close()
    assert {name: os.environ[name] for name in OFFLINE_ENV} == {
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
        "OTEL_SDK_DISABLED": "true",
        "CREWAI_DISABLE_TRACKING": "true",
        "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false",
    }
    assert os.environ["CREWAI_STORAGE_DIR"] == str(tmp_path / "home" / "crewai" / "storage")
