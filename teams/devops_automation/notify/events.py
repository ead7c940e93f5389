"""Which state changes are notification events, and what an event says (pure functions; the store calls
them inside the transaction that saves the state)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ..forge.links import PullLinks
from ..models import RequestState, TeamCreationRequest


class EventKind(StrEnum):
    """What happened. README "Notifications" lists them."""

    pr_opened = "pr_opened"
    awaiting_human = "awaiting_human"
    pr_merged = "pr_merged"
    pr_closed = "pr_closed"
    request_failed = "request_failed"
    rollback_opened = "rollback_opened"


TITLES: dict[EventKind, str] = {
    EventKind.pr_opened: "Pull request opened",
    EventKind.awaiting_human: "Waiting for a human decision",
    EventKind.pr_merged: "Pull request merged",
    EventKind.pr_closed: "Pull request closed without merging",
    EventKind.request_failed: "Request failed",
    EventKind.rollback_opened: "Rollback pull request opened",
}

#: Rules whose refusal waits for a person (not for time): a reviewer's earlier rejection.
HUMAN_RULES = frozenset({"previously-rejected"})


def kind_for(before: RequestState, after: RequestState, request: TeamCreationRequest) -> EventKind | None:
    """The event a transition ``before -> after`` is, or None. A state saved again (``after == before``)
    is no event, so a resume that repeats a step tells nobody twice."""
    if after is before:
        return None
    if after is RequestState.published and request.pr_number is not None:
        return EventKind.pr_opened
    if after is RequestState.awaiting_approval:
        return EventKind.awaiting_human
    if after is RequestState.refused and request.decision is not None and request.decision.rule in HUMAN_RULES:
        return EventKind.awaiting_human
    if after is RequestState.merged and before is RequestState.published:
        return EventKind.pr_merged
    if after is RequestState.rejected and before is RequestState.published:
        return EventKind.pr_closed
    if after is RequestState.failed:
        return EventKind.request_failed
    return None


def with_links(payload: dict[str, Any], links: PullLinks) -> dict[str, Any]:
    """``payload`` with its pull request link as the forge's base is now (a copy; ``payload`` is kept)."""
    url = links.url(payload.get("pr_url"), payload.get("pr_forge"))
    return payload if url == payload.get("pr_url") else {**payload, "pr_url": url}


def payload_of(kind: EventKind, request: TeamCreationRequest) -> dict[str, Any]:
    """What every channel shows for the event: a JSON-able snapshot of the request at that moment (texts
    in it are untrusted; each channel escapes for its own medium)."""
    spec, decision = request.spec, request.decision
    pr_number, pr_url = request.pr_number, request.pr_url
    if kind is EventKind.rollback_opened:
        pr_number, pr_url = request.rollback_pr_number, request.rollback_pr_url
    reason = ""
    if kind in (EventKind.awaiting_human,) and decision is not None:
        reason = decision.message
    elif kind in (EventKind.request_failed, EventKind.pr_closed):
        reason = request.error or ""
    return {
        "kind": kind.value,
        "title": TITLES[kind],
        "request_id": request.id,
        "gap_id": request.gap.id,
        "gap": request.gap.description[:300],
        "team": spec.name if spec else None,
        "state": request.state.value,
        "monthly_cost_usd": spec.monthly_cost_usd if spec else None,
        "risk_level": decision.risk_level.value if decision else None,
        "rule": decision.rule if decision else None,
        "pr_number": pr_number,
        "pr_url": pr_url,  # as stored; shown through forge.links.PullLinks with "pr_forge"
        "pr_forge": request.pr_forge,
        "reason": reason[:500],
        "requester": request.requester.key if request.requester else None,
    }
