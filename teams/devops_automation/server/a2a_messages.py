"""What an A2A message means to this crew, and what a request's state means to an A2A caller.

In: a message carries one capability gap (the ``create_team`` skill of the agent card), as a **data part**
holding the fields of :class:`~devops_automation.models.CapabilityGap`, or as **plain text** that becomes
the gap's description (the analyst step reads it). Both: the data wins and the text fills a missing
description. The caller's team becomes the gap's ``requesting_team`` when the gap names none.

Out: a request's SUMMARY (``report.request_summary``) maps to one A2A task state and one answer
(:func:`outcome`): a short text line for people and language models (CrewAI passes only text parts to its
LLM) and a data part ``{"schema": 1, "request": SUMMARY}`` for programs, both in the task's final status
message. Nothing goes into artifacts: CrewAI joins the status message with every artifact's text, and
without its trust mode an artifact-only answer never reaches the client's LLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from a2a.types import DataPart, FilePart, Message, Part, TaskState, TextPart

from ..authz import Actor
from ..errors import DevopsCrewError, InvalidInput, NotAuthenticated, PermissionDenied, Unavailable
from ..models import IN_PROGRESS, RATE_RULES, RequestState
from ..report import SCHEMA_VERSION, with_relative_times

MAX_TEAM_CHARS = 100  # CapabilityGap.requesting_team

#: Where a settled request leaves its task. Every other state is mid-way (``models.IN_PROGRESS``: the task
#: is ``working``); ``refused`` depends on the rule (:func:`outcome`).
SETTLED: dict[RequestState, TaskState] = {
    RequestState.published: TaskState.completed,
    RequestState.merged: TaskState.completed,
    RequestState.rolled_back: TaskState.completed,
    RequestState.reuse_existing: TaskState.completed,
    RequestState.awaiting_approval: TaskState.input_required,
    RequestState.refused: TaskState.rejected,
    RequestState.rejected: TaskState.rejected,
    RequestState.failed: TaskState.failed,
}


def gap_from_message(message: Message | None, caller: Actor) -> dict[str, Any]:
    """The gap ``message`` carries, as untrusted data for ``CrewService.accept`` (which validates it).

    Raises InvalidInput when the message carries no gap, more than one data part, or a file part (not read:
    the skill's input modes are ``application/json`` and ``text/plain``)."""
    parts = [p.root for p in (message.parts if message is not None else [])]
    if any(isinstance(p, FilePart) for p in parts):
        raise InvalidInput("file parts are not read: send the gap as a data part (JSON) or as plain text")
    data = [p.data for p in parts if isinstance(p, DataPart)]
    text = "\n".join(p.text for p in parts if isinstance(p, TextPart)).strip()
    if len(data) > 1:
        raise InvalidInput(f"one gap per message: this one has {len(data)} data parts")
    if data:
        gap = dict(data[0])
        if text and gap.get("description") in (None, ""):
            gap["description"] = text
    elif text:
        gap = {"description": text}
    else:
        raise InvalidInput(
            "the message carries no gap: send a data part with the gap's fields (description, required_skills, "
            "...) or plain text describing what no team can do yet"
        )
    named = gap.get("requesting_team")
    if named in (None, ""):
        gap["requesting_team"] = caller.id[:MAX_TEAM_CHARS]
    elif named != caller.id[:MAX_TEAM_CHARS]:  # it becomes the PR's "requested by" and the team's owner
        raise InvalidInput(
            f"requesting_team: an A2A caller files gaps for its own team ({caller.id}), not for {str(named)[:60]!r}"
        )
    return gap


def dry_run_asked(message: Message | None) -> bool:
    """Whether the message asks for a dry run (``metadata: {"dry_run": true}``; only ``true`` counts)."""
    return message is not None and (message.metadata or {}).get("dry_run") is True


@dataclass(frozen=True)
class Outcome:
    """Where a settled request leaves its task: ``state`` (completed, input-required, rejected, failed) and
    the one-line ``text`` saying why (request id, outcome, team, pull request URL, rule or error)."""

    state: TaskState
    text: str


def outcome(view: dict[str, Any]) -> Outcome | None:
    """The task state and answer of a request's SUMMARY; None while the request is mid-way (the task is
    ``working``). The mapping (the issue's, :data:`SETTLED`): published, merged, rolled_back and
    reuse_existing -> completed; awaiting_approval, and refused by a rate rule (rate-limit, cooldown, which
    a human may override) -> input-required; refused by any other rule, or rejected by a human ->
    rejected; failed -> failed. A state this code does not know yet counts as settled (completed), so no
    task is followed forever."""
    rid, state = view["id"], view["state"]
    if state in {s.value for s in IN_PROGRESS}:
        return None
    team = view.get("team")
    decision = view.get("decision") or {}
    rule, why = decision.get("rule") or "?", decision.get("message") or ""
    remedy = f" {with_relative_times(decision['remedy'])}" if decision.get("remedy") else ""
    pr = view.get("pull_request") or {}
    revert = (view.get("rollback") or {}).get("pull_request") or {}
    pull = f"pull request #{pr.get('number')} {pr.get('url')}"
    a2a = view.get("team_a2a_url")  # where the team that answers the gap serves (or will serve) A2A
    if state == RequestState.published:
        later = f"; once merged and deployed it answers A2A at {a2a}" if a2a else ""
        return Outcome(
            TaskState.completed,
            f"{rid}: pull request #{pr.get('number')} opened for new team {team}: {pr.get('url')}{later}",
        )
    if state == RequestState.merged:
        deployed = f"; once deployed it answers A2A at {a2a}" if a2a else ""
        return Outcome(TaskState.completed, f"{rid}: team {team} merged: {pull}{deployed}")
    if state == RequestState.rolled_back:
        return Outcome(
            TaskState.completed,
            f"{rid}: team {team} was merged ({pull}) and rolled back by pull request #{revert.get('number')}",
        )
    if state == RequestState.reuse_existing:
        score = view.get("match_score")
        shown = f" (match score {score:.2f})" if isinstance(score, int | float) else ""
        where = f"; delegate to it over A2A at {a2a}" if a2a else ""
        return Outcome(
            TaskState.completed, f"{rid}: no new team needed: reuse team {view.get('matched_team')}{shown}{where}"
        )
    if state == RequestState.awaiting_approval:
        return Outcome(
            TaskState.input_required, f"{rid}: team {team} waits for a human approver (rule {rule}): {why}.{remedy}"
        )
    if state == RequestState.refused and rule in RATE_RULES:
        return Outcome(
            TaskState.input_required,
            f"{rid}: team {team} held by rule {rule}: {why}. A human approver may override it; otherwise it is "
            "retried when the limit allows.",
        )
    if state == RequestState.refused:
        return Outcome(TaskState.rejected, f"{rid}: refused by rule {rule}: {why}.{remedy}")
    if state == RequestState.rejected:
        return Outcome(TaskState.rejected, f"{rid}: {view.get('error') or 'rejected by a human reviewer'}")
    if state == RequestState.failed:
        return Outcome(TaskState.failed, f"{rid}: failed at {view.get('resume_state') or '?'}: {view.get('error')}")
    return Outcome(TaskState.completed, f"{rid}: {state}")


def working_text(view: dict[str, Any]) -> str:
    """The line of a task whose request is mid-way."""
    return f"{view['id']}: {view['state']} (gap {view['gap_id']}); the run goes on"


def refusal(exc: Exception) -> Outcome:
    """The task an error of the service leaves: a caller's fault (bad gap, not allowed) -> rejected, the
    server's -> failed. Always one line; an unexpected exception's text is not shown (it is logged)."""
    if isinstance(exc, InvalidInput | PermissionDenied | NotAuthenticated):
        return Outcome(TaskState.rejected, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if isinstance(exc, Unavailable):
        return Outcome(TaskState.failed, f"{exc} (retry after {exc.retry_after} s)")
    if isinstance(exc, DevopsCrewError):
        return Outcome(TaskState.failed, (str(exc).splitlines() or [type(exc).__name__])[0])
    return Outcome(TaskState.failed, "internal error: the request could not be handled (the server logged why)")


def answer_parts(text: str, view: dict[str, Any] | None) -> list[Part]:
    """A status message's parts: the line, and the request's SUMMARY as data when there is one."""
    parts = [Part(root=TextPart(text=text))]
    if view is not None:
        parts.append(Part(root=DataPart(data={"schema": SCHEMA_VERSION, "request": view})))
    return parts


def task_metadata(view: dict[str, Any]) -> dict[str, Any]:
    """What a task records of its request: ``request_id``, ``gap_id`` and the request's last seen state."""
    return {"request_id": view["id"], "gap_id": view["gap_id"], "request_state": view["state"]}
