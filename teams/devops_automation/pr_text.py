"""The pull request's title, body and labels. Gap text is untrusted: it is shown inside a code fence
longer than any backtick run it contains, so it cannot close the fence or inject Markdown/HTML."""

from __future__ import annotations

import re

from .models import PolicyDecision, TeamCreationRequest, TeamSpec

BASE_LABELS = ["automated", "new-team", "needs-review"]


def review_checklist(team: str) -> list[str]:
    """What a reviewer checks before approving a new team (the PR body and the notifications show it)."""
    return [
        "The gap is real and no existing team covers it",
        "Agents, goals and tasks make sense for the gap",
        "Cost estimate and resources are acceptable",
        "Manifests and Dockerfile are fit for the cluster",
        f"Nothing outside `teams/{team}/` and `k8s/teams/{team}/` changed",
    ]


def checklist_markdown(team: str) -> str:
    return "\n".join(f"- [ ] {item}" for item in review_checklist(team))


def fenced(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _cell(text: str) -> str:
    """Untrusted text for a table cell: one line, every ASCII punctuation mark backslash-escaped
    (CommonMark), so no link, image, mention, emphasis, HTML or column break can form."""
    flat = " ".join(text.split())[:120]
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", flat)


def title(spec: TeamSpec, request: TeamCreationRequest) -> str:
    return f"Add team {spec.name} for capability gap {request.gap.id}"


def labels(decision: PolicyDecision | None) -> list[str]:
    risk = decision.risk_level.value if decision else "medium"
    return [*BASE_LABELS, f"risk:{risk}"]


def body(
    request: TeamCreationRequest,
    spec: TeamSpec,
    files: list[str],
    drafter: str,
    summary: str = "",
    summary_by: str = "the PR author agent",
) -> str:
    gap = request.gap
    rows = "\n".join(
        f"| `{a.role}` | {'yes' if a.is_manager else ''} | {_cell(a.goal)} | {_cell(', '.join(a.skills))} |"
        for a in spec.agents
    )
    file_list = "\n".join(f"- `{f}`" for f in files)
    risk = request.decision.risk_level.value if request.decision else "unknown"
    usage = request.llm_usage
    llm_line = (
        f"LLM use so far: {usage.calls} calls, {usage.prompt_tokens} prompt + {usage.completion_tokens} completion "
        f"tokens, about ${usage.cost_usd:.4f}"
        + (" (estimated: the server did not report all of its usage)." if usage.estimated else ".")
        if usage.calls
        else "No language model was used."
    )
    summary_block = f"## Summary (written by {summary_by})\n\n{fenced(summary)}\n\n" if summary else ""
    match = request.match
    decider = request.triage_decided_by
    triaged = f" A human ({_cell(decider)}) confirmed a new team." if decider else ""
    match_block = (
        f"## Registry match\n\nWhy no existing team was reused (decided by the {match.decided_by}).{triaged}\n\n"
        + fenced("\n".join([match.explanation, *(c.explanation for c in match.candidates)]))
        + "\n\n"
        if match is not None
        else ""
    )
    return f"""{summary_block}## Capability gap `{gap.id}`

Urgency: **{gap.urgency.value}** · requested by: {_cell(gap.requesting_team or "unknown")}

{fenced(gap.description)}

{match_block}## Proposed team `{spec.name}` ({spec.department.value})

| agent | manager | goal | skills |
| --- | --- | --- | --- |
{rows}

Tasks: {", ".join(f"`{t.name}`" for t in spec.tasks)}

## Cost estimate

**${spec.monthly_cost_usd:,.2f} per month** for {len(spec.agents)} agents, {spec.resources.replicas} replica(s) of
{spec.resources.cpu_millicores}m CPU / {spec.resources.memory_mib} MiB, model `{spec.llm_model}`
(formula: README, "Cost estimate"). Risk level: **{risk}**. Drafted by: {drafter}.
{llm_line}

## Files ({len(files)})

{file_list}

## Review checklist

{checklist_markdown(spec.name)}

Tracking id: `{request.id}` · opened by devops-crew
"""
