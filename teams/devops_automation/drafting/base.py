"""The one interface every drafter implements, whether it asks a language model or not."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from ..models import CapabilityGap, Department, LLMUsage, MatchCandidate, PRText, TeamCreationRequest, TeamSpec


class DraftContext(BaseModel):
    """What a drafter may know besides the gap: names it must not reuse, and the department of the
    registered teams closest to the gap (the matcher's vote; None when no team is close)."""

    existing_teams: set[str] = set()
    reserved_names: set[str] = set()
    department: Department | None = None


class Drafted(BaseModel):
    """A drafter's answer: the spec and what producing it cost."""

    spec: TeamSpec
    usage: LLMUsage = LLMUsage()
    #: Who drafted it, when not the drafter's own label (a crew that fell back to the offline drafter).
    label: str | None = None


class Drafter(Protocol):
    #: Shown in outputs so a reader knows whether a model or the offline rules wrote the spec.
    label: str

    def draft(self, gap: CapabilityGap, context: DraftContext) -> Drafted: ...


class SpecReviser(Protocol):
    """Revises a spec whose render failed validation (the scaffolder's job in the LLM crew)."""

    def revise(self, gap: CapabilityGap, spec: TeamSpec, errors: list[str]) -> Drafted: ...


class PRWriter(Protocol):
    """Writes the pull request's title and summary (the PR-author's job in the LLM crew)."""

    def write(self, request: TeamCreationRequest, spec: TeamSpec, files: list[str]) -> tuple[PRText, LLMUsage]: ...


class TriageReader(Protocol):
    """The first reader of a gap the matcher could not decide (the gap analyst, when an LLM is configured):
    given the closest teams, answers one of their names or ``"new"``. Its answer is validated by
    :func:`validated_choice`; anything else leaves the decision to a human."""

    def choose(self, gap: CapabilityGap, candidates: list[MatchCandidate]) -> tuple[str, LLMUsage]: ...


def validated_choice(answer: object, candidates: list[MatchCandidate]) -> str | None:
    """``answer`` when it is exactly one of the listed teams or ``"new"`` (after trimming and case-folding),
    else None: a model never names a team it was not shown, nor anything that is not a team."""
    if not isinstance(answer, str):
        return None
    choice = answer.strip().strip("`'\"").casefold()
    allowed = {c.team for c in candidates} | {"new"}
    return choice if choice in allowed else None
