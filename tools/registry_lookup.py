"""``registry_lookup``: the gap analyst's tool. Ranks the known teams against the gap; writes nothing.

The analyst supplies the skills it reads in the gap and its verdict; the ranking itself is the
registry's deterministic matcher over ``teams/*/team.yaml`` on the target's base branch. The tool's
JSON answer is the analyst's final answer (``result_as_answer``), so the lookup costs no second turn.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from devops_automation.crew.prompts import quote
from devops_automation.models import CapabilityGap, Skill
from devops_automation.registry import Registry

from .context import ContextTool

MAX_MATCHES = 3


class RegistryLookupArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skills: list[Skill] = Field(
        default_factory=list, max_length=20, description="skills the gap needs: short lower-case labels"
    )
    significant: bool = Field(description="true when the gap is real and significant enough for a new team")
    assessment: str = Field(max_length=1000, description="one or two sentences: why, and for whom")


class RegistryLookupTool(ContextTool):
    name: str = "registry_lookup"
    description: str = (
        "Rank the existing teams against the gap by the skills it needs. Give the skills, whether the "
        "gap is real and significant, and a short assessment. Read-only."
    )
    args_schema: type[BaseModel] = RegistryLookupArgs

    def _run(self, skills: list[str] | None = None, significant: bool = True, assessment: str = "") -> str:
        args = RegistryLookupArgs(skills=skills or [], significant=significant, assessment=assessment)
        ctx = self.ctx
        gap = ctx.gap
        with ctx.auditor.action(
            "tool.registry_lookup", f"gap {gap.id}", request_id=ctx.request_id, skills=args.skills
        ) as call:
            probe = CapabilityGap(
                id=gap.id,
                description=gap.description,
                required_skills=list(dict.fromkeys([*gap.required_skills, *args.skills]))[:20],
            )
            registry = Registry.from_yaml_files(ctx.target.team_files())
            matches = registry.rank(probe, top=MAX_MATCHES)
            closest = [
                {
                    "team": m.team,
                    "score": m.score,
                    "shared_skills": m.shared_skills,
                    "why": m.explanation,
                    "description": registry.entries[m.team].description[:200],
                }
                for m in matches
            ]
            call.result.update(closest=[(m.team, m.score) for m in matches])
        return quote(  # JSON, with the model's own words escaped like any other data
            {
                "significant": args.significant,
                "assessment": args.assessment,
                "skills": probe.required_skills,
                "closest_teams": closest,
                "reuse_threshold": registry.index.weights.reuse_at,
            }
        )
