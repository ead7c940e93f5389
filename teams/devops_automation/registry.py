"""The registry of known teams (``teams/*/team.yaml`` in the target repo) and gap-to-team matching.

Matching is deterministic: skill overlap weighs most, description word overlap breaks ties and
covers gaps that list no skills. A score at or above the reuse threshold means an existing team
already covers the gap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from .models import CapabilityGap, RegistryEntry

#: The example teams monorepo the embedded and fake forges start from.
SEED_DIR = Path(__file__).resolve().parent / "seed"

_STOPWORDS = frozenset(
    (
        "a an and are as at be but by can do does for from has have in into is it its need needs no nobody "
        "not of on or our so that the their them there these they this to up us we what when which who "
        "will with would team teams task tasks help handle handles someone anyone should "
    ).split()
)


def words(text: str) -> set[str]:
    """Content words of ``text``: lower-case, without stop words, crude plural folding."""
    found = set()
    for word in re.findall(r"[a-z0-9][a-z0-9.+#]*", text.lower()):
        word = word.strip(".")
        if len(word) < 2 or word in _STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        found.add(word)
    return found


class Match(BaseModel):
    team: str
    score: float
    skill_score: float
    text_score: float
    shared_skills: list[str]


class Registry:
    """The teams of one revision of the target repository."""

    def __init__(self, entries: list[RegistryEntry], problems: list[str] | None = None) -> None:
        self.entries = {e.name: e for e in entries}
        self.problems = problems or []

    @classmethod
    def from_yaml_files(cls, files: Mapping[str, str]) -> Registry:
        """Build from ``{path: team.yaml text}``; unreadable entries are reported, not fatal."""
        entries, problems = [], []
        for path, text in sorted(files.items()):
            try:
                entries.append(RegistryEntry.model_validate(yaml.safe_load(text)))
            except (yaml.YAMLError, ValidationError, TypeError) as exc:
                problems.append(f"{path}: {str(exc).splitlines()[0]}")
        return cls(entries, problems)

    def names(self) -> set[str]:
        return set(self.entries)

    def rank(self, gap: CapabilityGap) -> list[Match]:
        gap_skill_words = {s: words(s) or {s} for s in gap.required_skills}
        gap_text = words(gap.description) | set().union(*gap_skill_words.values())
        matches = []
        for entry in self.entries.values():
            team_skill_words = set().union(*(words(s) or {s} for s in entry.skills)) if entry.skills else set()
            shared = [s for s in gap.required_skills if s in entry.skills or gap_skill_words[s] <= team_skill_words]
            skill_score = len(shared) / len(gap.required_skills) if gap.required_skills else 0.0
            team_text = words(entry.description) | team_skill_words
            text_score = len(gap_text & team_text) / len(gap_text) if gap_text else 0.0
            score = 0.7 * skill_score + 0.3 * text_score if gap.required_skills else text_score
            matches.append(
                Match(
                    team=entry.name,
                    score=round(score, 3),
                    skill_score=round(skill_score, 3),
                    text_score=round(text_score, 3),
                    shared_skills=shared,
                )
            )
        return sorted(matches, key=lambda m: (-m.score, m.team))
