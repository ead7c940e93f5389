"""The image installs constraints.txt and then the package with --no-deps (Dockerfile): a runtime
dependency missing from constraints.txt is missing from the image. scripts/lock regenerates the file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: discord.py == discord-py


def test_every_runtime_dependency_is_pinned_in_constraints() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    pinned = {
        _name(line) for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")
    }
    missing = sorted(wanted - pinned)
    assert missing == [], f"run scripts/lock: constraints.txt lacks {missing}"
