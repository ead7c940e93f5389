"""Stable, documented shapes of what the CLI prints with ``--json`` (README: "JSON output")."""

from __future__ import annotations

from typing import Any

from .models import TeamCreationRequest

SCHEMA_VERSION = 1


def request_summary(request: TeamCreationRequest, *, duplicate: bool | None = None) -> dict[str, Any]:
    decision = request.decision
    summary: dict[str, Any] = {
        "id": request.id,
        "gap_id": request.gap.id,
        "state": request.state.value,
        "team": request.spec.name if request.spec else None,
        "department": request.spec.department.value if request.spec else None,
        "monthly_cost_usd": request.spec.monthly_cost_usd if request.spec else None,
        "drafter": request.drafter,
        "matched_team": request.matched_team,
        "match_score": request.match_score,
        "decision": None
        if decision is None
        else {
            "outcome": decision.outcome.value,
            "rule": decision.rule,
            "message": decision.message,
            "remedy": decision.remedy,
            "risk_level": decision.risk_level.value,
        },
        "branch": request.branch,
        "commit": request.commit_sha,
        "pull_request": None if request.pr_number is None else {"number": request.pr_number, "url": request.pr_url},
        "files": len(request.files),
        "llm_usage": request.llm_usage.model_dump(),
        "error": request.error,
        "created_at": request.created_at.isoformat(),
        "updated_at": request.updated_at.isoformat(),
    }
    if duplicate is not None:
        summary["duplicate"] = duplicate
    return summary


def describe(request: TeamCreationRequest) -> str:
    """One human line (two when there is a remedy) saying what happened to a request."""
    state = request.state.value
    usage = request.llm_usage
    llm = (
        f"\n    LLM: {usage.calls} calls, {usage.prompt_tokens}+{usage.completion_tokens} tokens, ${usage.cost_usd:.4f}"
        if usage.calls
        else ""
    )
    if request.state.value == "published":
        line = f"{request.id}: pull request #{request.pr_number} for team {request.spec.name if request.spec else '?'}"
        return line + f" on {request.branch}\n    {request.pr_url}{llm}"
    if request.state.value == "reuse_existing":
        return f"{request.id}: reuse existing team {request.matched_team} (match score {request.match_score})"
    if request.decision and request.state.value in {"refused", "awaiting_approval"}:
        d = request.decision
        text = f"{request.id}: {state} by rule {d.rule}: {d.message}"
        return text + (f"\n    {d.remedy}" if d.remedy else "")
    if request.state.value == "failed":
        return f"{request.id}: failed at {request.resume_state.value if request.resume_state else '?'}: {request.error}"
    return f"{request.id}: {state}"
