"""One review: sources -> candidates -> what the registry, open requests and earlier sightings already
cover -> submissions through the rate limiter, in priority order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import policy
from ..models import IN_PROGRESS, TERMINAL_STATES, ActorRef, RequestState
from ..registry import Registry
from .plan import Candidate, candidates_of
from .sources import GapSource, ReportDirectory, SourceRead, UnassignedTasks, read_all
from .tasks import TaskStore

OPEN_STATES = set(RequestState) - set(TERMINAL_STATES)
#: Still on the way to the gate: each will take a rate-limit slot there.
BEFORE_GATE = {RequestState.received, RequestState.analysed, RequestState.drafted}
assert BEFORE_GATE <= IN_PROGRESS


@dataclass
class ReviewResult:
    """What a review did (README "Scheduled gap review": the ``--json`` shape is :meth:`view`)."""

    sources: list[SourceRead]
    candidates: list[Candidate]
    free_slots: int
    submitted: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for c in self.candidates:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        return {
            "sources": [
                {
                    "name": s.name,
                    "tasks": len(s.tasks),
                    "reports": len(s.reports),
                    "problems": [{"where": w, "problem": p} for w, p in s.problems],
                }
                for s in self.sources
            ],
            "candidates": [c.view() for c in self.candidates],
            "outcomes": counts,
            "free_slots": self.free_slots,
            "submitted": self.submitted,
        }


def default_sources(deps: Any) -> list[GapSource]:
    """The unassigned-task table, and the reports directory when DEVOPS_CREW_GAP_REPORTS_DIR is set."""
    sources: list[GapSource] = [UnassignedTasks(TaskStore(deps.store))]
    if deps.settings.gap_reports_dir is not None:
        sources.append(ReportDirectory(deps.settings.gap_reports_dir))
    return sources


def review(deps: Any, *, requester: ActorRef, sources: list[GapSource] | None = None) -> ReviewResult:
    """Run one review over ``deps`` (the engine's :class:`~devops_automation.engine.Deps`), recording
    each new request with ``engine.accept`` semantics (not driven: the caller drives them). Audited as
    ``review.run``. Raises ForgeError when the registry cannot be read."""
    settings, store = deps.settings, deps.store
    reads = read_all(sources if sources is not None else default_sources(deps))
    candidates = candidates_of(reads, settings.review_skill_threshold)
    tasks = TaskStore(store)
    registry = Registry.from_yaml_files(deps.target.team_files())
    known = tasks.sightings(c.key for c in candidates)
    for candidate in candidates:
        _dedupe(candidate, registry, store, known, settings.reuse_threshold)
        if candidate.team is not None:
            tasks.assign(candidate.task_ids, team=candidate.team)
    pending = len(store.list_requests(limit=1000, states=BEFORE_GATE))
    free = policy.free_slots(
        store.ledger(),
        limit=settings.rate_limit_per_day,
        cooldown_seconds=settings.cooldown_seconds,
        pending=pending,
    )
    result = ReviewResult(reads, candidates, free)
    left = free
    for candidate in candidates:
        if candidate.outcome != "pending":
            continue
        if left <= 0:
            candidate.outcome, candidate.detail = "deferred", "rate limit: no slot free now"
            continue
        request, created = store.create_request(candidate.gap, requester=requester)
        candidate.request_id = request.id
        if not created:
            candidate.outcome, candidate.detail = "duplicate", f"gap {candidate.gap.id} already has {request.id}"
            continue
        deps.auditor.event(
            "request.received",
            candidate.gap.id or "",
            request_id=request.id,
            requesting_team=candidate.gap.requesting_team,
        )
        candidate.outcome, candidate.detail = "submitted", request.id
        tasks.assign(candidate.task_ids, request_id=request.id)
        result.submitted.append(request.id)
        left -= 1
    tasks.record_sightings({c.key: (c.label, c.request_id) for c in candidates}, known)
    deps.auditor.event(
        "review.run",
        f"{len(candidates)} candidates",
        submitted=result.submitted,
        outcomes=result.view()["outcomes"],
        problems=[f"{s.name}: {w}: {p}" for s in reads for w, p in s.problems][:50],
    )
    return result


def _dedupe(candidate: Candidate, registry: Registry, store: Any, known: dict[str, Any], threshold: float) -> None:
    """Set ``candidate.outcome`` when something already answers it; leave it ``pending`` otherwise."""
    ranked = registry.rank(candidate.gap)
    if ranked and ranked[0].score >= threshold:
        candidate.outcome, candidate.detail = "covered", f"covered by team {ranked[0].team}"
        candidate.team = ranked[0].team
        return
    existing = store.get_request_by_gap(candidate.gap.id or "")
    if existing is not None and existing.state is RequestState.rejected:
        candidate.outcome, candidate.detail = "previously-rejected", f"{existing.id} was rejected"
        candidate.request_id = existing.id
        return
    if existing is not None:
        candidate.outcome, candidate.detail, candidate.request_id = "duplicate", f"already {existing.id}", existing.id
        return
    for other in store.open_with_skills(candidate.gap.required_skills, OPEN_STATES):
        candidate.outcome, candidate.detail, candidate.request_id = "duplicate", f"open request {other.id}", other.id
        return
    earlier = known.get(candidate.key, {}).get("request_id")
    if earlier:
        before = store.get_request(earlier)
        if before is not None and before.state in OPEN_STATES:
            candidate.outcome, candidate.detail, candidate.request_id = "duplicate", f"open request {earlier}", earlier
            return
        if before is not None and before.state in (RequestState.merged, RequestState.reuse_existing):
            candidate.outcome, candidate.detail = "covered", f"covered by request {earlier} ({before.state.value})"
            candidate.request_id = earlier
            return
    rejected = store.rejected_like(None, candidate.gap.required_skills)
    if rejected is not None:
        candidate.outcome, candidate.detail = "previously-rejected", f"like {rejected.id}, rejected before"
        candidate.request_id = rejected.id
