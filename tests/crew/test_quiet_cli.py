"""``-q`` keeps stderr empty when the crew fails: CrewAI's own error lines included (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..test_cli import run

pytestmark = pytest.mark.slow

UNREACHABLE = {
    "DEVOPS_CREW_LLM": "openai/gpt-4o-mini",
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # a closed port on loopback
    "OPENAI_API_KEY": "sk-unused",
    "DEVOPS_CREW_LLM_MAX_RETRIES": "0",
    "DEVOPS_CREW_VALIDATE_RENDER": "false",
}


@pytest.mark.parametrize("quiet", [True, False])
def test_quiet_silences_crewai_error_lines_but_not_the_outcome(tmp_path: Path, quiet: bool) -> None:
    args = ["request", "--local", "--skill", "refunds", "Refund requests wait a week: nobody handles refunds"]
    done = run(tmp_path / "home", *args[:1], *(["-q"] if quiet else []), *args[1:], **UNREACHABLE)
    assert done.returncode == 1, done.stderr
    assert "failed at analysed: the LLM crew failed at draft" in done.stdout and "Connection" in done.stdout
    if quiet:
        assert done.stderr == ""
    else:  # progress lines, and CrewAI's own line, are there without -q
        assert "drafting a team spec with the LLM crew" in done.stderr
        assert "Error executing listener" in done.stderr
