"""CrewAI tools: thin, audited wrappers over the application's modules (``devops_automation.tools``).

Each tool is a ``crewai.tools.BaseTool`` with an ``args_schema`` for what the model may say, bound to a
:class:`~devops_automation.tools.context.ToolContext` for everything it may not (where to write, which
branch, which request). Every call is audited (``initiated`` then ``succeeded``/``failed``), and the
policy's path, branch and name checks run inside the tool, whatever its caller checked before.

- ``registry_lookup`` (gap analyst): ranks the known teams against the gap; read-only.
- ``scaffold_team`` (scaffolder): renders and validates a spec in the request's scratch folder.
- ``publish_pull_request`` (PR author): pushes the approved ``auto/`` branch, hands back title/summary.
"""

from __future__ import annotations

from .context import ToolContext
from .publish_pull_request import PublishPullRequestArgs, PublishPullRequestTool
from .registry_lookup import RegistryLookupArgs, RegistryLookupTool
from .scaffold_team import ScaffoldTeamArgs, ScaffoldTeamTool

__all__ = [
    "PublishPullRequestArgs",
    "PublishPullRequestTool",
    "RegistryLookupArgs",
    "RegistryLookupTool",
    "ScaffoldTeamArgs",
    "ScaffoldTeamTool",
    "ToolContext",
]
