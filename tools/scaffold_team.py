"""``scaffold_team``: the scaffolder's tool. Renders a spec with the cookiecutter template into the
request's scratch folder and runs every validation check on the result.

Whatever spec the model passes, the tool writes only below ``<state>/crew/scaffold/<request>/``,
every rendered path must pass the policy's allow-list, the spec must carry the approved team name
(or, before approval, a name the policy accepts) and stay under the cost ceiling. Its JSON answer
(ok, errors, the spec as checked) is the scaffolder's final answer (``result_as_answer``).
"""

from __future__ import annotations

import shutil

from pydantic import BaseModel, ConfigDict, Field

from devops_automation import policy
from devops_automation.crew.prompts import quote, spec_data
from devops_automation.crew.specs import finalize_spec
from devops_automation.models import TeamSpec
from devops_automation.policy import PolicyViolation
from devops_automation.registry import Registry

from .context import ContextTool


class ScaffoldTeamArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: TeamSpec = Field(description="the complete team spec to render and validate")


class ScaffoldTeamTool(ContextTool):
    name: str = "scaffold_team"
    description: str = (
        "Render the team spec into its files and validate them (Python compiles, the team's tests pass, "
        "Kubernetes manifests and Dockerfile lint clean). Returns ok and the list of errors."
    )
    args_schema: type[BaseModel] = ScaffoldTeamArgs
    #: Whether the approved cost ceiling may be exceeded (a human approved the cost).
    cost_approved: bool = False

    def _run(self, spec: TeamSpec | dict) -> str:
        from devops_automation.scaffold import validate as validation
        from devops_automation.scaffold.render import render_team

        ctx = self.ctx
        name = spec.name if isinstance(spec, TeamSpec) else str((spec or {}).get("name", ""))[:60]
        with ctx.auditor.action(
            "tool.scaffold_team", f"teams/{name}/", request_id=ctx.request_id, approved_name=ctx.team_name
        ) as call:
            checked = finalize_spec(spec, ctx.gap, ctx.settings.llm_prices)
            if ctx.team_name is not None and checked.name != ctx.team_name:
                raise PolicyViolation("team-name", f"the approved team is {ctx.team_name!r}; it may not be renamed")
            policy.check_team_name(checked.name, Registry.from_yaml_files(ctx.target.team_files()).names())
            waiting = policy.cost_decision(
                checked, ctx.settings.monthly_cost_ceiling_usd, "approved" if self.cost_approved else None
            )
            if waiting is not None:
                raise PolicyViolation("cost-ceiling", waiting.message, "Use fewer or smaller agents.")
            dest = ctx.scratch_dir()
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            rendered = render_team(checked, ctx.gap, dest, owner=ctx.gap.requesting_team or "platform-team")
            if not rendered.root.resolve().is_relative_to(dest):
                raise PolicyViolation("path-allow-list", f"render escaped {dest}")
            files = policy.check_paths(rendered.files, checked.name)
            errors: list[str] = []
            if ctx.settings.validate_render:
                report = validation.validate_render(
                    rendered, checked, kubernetes_version=ctx.settings.kubernetes_version
                )
                errors = report.errors
            if not errors:
                ctx.last_spec, ctx.last_render = checked, rendered
            call.result.update(ok=not errors, files=len(files), errors=errors[:10])
        return quote({"ok": not errors, "errors": errors[:20], "files": len(files), "spec": spec_data(checked)})
