"""Stable, documented shapes of what the CLI prints with ``--json`` (README: "JSON output")."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .forge.links import PullLinks
from .models import IN_PROGRESS, RequestState, TeamCreationRequest
from .team_cards import card_url

SCHEMA_VERSION = 1


def request_summary(
    request: TeamCreationRequest,
    *,
    duplicate: bool | None = None,
    links: PullLinks | None = None,
    team_url: str | None = None,
) -> dict[str, Any]:
    """A request's SUMMARY (README "JSON output"). ``links``: the forge's web links as they are now
    (:class:`PullLinks`); without it, pull request links are shown as stored. ``team_url``: the
    ``DEVOPS_CREW_TEAM_A2A_URL`` template; with it, ``team_a2a_url`` is where the team that answers the gap
    serves A2A (the reused team, or the new one once merged and deployed), else None."""
    decision = request.decision
    links = links or PullLinks()
    answering = request.matched_team if request.state is RequestState.reuse_existing else None
    if request.state in (RequestState.published, RequestState.merged) and request.spec is not None:
        answering = request.spec.name
    a2a_url = card_url(answering, team_url) if answering and team_url else None
    summary: dict[str, Any] = {
        "id": request.id,
        "gap_id": request.gap.id,
        "state": request.state.value,
        "team": request.spec.name if request.spec else None,
        "department": request.spec.department.value if request.spec else None,
        "monthly_cost_usd": request.spec.monthly_cost_usd if request.spec else None,
        "drafter": request.drafter,
        "matched_team": request.matched_team,
        "team_a2a_url": a2a_url,
        "match_score": request.match_score,
        "match": None if request.match is None else request.match.model_dump(),
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
        "pull_request": None
        if request.pr_number is None
        else {"number": request.pr_number, "url": links.url(request.pr_url, request.pr_forge)},
        "files": len(request.files),
        "llm_usage": request.llm_usage.model_dump(),
        "error": request.error,
        "resume_state": request.resume_state.value if request.resume_state else None,
        "requester": None if request.requester is None else request.requester.model_dump(),
        "approvals": [
            {
                "by": a.by.model_dump(),
                "kind": a.kind.value,
                "reason": a.reason,
                "at": a.at.isoformat(),
                "self_approval": a.self_approval,
            }
            for a in request.approvals
        ],
        "rollback": None
        if request.rollback_branch is None
        else {
            "branch": request.rollback_branch,
            "pull_request": None
            if request.rollback_pr_number is None
            else {"number": request.rollback_pr_number, "url": links.url(request.rollback_pr_url, request.pr_forge)},
        },
        "created_at": request.created_at.isoformat(),
        "updated_at": request.updated_at.isoformat(),
    }
    if duplicate is not None:
        summary["duplicate"] = duplicate
    return summary


_RETRY_AT = re.compile(r"Retry after (\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?) UTC")


def with_relative_times(text: str, now: datetime | None = None) -> str:
    """``Retry after 2026-12-01 20:17 UTC`` + ``(in 4 min)`` or ``(now)``, counted from ``now``: stored
    decisions keep absolute times, so a later ``status`` never repeats a wait that has passed."""
    now = now or datetime.now(UTC)

    def relative(match: re.Match[str]) -> str:
        stamp = match.group(1)
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S" if stamp.count(":") == 2 else "%Y-%m-%d %H:%M")
        seconds = int((at.replace(tzinfo=UTC) - now).total_seconds())
        if seconds <= 0:
            return f"{match.group(0)} (now)"
        if seconds < 120:
            amount = f"{seconds} s"
        else:
            amount = f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"
        return f"{match.group(0)} (in {amount})"

    return _RETRY_AT.sub(relative, text)


def describe(summary: dict[str, Any]) -> str:
    """One human line (two when there is a remedy or LLM use) saying what happened to a request,
    from its SUMMARY (:func:`request_summary`)."""
    rid, state = summary["id"], summary["state"]
    usage = summary["llm_usage"]
    llm = (
        f"\n    LLM: {usage['calls']} calls, {usage['prompt_tokens']}+{usage['completion_tokens']} tokens, "
        f"${usage['cost_usd']:.4f}{' (estimated)' if usage.get('estimated') else ''}"
        if usage["calls"]
        else ""
    )
    if state == "published":
        pr = summary["pull_request"] or {}
        line = f"{rid}: pull request #{pr.get('number')} for team {summary['team'] or '?'}"
        return line + f" on {summary['branch']}\n    {pr.get('url')}{llm}"
    if state == "reuse_existing":
        score = summary["match_score"]  # None: a human sent the gap there (--use-team), the matcher did not
        why = f"match score {score}" if score is not None else "a human's choice"
        return f"{rid}: reuse existing team {summary['matched_team']} ({why})"
    decision = summary["decision"]
    if decision and state in {"refused", "awaiting_approval"}:
        text = f"{rid}: {state} by rule {decision['rule']}: {decision['message']}"
        return text + (f"\n    {with_relative_times(decision['remedy'])}" if decision["remedy"] else "")
    if state == "failed":
        return f"{rid}: failed at {summary['resume_state'] or '?'}: {summary['error']}"
    if state == "rejected":
        error = summary["error"] or "rejected"
        return f"{rid}: {error}" if error.startswith(("rejected", "withdrawn")) else f"{rid}: rejected: {error}"
    rollback = summary.get("rollback") or {}
    revert = rollback.get("pull_request") or {}
    if state == "rolled_back":
        return f"{rid}: team {summary['team']} rolled back by revert pull request #{revert.get('number')}"
    if state == "merged" and revert:
        number, url = revert.get("number"), revert.get("url")
        return f"{rid}: team {summary['team']} merged; revert pull request #{number} open\n    {url}"
    if state in {s.value for s in IN_PROGRESS}:  # a run is at this step, or stopped here (killed, a crash)
        return f"{rid}: {state}\n    if no run is at it any more: `devops-crew resume {rid}` continues from this step"
    return f"{rid}: {state}"
