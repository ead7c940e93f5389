"""What code decides about a spec a model wrote, whatever the model said.

The model proposes; these rules hold: a name the gap proposed wins (the policy gate then judges it,
as for the offline drafter), and the monthly cost is always the documented formula
(:mod:`devops_automation.drafting.cost`, README "Cost estimate"), never the model's figure. The result
is validated again by the same :class:`~devops_automation.models.TeamSpec` as any other spec.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..drafting.cost import DEFAULT_LLM_PRICES, monthly_cost
from ..models import CapabilityGap, TeamSpec, without_placeholders


def finalize_spec(
    spec: TeamSpec | dict, gap: CapabilityGap, prices: Mapping[str, tuple[float, float]] = DEFAULT_LLM_PRICES
) -> TeamSpec:
    """``spec`` validated, with the gap's proposed name and the formula's monthly cost."""
    checked = spec if isinstance(spec, TeamSpec) else TeamSpec.model_validate(spec)
    data = checked.model_dump()
    for item in [*data["agents"], *data["tasks"]]:
        for key in ("goal", "backstory", "description", "expected_output"):
            if key in item:
                item[key] = without_placeholders(item[key])
    data["description"] = without_placeholders(data["description"])
    if gap.proposed_name:
        data["name"] = gap.proposed_name
    data["monthly_cost_usd"] = monthly_cost(checked.resources, len(checked.agents), checked.llm_model, prices)
    return TeamSpec.model_validate(data)
