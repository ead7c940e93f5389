"""GitHub's rules over statuses, checks, permissions and protected branches, as pure functions.

- Combined status: the latest status per context (contexts compare case-insensitively) counts; the state
  is ``failure`` if any of those is ``error`` or ``failure``, else ``pending`` if any is ``pending`` or if
  there are none at all, else ``success``.
- A required check is met by a latest status ``success`` or a latest check run concluded ``success``,
  ``neutral`` or ``skipped`` with that name; ``error``/``failure`` (or a failed check run) is *failing*;
  anything else (nothing yet, ``pending``, a queued or running check) is *expected*.
- Permissions: a repository's admins (its owner, and the forge's admins) hold every permission; every
  other user is a collaborator with push, triage and pull.
- A protected branch cannot be deleted or force-pushed by anyone (unless the protection allows it); other
  changes must come through a pull request (when the protection requires one) unless the user is an admin
  and the protection does not ``enforce_admins``. Required checks gate merges (and are reported on refused
  pushes) for everyone who cannot bypass.
- Required reviews: each reviewer's latest APPROVED or CHANGES_REQUESTED review counts (COMMENTED and
  PENDING ones do not, DISMISSED ones no longer do); the author's own never exist (GitHub refuses them).
  A change request blocks the merge; otherwise ``required_approving_review_count`` approvals are needed,
  and with ``dismiss_stale_reviews`` only approvals of the current head count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .ci import CheckRun, Protection, Status
from .state import Review

PASSING_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
FAILING_CONCLUSIONS = frozenset({"failure", "cancelled", "timed_out", "action_required", "stale"})


def latest_per_context(statuses: Iterable[Status]) -> list[Status]:
    """The newest status of each context, oldest context first (statuses in any order)."""
    latest: dict[str, Status] = {}
    for status in statuses:
        key = status.context.lower()
        if key not in latest or status.id > latest[key].id:
            latest[key] = status
    return sorted(latest.values(), key=lambda s: s.id)


def combined_state(latest: Sequence[Status]) -> str:
    states = {s.state for s in latest}
    if states & {"error", "failure"}:
        return "failure"
    if not latest or "pending" in states:
        return "pending"
    return "success"


def _run_outcome(run: CheckRun) -> str:
    if run.status != "completed":
        return "expected"
    if run.conclusion in PASSING_CONCLUSIONS:
        return "success"
    return "failing" if run.conclusion in FAILING_CONCLUSIONS else "expected"


def _status_outcome(status: Status) -> str:
    if status.state == "success":
        return "success"
    return "failing" if status.state in ("error", "failure") else "expected"


_RANK = {"expected": 0, "failing": 1, "success": 2}


def check_outcomes(statuses: Iterable[Status], check_runs: Iterable[CheckRun]) -> dict[str, str]:
    """``context (lower case) -> success | failing | expected`` from the latest status and the latest check
    run of each name; where both exist, the better of the two counts."""
    outcomes: dict[str, str] = {}
    latest_runs: dict[str, CheckRun] = {}
    for run in check_runs:
        key = run.name.lower()
        if key not in latest_runs or run.id > latest_runs[key].id:
            latest_runs[key] = run
    found = [(k, _run_outcome(r)) for k, r in latest_runs.items()]
    found += [(s.context.lower(), _status_outcome(s)) for s in latest_per_context(statuses)]
    for key, outcome in found:
        if key not in outcomes or _RANK[outcome] > _RANK[outcomes[key]]:
            outcomes[key] = outcome
    return outcomes


def required_checks_message(required: Sequence[str], outcomes: dict[str, str]) -> str | None:
    """GitHub's words for unmet required checks, or None when every one has succeeded."""
    unmet = [c for c in required if outcomes.get(c.lower()) != "success"]
    if not unmet:
        return None
    failing = [c for c in unmet if outcomes.get(c.lower()) == "failing"]
    if failing:
        return f'Required status check "{failing[0]}" is failing.'
    if len(required) == 1:
        return f'Required status check "{unmet[0]}" is expected.'
    return f"{len(unmet)} of {len(required)} required status checks are expected."


def permissions(admin: bool) -> dict[str, bool]:
    """A repository's ``permissions`` object for an admin or for a collaborator with write access."""
    return {"admin": admin, "maintain": admin, "push": True, "triage": True, "pull": True}


def may_bypass(protection: Protection, admin: bool) -> bool:
    return admin and not protection.enforce_admins


def update_violations(
    protection: Protection, *, admin: bool, deleting: bool, forced: bool, checks_message: str | None
) -> list[str]:
    """Why an update of a protected branch is refused (GitHub's messages), or ``[]`` when it is allowed."""
    if deleting:
        return [] if protection.allow_deletions else ["Cannot delete this protected branch"]
    found = ["Cannot force-push to this branch"] if forced and not protection.allow_force_pushes else []
    if not may_bypass(protection, admin):
        if protection.require_pull_request:
            found.append("Changes must be made through a pull request.")
        if checks_message:
            found.append(checks_message)
    return found


def review_message(protection: Protection, reviews: Iterable[Review], head_sha: str) -> str | None:
    """GitHub's words for a pull request whose reviews do not yet allow a merge into ``protection``'s
    branch, or None; ``reviews`` are the pull request's, in any order."""
    if not protection.require_pull_request or protection.required_approving_review_count <= 0:
        return None
    latest: dict[int, Review] = {}
    for review in sorted(reviews, key=lambda r: r.id):
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.user_id] = review
    if any(r.state == "CHANGES_REQUESTED" for r in latest.values()):
        return "Changes were requested by a reviewer with write access."
    approvals = [
        r
        for r in latest.values()
        if r.state == "APPROVED" and not (protection.dismiss_stale_reviews and r.commit_id != head_sha)
    ]
    needed = protection.required_approving_review_count
    if len(approvals) >= needed:
        return None
    plural = "review is" if needed == 1 else "reviews are"
    return f"At least {needed} approving {plural} required by reviewers with write access."
