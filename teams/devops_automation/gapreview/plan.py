"""From what the sources hold to the gaps worth submitting: group tasks by skill, then rank by priority
(urgency, then how many tasks wait, then age: the idea of Renovate's ``prPriority``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from ..models import CapabilityGap, Urgency, skills_key
from .sources import GapReport, SourceRead, Task

URGENCY_RANK = {Urgency.low: 0, Urgency.medium: 1, Urgency.high: 2, Urgency.critical: 3}
#: A skill that appears in at least this share of a group's tasks is asked for too (at most 3 more).
CO_SKILL_SHARE = 0.5
MAX_EXAMPLES = 3


@dataclass
class Candidate:
    """One gap the review may submit. ``key`` is :func:`~devops_automation.models.skills_key` of its
    skills (its identity across reviews); ``task_ids`` the tasks it would place."""

    gap: CapabilityGap
    key: str
    label: str
    waiting: int
    first_seen: datetime
    origin: str
    task_ids: list[str] = field(default_factory=list)
    outcome: str = "pending"  # submitted, covered, duplicate, previously-rejected, deferred
    detail: str = ""
    request_id: str | None = None
    team: str | None = None  # the existing team that covers it (outcome ``covered``)

    @property
    def priority(self) -> tuple[int, int, float]:
        """Sort key, highest first: urgency, tasks waiting, age (older first)."""
        return (URGENCY_RANK[self.gap.urgency], self.waiting, -self.first_seen.timestamp())

    def view(self) -> dict[str, object]:
        """JSON shape of one candidate in the review's summary (README "Scheduled gap review")."""
        return {
            "label": self.label,
            "skills": self.gap.required_skills,
            "urgency": self.gap.urgency.value,
            "tasks_waiting": self.waiting,
            "first_seen": self.first_seen.isoformat(),
            "origin": self.origin,
            "outcome": self.outcome,
            "detail": self.detail,
            "request_id": self.request_id,
            "team": self.team,
        }


def group_tasks(tasks: list[Task], threshold: int) -> list[Candidate]:
    """Tasks grouped by skill: each skill needed by at least ``threshold`` tasks not yet in a bigger
    group becomes a candidate (largest groups first, so one task feeds one candidate)."""
    by_skill: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        for skill in task.skills:
            by_skill[skill].append(task)
    used: set[str] = set()
    candidates = []
    for skill, members in sorted(by_skill.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        group = [t for t in members if t.id not in used]
        if len(group) < threshold:
            continue
        used.update(t.id for t in group)
        candidates.append(_candidate(skill, group))
    return candidates


def _candidate(skill: str, group: list[Task]) -> Candidate:
    counts = Counter(s for t in group for s in t.skills if s != skill)
    co_skills = [s for s, n in counts.most_common(3) if n >= CO_SKILL_SHARE * len(group)]
    skills = [skill, *co_skills]
    examples = "; ".join(f"“{' '.join(t.summary.split())[:120]}”" for t in group[:MAX_EXAMPLES])
    urgency = max((t.urgency for t in group), key=URGENCY_RANK.__getitem__)
    sources = Counter(t.source for t in group)
    day = min(t.created_at for t in group)
    key = skills_key(skills)
    assert key is not None
    gap = CapabilityGap(
        id=f"review-{key[:16]}-{datetime.now(day.tzinfo).strftime('%Y%m%d')}",
        description=(
            f"{len(group)} unassigned tasks need {', '.join(skills)}, and no team in the fleet has it. "
            f"Examples (quoted from the tasks): {examples}"
        ),
        required_skills=skills,
        urgency=urgency,
        requesting_team=sources.most_common(1)[0][0],
        affected_tasks=[t.id for t in group[:100]],
    )
    return Candidate(
        gap=gap,
        key=key,
        label=f"{len(group)} tasks need {', '.join(skills)}",
        waiting=len(group),
        first_seen=day,
        origin="unassigned-tasks",
        task_ids=[t.id for t in group],
    )


def from_report(report: GapReport) -> Candidate:
    """A reported gap as a candidate (its identity: its skills, or its own id when it names none)."""
    gap = report.gap
    key = skills_key(gap.required_skills) or f"gap:{gap.id}"
    words = " ".join(gap.description.split())
    return Candidate(
        gap=gap,
        key=key[:64],
        label=words[:80] + ("…" if len(words) > 80 else ""),
        waiting=report.tasks_waiting,
        first_seen=report.seen_at,
        origin=report.origin,
    )


def candidates_of(reads: list[SourceRead], threshold: int) -> list[Candidate]:
    """Every candidate the sources give, the same skills merged into one (the most urgent and waited-for
    wording kept, the waiting counts added), highest priority first."""
    tasks = [t for r in reads for t in r.tasks]
    found = group_tasks(tasks, threshold) + [from_report(rep) for r in reads for rep in r.reports]
    merged: dict[str, Candidate] = {}
    for candidate in sorted(found, key=lambda c: c.priority, reverse=True):
        kept = merged.get(candidate.key)
        if kept is None:
            merged[candidate.key] = candidate
            continue
        kept.waiting += candidate.waiting
        kept.task_ids += candidate.task_ids
        kept.first_seen = min(kept.first_seen, candidate.first_seen)
        kept.origin += f", {candidate.origin}"
    return sorted(merged.values(), key=lambda c: c.priority, reverse=True)
