"""The registry of known teams (``teams/*/team.yaml`` in the target repo) and gap-to-team matching.

A :class:`Registry` is one revision of the target's ``teams/`` tree; its :class:`~.matcher.MatchIndex` is
built the first time a gap is matched and then answers every gap of that revision. A
:class:`RegistryCache` keeps the last few revisions by the git object id of the ``teams/`` tree, so a
server parses the YAML and builds the index once per revision of the base branch, not per request
(issue 12, point 3). YAML is parsed with libyaml's C loader when PyYAML has it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ValidationError

from .matcher import Embedder, MatchIndex, MatchResult, Weights
from .models import CapabilityGap, Department, RegistryEntry
from .skills import Synonyms

if TYPE_CHECKING:
    from .settings import Settings

#: The example teams monorepo the embedded and fake forges start from.
SEED_DIR = Path(__file__).resolve().parent / "seed"
#: libyaml's loader (about ten times faster on a large registry), or PyYAML's own when it has none.
YAML_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

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
    """One team's score for a gap (the ranked list :meth:`Registry.rank` returns, best first)."""

    team: str
    score: float
    shared_skills: list[str]
    explanation: str = ""


@dataclass(frozen=True)
class Matching:
    """How gaps are matched: the synonym table, the weights and thresholds, an optional embedder."""

    synonyms: Synonyms
    weights: Weights
    embedder: Embedder | None = None

    @classmethod
    def default(cls) -> Matching:
        return cls(Synonyms.load(), Weights())

    @classmethod
    def from_settings(cls, settings: Settings) -> Matching:
        """From ``DEVOPS_CREW_SYNONYMS_FILE``, ``DEVOPS_CREW_REUSE_CONFIDENCE``, ``DEVOPS_CREW_NEW_TEAM_COVERED``
        and the embedding settings. Raises ConfigurationError for an unusable embedding model."""
        embedder: Embedder | None = None
        weights = Weights()
        if settings.embedding_model or settings.embedding_url:
            from .embeddings import EndpointEmbedder, local_embedder
            from .matcher import SEMANTIC_WEIGHTS

            weights = SEMANTIC_WEIGHTS
            if settings.embedding_url:
                key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
                embedder = EndpointEmbedder(settings.embedding_url, settings.embedding_api_model, key)
            else:
                path = None if settings.embedding_model == "builtin" else Path(str(settings.embedding_model))
                embedder = local_embedder(path)
        updates: dict[str, float] = {}
        if settings.reuse_confidence is not None:
            updates["reuse_at"] = settings.reuse_confidence
        if settings.new_team_covered is not None:
            updates["new_below"] = settings.new_team_covered
        return cls(Synonyms.load(settings.synonyms_file), weights.model_copy(update=updates), embedder)


class Registry:
    """The teams of one revision of the target repository (``revision``: the ``teams/`` tree's object id)."""

    def __init__(
        self,
        entries: list[RegistryEntry],
        problems: list[str] | None = None,
        *,
        matching: Matching | None = None,
        revision: str = "",
    ) -> None:
        self.entries = {e.name: e for e in entries}
        self.problems = problems or []
        self.revision = revision
        self._matching = matching
        self._index: MatchIndex | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_yaml_files(
        cls, files: Mapping[str, str], *, matching: Matching | None = None, revision: str = ""
    ) -> Registry:
        """Build from ``{path: team.yaml text}``; unreadable entries are reported, not fatal."""
        entries, problems = [], []
        for path, text in sorted(files.items()):
            try:
                entries.append(RegistryEntry.model_validate(yaml.load(text, Loader=YAML_LOADER)))  # noqa: S506
            except (yaml.YAMLError, ValidationError, TypeError) as exc:
                problems.append(f"{path}: {str(exc).splitlines()[0]}")
        return cls(entries, problems, matching=matching, revision=revision)

    def names(self) -> set[str]:
        return set(self.entries)

    @property
    def index(self) -> MatchIndex:
        """The match index of this revision, built on first use (thread-safe, once)."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    matching = self._matching or Matching.default()
                    self._index = MatchIndex(
                        list(self.entries.values()),
                        matching.synonyms,
                        embedder=matching.embedder,
                        weights=matching.weights,
                    )
        return self._index

    def match(self, gap: CapabilityGap) -> MatchResult:
        """Reuse, new or triage for ``gap``, with the closest candidates explained (see :mod:`.matcher`)."""
        return self.index.match(gap)

    def rank(self, gap: CapabilityGap, top: int = 3) -> list[Match]:
        """The ``top`` closest teams, best first (teams that share nothing with the gap are left out)."""
        return [
            Match(
                team=c.team,
                score=c.score,
                shared_skills=[h.gap_skill for h in c.skills],
                explanation=c.explain(),
            )
            for c in self.index.match(gap, top=top).candidates
        ]

    def department_for(self, gap: CapabilityGap) -> Department | None:
        """The department of the teams closest to ``gap`` (score-weighted vote), or None when none is close."""
        votes = self.index.department_votes(gap)
        return Department(max(votes, key=lambda d: votes[d])) if votes else None


class RegistryCache:
    """The last ``size`` registry revisions, by the ``teams/`` tree's object id. Thread-safe; a process
    keeps one (on :class:`~.engine.context.Deps`). ``matching`` is built on first use from ``settings``."""

    def __init__(self, settings: Settings | None = None, size: int = 4, matching: Matching | None = None) -> None:
        self.settings = settings
        self.size = size
        self._matching = matching
        self._revisions: OrderedDict[str, Registry] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many revisions were parsed (tests and the benchmark read it)

    @property
    def matching(self) -> Matching:
        with self._lock:
            if self._matching is None:
                self._matching = (
                    Matching.from_settings(self.settings) if self.settings is not None else Matching.default()
                )
            return self._matching

    def known(self, revision: str) -> bool:
        with self._lock:
            return revision in self._revisions

    def get(self, revision: str, files: Callable[[], Mapping[str, str]]) -> Registry:
        """The registry of ``revision``; ``files()`` is called only when it is not cached yet."""
        with self._lock:
            found = self._revisions.get(revision)
            if found is not None:
                self._revisions.move_to_end(revision)
                return found
        registry = Registry.from_yaml_files(files(), matching=self.matching, revision=revision)
        with self._lock:
            self.loads += 1
            self._revisions[revision] = registry
            while len(self._revisions) > self.size:
                self._revisions.popitem(last=False)
        return registry
