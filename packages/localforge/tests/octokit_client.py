"""A second client beside PyGithub: Octokit (npm ``@octokit/rest``), installed with npm on first use.

:func:`run_script` copies a script from ``tests/octokit/`` into the install directory (so that its bare
``import "@octokit/rest"`` resolves there) and runs it with node; the script prints one JSON object.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from spec_check import CACHE_DIR

OCTOKIT_REST_VERSION = "22.0.1"  # pinned, like @octokit/openapi: bump on purpose
REST_DIR = CACHE_DIR.parent / "octokit-rest"
SCRIPTS = Path(__file__).with_name("octokit")


def ensure_octokit() -> Path:
    """Install the pinned ``@octokit/rest`` into its own prefix unless it is there; returns the prefix."""
    package_json = REST_DIR / "node_modules" / "@octokit" / "rest" / "package.json"
    if package_json.exists() and json.loads(package_json.read_text()).get("version") == OCTOKIT_REST_VERSION:
        return REST_DIR
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: it is needed to fetch @octokit/rest for the forge tests")
    REST_DIR.mkdir(parents=True, exist_ok=True)
    package = f"@octokit/rest@{OCTOKIT_REST_VERSION}"
    proc = subprocess.run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(REST_DIR), package],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0 or not package_json.exists():
        raise RuntimeError(f"npm install @octokit/rest failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return REST_DIR


def run_script(name: str, env: dict[str, str], timeout: float = 120) -> dict[str, Any]:
    """Run ``tests/octokit/<name>`` with node and ``env`` added; its printed JSON object."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: it runs the Octokit scripts of the forge tests")
    prefix = ensure_octokit()
    script = prefix / name
    shutil.copyfile(SCRIPTS / name, script)
    proc = subprocess.run(
        [node, str(script)],
        cwd=prefix,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", **env},
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"node {name} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])
