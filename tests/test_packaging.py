"""The distribution, the crew's own image and manifests: what ships is what the card promises."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("devops_crew-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.slow
def test_wheel_installs_one_namespace_and_its_data(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("devops_crew-")}
    assert top == {"devops_automation"}  # no generic top-level tools/agents/tasks
    for required in (
        "devops_automation/tools/__init__.py",
        "devops_automation/agents/__init__.py",
        "devops_automation/tasks/__init__.py",
        "devops_automation/migrations/env.py",
        "devops_automation/migrations/versions/0001_initial.py",
        "devops_automation/seed/teams/customer_support/team.yaml",
        "devops_automation/seed/.github/workflows/ci.yml",
        "devops_automation/scaffold/template/cookiecutter.json",
    ):
        assert required in names, required
    assert any(n.startswith("devops_automation/scaffold/template/{{cookiecutter.team_name}}/k8s/") for n in names)
    entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "devops-crew = devops_automation.cli:main" in entry_points


def test_own_dockerfile_lints_clean() -> None:
    result = subprocess.run([str(BIN / "hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
