"""Import rules of the module layout (README: Architecture), read from the source with ``ast``.

Every ``import`` counts, also the ones inside functions (the lazy imports that keep ``--help`` fast).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "teams" / "devops_automation"
PRODUCT_DIRS = [APP, ROOT / "agents", ROOT / "tasks", ROOT / "tools"]
LOCALFORGE = ROOT / "packages" / "localforge" / "src" / "localforge"

# What an entry point may import of the product: the service layer and the plain types it speaks in.
ENTRY_POINTS = [
    "cli.py",
    "demo.py",
    *sorted(str(p.relative_to(APP)) for d in ("server", "discord_bot") for p in (APP / d).rglob("*.py")),
]
ENTRY_POINT_ALLOWED = {
    "service",
    "remote",
    "authz",
    "errors",
    "report",
    "settings",
    "quiet",
    "models",
    "demo",
    "server",
    "discord_bot",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(APP).with_suffix("")
    return ".".join(("devops_automation", *rel.parts)).removesuffix(".__init__")


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path).rsplit(".", 1)[0] if path.is_relative_to(APP) else ""
    if path.name == "__init__.py" and path.is_relative_to(APP):
        package = _module_name(path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
                found.add(module)
                if not node.module:
                    found.update(f"{prefix}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module or "")
    return found


def product_files() -> list[Path]:
    return sorted(p for d in PRODUCT_DIRS for p in d.rglob("*.py") if "template" not in p.parts)


def test_only_the_github_adapter_imports_github() -> None:
    importers = sorted(
        str(p.relative_to(ROOT))
        for p in product_files()
        if any(name == "github" or name.startswith("github.") for name in imports_of(p))
    )
    assert importers == ["teams/devops_automation/forge/github.py"]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_entry_points_import_only_the_service_layer(entry_point: str) -> None:
    product = {
        name.removeprefix("devops_automation.").split(".")[0]
        for name in imports_of(APP / entry_point)
        if name.startswith("devops_automation.")
    }
    assert product <= ENTRY_POINT_ALLOWED, product - ENTRY_POINT_ALLOWED
    assert entry_point != "cli.py" or "service" in product


def test_nothing_but_the_service_builds_the_engine() -> None:
    """``app.build_app`` and the engine are wired by the service alone (and used by the engine itself)."""
    inner = {"app.py", "service.py", "engine"}
    users = sorted(
        str(p.relative_to(APP))
        for p in APP.rglob("*.py")
        if p.relative_to(APP).parts[0] not in inner
        and any(n == "devops_automation.app" or n.startswith("devops_automation.engine") for n in imports_of(p))
    )
    assert users == []


def test_the_embedded_forge_imports_nothing_of_the_product() -> None:
    files = sorted(LOCALFORGE.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith(("devops_automation", "github", "git")), (path, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("devops_automation") for a in node.names), path


def test_the_product_reaches_the_embedded_forge_only_through_the_local_adapter() -> None:
    importers = sorted(
        str(p.relative_to(ROOT))
        for p in product_files()
        if any(name == "localforge" or name.startswith("localforge.") for name in imports_of(p))
    )
    assert importers == ["teams/devops_automation/forge/local.py"]


def test_without_the_embedded_forge_a_github_install_works_and_local_says_what_is_missing(tmp_path: Path) -> None:
    """A production install (GitHub only) has no ``localforge``: read-only commands work, and choosing
    the local forge is a one-line error naming the package."""
    code = (
        "import sys; sys.modules['localforge'] = None\n"  # import localforge now raises ImportError
        "from devops_automation.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DEVOPS_CREW_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    status = subprocess.run(
        [sys.executable, "-c", code, "status"], capture_output=True, text=True, env=env, timeout=120
    )
    assert status.returncode == 0 and "no requests yet" in status.stdout, status.stderr
    request = subprocess.run(
        [sys.executable, "-c", code, "request", "needs kotlin apps", "--skill", "kotlin"],
        capture_output=True,
        text=True,
        env={**env, "DEVOPS_CREW_FORGE": "local"},
        timeout=120,
    )
    lines = request.stderr.strip().splitlines()
    assert request.returncode == 2 and len(lines) == 1, request.stderr
    assert "DEVOPS_CREW_FORGE=local needs the embedded forge" in lines[0] and "packages/localforge" in lines[0]


def test_the_remote_service_accepts_every_keyword_the_service_does() -> None:
    """The CLI calls whichever of the two it was given with the same keywords (``reject --use-team`` once
    reached only the local one): every keyword a CrewService call takes, its RemoteService twin takes."""
    import inspect

    from devops_automation.remote import RemoteService
    from devops_automation.service import CrewService

    missing = []
    for name, remote in inspect.getmembers(RemoteService, inspect.isfunction):
        local = getattr(CrewService, name, None)
        if name.startswith("_") or local is None:
            continue
        remote_params = inspect.signature(remote).parameters
        if any(p.kind is p.VAR_KEYWORD for p in remote_params.values()):
            continue
        for param in inspect.signature(local).parameters.values():
            if param.kind is param.KEYWORD_ONLY and param.name not in remote_params:
                missing.append(f"{name}({param.name}=)")
    assert not missing, missing


def test_every_service_call_of_the_cli_reaches_a_running_server_too() -> None:
    """With DEVOPS_CREW_SERVER_URL set, the CLI's service is a RemoteService: each call the CLI makes on its
    service must exist there (``task list`` and ``review-gaps`` once raised AttributeError through a server)."""
    from devops_automation.remote import RemoteService

    tree = ast.parse((APP / "cli.py").read_text())
    called = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "service"
    }
    assert {"submit", "review_gaps", "list_tasks", "team_card"} <= called  # the walk finds the calls
    assert sorted(name for name in called if not hasattr(RemoteService, name)) == []
