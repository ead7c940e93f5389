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
OPEN_VALUES = frozenset(s.value for s in OPEN_STATES)  # as the store's state column holds them
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


def review(
    deps: Any, *, requester: ActorRef, registry: Registry, sources: list[GapSource] | None = None
) -> ReviewResult:
    """Run one review over ``deps`` (the engine's :class:`~devops_automation.engine.Deps`), recording
    each new request with ``engine.accept`` semantics (not driven: the caller drives them), against
    ``registry`` (the service reads it through the engine's per-revision cache). Audited as
    ``review.run``. Raises ForgeError when the registry cannot be read."""
    settings, store = deps.settings, deps.store
    reads = read_all(sources if sources is not None else default_sources(deps))
    candidates = candidates_of(reads, settings.review_skill_threshold)
    tasks = TaskStore(store)
    known = Known.read(store, tasks, candidates)
    for candidate in candidates:
        _dedupe(candidate, registry, known)
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
    left, why = free, ""
    for candidate in candidates:
        if candidate.outcome != "pending":
            continue
        if left <= 0:
            why = why or policy.no_slot_reason(
                store.ledger(),
                limit=settings.rate_limit_per_day,
                cooldown_seconds=settings.cooldown_seconds,
                pending=pending + free,  # the slots this review used count as on their way too
            )
            candidate.outcome, candidate.detail = "deferred", why
            continue
        request, created = store.create_request(
            candidate.gap, requester=requester, received=deps.auditor.request_received(candidate.gap)
        )
        candidate.request_id = request.id
        if not created:
            candidate.outcome, candidate.detail = "duplicate", f"gap {candidate.gap.id} already has {request.id}"
            continue
        candidate.outcome, candidate.detail = "submitted", request.id
        tasks.assign(candidate.task_ids, request_id=request.id)
        result.submitted.append(request.id)
        left -= 1
    tasks.record_sightings({c.key: (c.label, c.request_id) for c in candidates}, known.sightings)
    deps.auditor.event(
        "review.run",
        f"{len(candidates)} candidates",
        submitted=result.submitted,
        outcomes=result.view()["outcomes"],
        problems=[f"{s.name}: {w}: {p}" for s in reads for w, p in s.problems][:50],
    )
    return result


@dataclass
class Known:
    """What the store already has for the review's candidates, read in a few batched queries."""

    by_gap: dict[str, tuple[str, str]]  # gap id -> (request id, state)
    open_by_key: dict[str, str]  # skills key -> an open request's id
    rejected_by_key: dict[str, str]  # skills key -> a rejected request's id
    states: dict[str, str]  # request id -> state
    sightings: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, store: Any, tasks: TaskStore, candidates: list[Candidate]) -> Known:
        rows = store.request_index(gap_ids=[c.gap.id or "" for c in candidates], keys=[c.key for c in candidates])
        sightings = tasks.sightings(c.key for c in candidates)
        earlier = [s["request_id"] for s in sightings.values() if s["request_id"]]
        states = {rid: state for rid, _gap, _key, state, _withdrawn in rows}
        missing = [rid for rid in earlier if rid not in states]
        for rid in missing:
            request = store.get_request(rid)
            if request is not None:
                states[rid] = request.state.value
        known = cls({}, {}, {}, states, sightings)
        for rid, gap_id, key, state, withdrawn in rows:
            known.by_gap[gap_id] = (rid, state)
            if key and state in OPEN_VALUES:
                known.open_by_key.setdefault(key, rid)
            if key and state == RequestState.rejected.value and not withdrawn:  # a withdrawal is no verdict
                known.rejected_by_key.setdefault(key, rid)
        return known


def _dedupe(candidate: Candidate, registry: Registry, known: Known) -> None:
    """Set ``candidate.outcome`` when something already answers it; leave it ``pending`` otherwise (a
    close call, the matcher's ``triage``, is submitted: its request waits for a human to pick)."""
    matched = registry.match(candidate.gap)
    if matched.verdict.value == "reuse" and matched.candidates:
        team = matched.candidates[0].team
        candidate.outcome, candidate.detail, candidate.team = "covered", f"covered by team {team}", team
        return
    rejected, open_ = RequestState.rejected.value, OPEN_VALUES
    existing = known.by_gap.get(candidate.gap.id or "")
    if existing is not None:
        rid, state = existing
        candidate.request_id = rid
        if state == rejected:
            candidate.outcome, candidate.detail = "previously-rejected", f"{rid} was rejected"
        else:
            candidate.outcome, candidate.detail = "duplicate", f"already {rid} ({state})"
        return
    if candidate.key in known.open_by_key:
        rid = known.open_by_key[candidate.key]
        candidate.outcome, candidate.detail, candidate.request_id = "duplicate", f"open request {rid}", rid
        return
    earlier = known.sightings.get(candidate.key, {}).get("request_id")
    state = known.states.get(earlier or "")
    if earlier and state in open_:
        candidate.outcome, candidate.detail, candidate.request_id = "duplicate", f"open request {earlier}", earlier
        return
    if earlier and state in (RequestState.merged.value, RequestState.reuse_existing.value):
        candidate.outcome, candidate.detail = "covered", f"covered by request {earlier} ({state})"
        candidate.request_id = earlier
        return
    if candidate.key in known.rejected_by_key:
        rid = known.rejected_by_key[candidate.key]
        candidate.outcome, candidate.detail, candidate.request_id = (
            "previously-rejected",
            f"like {rid}, rejected before",
            rid,
        )
