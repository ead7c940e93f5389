"""The README, read by a newcomer: its commands run as written.

The "Using it" block is run line by line in a fresh directory with the venv's ``bin`` on PATH (as after
``source .venv/bin/activate``), ``ID`` standing for the request the first command made. Every command ends
with a documented exit code and never a traceback; the first two commands' paths exist and ``.ci/run`` runs
exactly the test command.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
pytestmark = pytest.mark.slow


def _block_after(heading: str) -> list[str]:
    section = README.split(heading, 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].split(" # ")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_two_commands_point_at_what_exists() -> None:
    install, test = _block_after("## Two commands")[0], README.split("## Two commands", 1)[1].split("```sh\n")[2]
    assert install.startswith("python3 -m venv .venv && .venv/bin/pip install")
    for path in re.findall(r"-e (\S+)", install):
        assert (ROOT / path / "pyproject.toml").exists(), path
    assert install.endswith(".venv/bin/devops-crew demo")
    command = test.split("```", 1)[0].strip()
    assert command == "bash scripts/test"
    assert "exec bash scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_using_it_commands_run_as_written(tmp_path: Path) -> None:
    lines = _block_after("## Using it")
    assert lines[0].startswith("devops-crew request") and len(lines) >= 8
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "GITHUB_", "OPENAI_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path / "home"))
    env["DEVOPS_CREW_COOLDOWN_SECONDS"] = "0"
    (tmp_path / "home").mkdir()
    request_id = ""
    ran = []
    for line in lines:
        args = shlex.split(line.replace(" ID", f" {request_id}" if request_id else " ID"))
        if args[1:3] == ["forge", "serve"]:
            args += ["--port", "0"]
            with subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True) as server:
                assert server.stdout is not None
                assert "local forge serving" in server.stdout.readline()
                server.terminate()
                assert server.wait(30) == 0
            ran.append(line)
            continue
        result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in result.stderr, (line, result.stderr)
        assert result.returncode in {0, 1, 2, 3}, (line, result.returncode, result.stderr)
        if result.returncode == 2:
            assert len(result.stderr.strip().splitlines()) == 1, (line, result.stderr)
        if not request_id:
            found = re.search(r"req-[0-9a-f]{12}", result.stdout)
            assert found, (line, result.stdout, result.stderr)
            request_id = found.group(0)
        ran.append(line)
    assert len(ran) == len(lines)
    assert (tmp_path / ".devops-crew" / "state.db").exists()  # state went where the README says
