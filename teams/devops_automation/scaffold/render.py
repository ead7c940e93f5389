"""Render a TeamSpec into a new team folder with the package's cookiecutter template.

Only validated slugs (team name, agent roles, task names) and numbers become plain cookiecutter
variables. Every piece of free text travels in underscore-prefixed variables, which cookiecutter
copies without rendering them as templates, and reaches the files only as YAML data or escaped
Markdown (see :mod:`devops_automation.scaffold.jinja_ext`).
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from devops_automation.errors import RenderError
from devops_automation.models import MAX_AGENTS, CapabilityGap, RegistryEntry, TeamSpec, without_placeholders
from devops_automation.team_cards import DEFAULT_TEAM_A2A_URL, card_url

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
AGENT_SLOTS = 12  # agent_file_00 .. agent_file_11 in cookiecutter.json
IMAGE_TAG = "0.1.0"

# cookiecutter changes the working directory and sys.path while it renders: one render at a time.
_RENDER_LOCK = threading.Lock()

__all__ = ["RenderError", "RenderedTeam", "render_team"]


class RenderedTeam(BaseModel):
    """A rendered team: ``root`` holds repo-relative paths (``teams/<name>/...``, ``k8s/teams/<name>/...``)."""

    root: Path
    files: list[str]


@functools.cache
def _pinned(package: str, fallback: str) -> str:
    """The installed version of ``package`` (``fallback`` when it is not installed), looked up once per
    process: importlib.metadata scans every distribution's metadata, 2 ms a package, four per render."""
    try:
        return version(package)
    except PackageNotFoundError:
        return fallback


def expected_files(spec: TeamSpec) -> list[str]:
    """Every repo-relative file a render of ``spec`` contains, sorted."""
    team, k8s = f"teams/{spec.name}", f"k8s/teams/{spec.name}"
    files = [
        f"{team}/{name}"
        for name in (
            "Dockerfile",
            "README.md",
            "__init__.py",
            "agents/__init__.py",
            "config/agents.yaml",
            "config/tasks.yaml",
            "crew.py",
            "requirements.txt",
            "server.py",
            "team.yaml",
            "tests/test_a2a.py",
            "tests/test_team.py",
        )
    ]
    files += [f"{team}/agents/{agent.role}.py" for agent in spec.agents]
    files += [
        f"{k8s}/{name}" for name in ("deployment.yaml", "kustomization.yaml", "networkpolicy.yaml", "service.yaml")
    ]
    return sorted(files)


#: How the gap's quoted text is labelled in ``team.yaml`` and the README (issue 14, point 7).
GAP_CONTEXT_LABEL = (
    "Quoted from the capability gap that led to this team: context for reviewers, not instructions for any agent."
)


def build_context(spec: TeamSpec, gap: CapabilityGap, owner: str, a2a_url: str | None = None) -> dict[str, Any]:
    """The cookiecutter ``extra_context`` for ``spec``: slugs and numbers plain, free text as data.
    ``a2a_url``: where the team will answer A2A (its card's ``url``; default: ``DEFAULT_TEAM_A2A_URL``'s)."""
    if len(spec.agents) > AGENT_SLOTS or MAX_AGENTS > AGENT_SLOTS:
        raise RenderError(f"the template has {AGENT_SLOTS} agent slots; the spec has {len(spec.agents)} agents")
    entry = RegistryEntry.from_spec(spec, owner)
    slots = {f"agent_file_{i:02d}": "" for i in range(AGENT_SLOTS)}
    slots.update({f"agent_file_{i:02d}": f"{a.role}.py" for i, a in enumerate(spec.agents)})
    registry = entry.model_dump(mode="json") | {"llm_model": spec.llm_model, "gap_id": gap.id}
    # The gap's own words reach the team only here, quoted and labelled; no agent is ever told them.
    # Braces become parentheses, as in every text of a team: ``{word}`` is a CrewAI placeholder.
    quoted = {"label": GAP_CONTEXT_LABEL, "description": without_placeholders(gap.description)}
    return {
        "team_name": spec.name,
        "k8s_name": spec.k8s_name,
        "manager_role": spec.manager.role,
        "cpu_millicores": spec.resources.cpu_millicores,
        "memory_mib": spec.resources.memory_mib,
        "replicas": spec.resources.replicas,
        "image_tag": IMAGE_TAG,
        "crewai_version": _pinned("crewai", "1.15.30"),
        "pyyaml_version": _pinned("PyYAML", "6.0.2"),
        "a2a_sdk_version": _pinned("a2a-sdk", "0.3.26"),
        "uvicorn_version": _pinned("uvicorn", "0.54.0"),
        **slots,
        "_registry": registry | {"gap_context": quoted},
        "_a2a_url": a2a_url or card_url(spec.name, DEFAULT_TEAM_A2A_URL),
        "_agents": {a.role: {"role": a.role, "goal": a.goal, "backstory": a.backstory} for a in spec.agents},
        "_tasks": {
            t.name: {"description": t.description, "expected_output": t.expected_output, "agent": t.agent}
            for t in spec.tasks
        },
        "_readme": {
            **registry,
            "gap_context_label": GAP_CONTEXT_LABEL,
            "gap": gap.model_dump(mode="json"),
            "agents": [a.model_dump(mode="json") for a in spec.agents],
            "tasks": [t.model_dump(mode="json") for t in spec.tasks],
        },
    }


def render_team(
    spec: TeamSpec, gap: CapabilityGap, dest: Path, owner: str = "platform-team", a2a_url: str | None = None
) -> RenderedTeam:
    """Render ``spec`` into ``dest/<name>/`` (which must not exist yet) and list what was written.
    ``a2a_url``: the URL the team's agent card advertises (``team_cards.card_url``)."""
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter
    from jinja2 import TemplateError

    # Validate again: a spec built with model_construct() or mutated after validation is refused here.
    spec = TeamSpec.model_validate(spec.model_dump())
    gap = CapabilityGap.model_validate(gap.model_dump())
    context = build_context(spec, gap, owner, a2a_url)
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    root = dest / spec.name
    if root.exists():
        raise RenderError(f"render target {root} already exists")
    with _RENDER_LOCK, tempfile.TemporaryDirectory(prefix="cookiecutter-") as home:
        try:
            result = cookiecutter(
                str(TEMPLATE_DIR),
                no_input=True,
                extra_context=context,
                output_dir=str(dest),
                # No user config; replay files (they hold the untrusted text) go to a private temp dir.
                default_config={"replay_dir": f"{home}/replay", "cookiecutters_dir": f"{home}/templates"},
            )
        except (CookiecutterException, TemplateError, OSError, ValueError) as exc:
            raise RenderError(f"rendering team {spec.name} failed: {exc}") from exc
    root = Path(result)
    # A non-editable install byte-compiles the template's .py files; cookiecutter would copy the
    # caches into every team (and validation would refuse them). They are never part of a team.
    for cache in [p for p in root.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache)
    for stray in root.rglob("*.py[co]"):
        stray.unlink()
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return RenderedTeam(root=root, files=files)
