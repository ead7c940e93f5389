"""What the application binds a tool to for one request. The model never supplies any of it.

A tool's arguments come from a language model and are untrusted; everything that decides *where* a
tool may write or push (the state directory, the approved team name and branch, the rendered files)
comes from this context, which code builds from the stored request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crewai.tools import BaseTool
from pydantic import Field

from devops_automation.audit import Auditor
from devops_automation.models import CapabilityGap, TeamSpec
from devops_automation.scaffold.render import RenderedTeam
from devops_automation.settings import Settings
from devops_automation.target import TargetRepo

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass
class ToolContext:
    """The request a crew works on, and where its tools may act."""

    settings: Settings
    auditor: Auditor
    target: TargetRepo
    gap: CapabilityGap
    request_id: str | None = None
    #: The approved team name: a spec with any other name is refused. None before the policy gate.
    team_name: str | None = None
    #: The approved ``auto/`` branch. None before the policy gate.
    branch: str | None = None
    #: The rendered files the pipeline approved for publishing (repo-relative).
    files: list[str] = field(default_factory=list)
    #: Where those files were rendered (``<render dir>/<team>``).
    rendered_root: Path | None = None
    #: Set by the scaffold tool: the last spec it rendered and validated, and where.
    last_spec: TeamSpec | None = None
    last_render: RenderedTeam | None = None

    @property
    def key(self) -> str:
        """A file-system-safe name for this request (its id, else the gap's id)."""
        key = self.request_id or self.gap.id or "request"
        if not _SAFE_ID.fullmatch(key) or ".." in key:
            raise ValueError(f"unsafe request key {key[:40]!r}")
        return key

    @property
    def scratch_root(self) -> Path:
        """The only directory the scaffold tool writes into: ``<state>/crew/scaffold/``."""
        return (self.settings.home / "crew" / "scaffold").resolve()

    def scratch_dir(self) -> Path:
        path = (self.scratch_root / self.key).resolve()
        if not path.is_relative_to(self.scratch_root):  # belt and braces: key is already a safe slug
            raise ValueError(f"scratch dir {path} escapes {self.scratch_root}")
        return path


class ContextTool(BaseTool):
    """A CrewAI tool bound by code to one request's :class:`ToolContext`."""

    context: Any = Field(exclude=True, description="the ToolContext the application binds")

    @property
    def ctx(self) -> ToolContext:
        return self.context
