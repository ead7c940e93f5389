"""Gap-to-team matching: which registered team, if any, covers a gap, and how sure that is.

One :class:`MatchIndex` is built per registry revision (see :class:`~devops_automation.registry.RegistryCache`)
and answers every gap of that revision. For each team it measures, all vectorised over the registry:

- ``skill``: the share of the gap's skills the team has, comparing normalised keys
  (:mod:`devops_automation.skills`: case, punctuation, ``react.js``/``react``, plurals, synonyms), with a
  fuzzy match (rapidfuzz) for near spellings at partial credit;
- ``skill_text``, ``description``, ``name``: TF-IDF cosine (scikit-learn) between the gap's words (description
  and skills, synonym-expanded) and each field of the team, so a gap that names the team in words counts;
- ``out_of_scope``: the same cosine against what the team says it does *not* do (a penalty);
- ``semantic``: cosine of sentence embeddings, only when an embedder is configured;
- ``context``: the TF-IDF cosine of the gap's own words (its skills left out) with the team's name and
  description; ``skills_matched``: how many of the gap's skills the team has (same key or a synonym);
- ``char_text``, ``char_skills``: TF-IDF cosine of character 3-5-grams within words (scikit-learn ``char_wb``)
  between the gap's words and the team's whole text, and between the gap's skills and the team's skills: near
  forms a word key misses (``budget``/``budgeting``, ``reconciling``/``reconciliation``).

All of them are in 0..1 (``skills_matched``: a count), one row per team: :meth:`MatchIndex.features` has shape
``(teams, len(FEATURES))``. The *ranking* score is a weighted sum (``Weights.vector``); the best-ranked team is
the candidate (the labelled team ranks first for ~97% of the labelled reuse gaps). Whether to reuse it is the
hard part and a separate question, answered from the candidate's :data:`DECISION_FEATURES` (its evidence, the
margins to the runner-up, how many skills matched exactly) by two logistic models whose coefficients are
numbers in :class:`Weights` (no pickle):

- ``confidence`` = P(the best-ranked team covers the gap), trained on "the labelled team ranks first";
- ``covered`` = P(some team covers the gap), trained on "the gap is labelled reuse" (two teams close to each
  other lower ``confidence``, not ``covered``: an ambiguous gap goes to triage, not to a new team).

On a registry smaller than the one the models were fitted on, both log-odds are lowered by a share of the Bayes
prior shift for its size (:meth:`Weights.prior_shift`): fewer teams, fewer gaps any of them can cover.

Reuse when ``confidence >= reuse_at`` and the agreement rule and ``out_of_scope`` allow it
(:meth:`Weights.may_reuse`), a new team when ``covered < new_below``, triage otherwise. The ranking weights, both
models and both thresholds are fitted by ``bench/registry.py`` inside each training fold of a 5-fold
cross-validation on the labelled set in ``../shared/registry-eval/`` (held-out figures), and the shipped numbers
by the same procedure on the whole set.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import numpy as np
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from scipy import sparse  # noqa: F401  (annotations only)

from .models import CapabilityGap, RegistryEntry
from .skills import Synonyms, base_key, tokens

#: Fuzzy skill matches below this rapidfuzz ratio (0-100) do not count; those above count at
#: ``FUZZY_CREDIT`` of an exact match (a near spelling is evidence, not proof).
FUZZY_CUTOFF = 88.0
FUZZY_CREDIT = 0.8
_STOPWORDS = frozenset(
    (
        "a an and are as at be but by can do does for from has have in into is it its need needs no nobody "
        "not of on or our so that the their them there these they this to up us we what when which who "
        "will with would team teams task tasks help handle handles someone anyone should i me my you your "
        "get got all any some more most very just also than then pls please asap thing stuff work owns own "
        "run runs keep keeps make makes whoever"
    ).split()
)
FEATURES = (
    "skill",
    "skill_text",
    "description",
    "name",
    "out_of_scope",
    "semantic",
    "context",
    "skills_matched",
    "char_text",
    "char_skills",
)
#: What the reuse/new decision reads of the best-ranked team (see :func:`decision_features`), in the order of
#: ``Weights.confidence_model`` and ``Weights.covered_model``.
DECISION_FEATURES = (
    "score",  # its ranking score
    "margin",  # its score minus the runner-up's
    "skill",
    "skill_text",
    "description",
    "name",
    "context",
    "agrees",  # 1 when the agreement rule holds (Weights.agree_at, agree_skills)
    "exact_share",  # skills_matched / the gap's skills
    "two_exact",  # 1 when two or more of the gap's skills are the team's own
    "n_skills",  # how many skills the gap lists, at least 1 (a gap without skills is read as one with one)
    "char_text",
    "char_skills",
    "char_margin",  # char_text minus the best char_text among the other teams
    "semantic",
    "semantic_margin",  # semantic minus the best semantic among the other teams
)


# The decision models' raw coefficients, in DECISION_FEATURES order, as bench/registry.py prints them (lexical:
# the semantic columns are 0 without an embedder; semantic: fitted with the local MiniLM model blended in).
# fmt: off
_LEXICAL_CONFIDENCE = (
    1.4018, 1.7667, 0.3527, 1.4914, 2.8377, 0.6603, 0.8149, 0.0988,
    0.3527, 0.2139, -0.2253, 2.076, 0.9681, 2.2078, 0.0, 0.0,
)
_LEXICAL_COVERED = (
    1.7195, 1.6441, 0.5128, 1.4434, 2.4414, 0.553, 0.6685, 0.0085,
    0.5128, 0.1535, -0.3643, 1.9281, 1.0878, 1.8176, 0.0, 0.0,
)
_SEMANTIC_CONFIDENCE = (
    1.6701, 2.5597, 0.4266, 1.9271, 4.4226, 1.19, 0.3858, -0.0089,
    0.4266, 0.198, -0.5204, 3.1231, 1.4318, 3.2732, -0.3423, 2.9319,
)
_SEMANTIC_COVERED = (
    2.2935, 2.1311, 0.7796, 1.8537, 3.8038, 1.3413, 0.3675, -0.1387,
    0.7796, 0.0341, -0.7749, 3.0637, 1.6465, 2.6708, -0.442, 1.6986,
)
# fmt: on


class Weights(BaseModel):
    """The ranking weights (one per :data:`FEATURES` field), the two decision models (one coefficient per
    :data:`DECISION_FEATURES` entry, plus a bias; probabilities by the logistic function) and their thresholds.

    The defaults are what ``bench/registry.py`` fits on the whole registry-eval set plus
    ``bench/registry_cases.yaml``: ranking weights from a grid (most labelled teams ranked first), scikit-learn
    ``LogisticRegression`` on standardised features (the scaling folded into these raw coefficients), its
    ``C`` and the thresholds from cross-validated probabilities inside the set, so that reuse precision >= 0.97
    and missed reuse <= 3% there with the fewest triaged gaps. ``bench/registry.py`` prints the held-out folds
    of the same procedure."""

    skill: float = 0.3
    skill_text: float = 0.1
    description: float = 0.35
    name: float = 0.2
    out_of_scope: float = 0.6
    semantic: float = 0.0
    context: float = 0.0
    #: P(the best-ranked team covers the gap) = logistic(confidence_model . decision features + confidence_bias).
    confidence_model: tuple[float, ...] = _LEXICAL_CONFIDENCE
    confidence_bias: float = -1.5149
    #: P(some team covers the gap) = logistic(covered_model . decision features + covered_bias).
    covered_model: tuple[float, ...] = _LEXICAL_COVERED
    covered_bias: float = -1.0526
    #: Reuse at or above this ``confidence`` (``DEVOPS_CREW_REUSE_CONFIDENCE`` overrides it).
    reuse_at: float = 0.4577
    #: A new team below this ``covered`` probability (``DEVOPS_CREW_NEW_TEAM_COVERED`` overrides it).
    new_below: float = 0.3133
    #: The agreement rule (issue 14: one shared skill alone is no automatic reuse): reuse also needs the gap's
    #: own words, its skills left out, to meet the team's name or description, or the gap to name the team
    #: (``context + name`` above this), or at least ``agree_skills`` of the gap's skills to be the team's own
    #: (same key or a synonym). Measured by cross-validation: ``context`` alone triages 30% of the gaps held
    #: out (this rule: 22%, same precision); also counting ``description`` would let a skill the team repeats
    #: in its description pass for agreement (``sql`` for a pentest). At least 0.05, as the context rule before
    #: the decision models asked: at 0 any trace of overlap passed (one generic word, diluted to near nothing),
    #: and on small registries that let one shared word through to an automatic reuse.
    agree_at: float = 0.05
    agree_skills: int = 2
    #: How much words no team uses dilute the text cosines: the known share of the gap's TF-IDF weight is
    #: raised to this power (0: unknown words are ignored; 1: they count fully). Changes the features.
    known_power: float = 1.0

    def vector(self) -> np.ndarray:
        """The ranking weights in :data:`FEATURES` order, ``out_of_scope`` negated (it is a penalty)."""
        text = [self.skill, self.skill_text, self.description, self.name, -self.out_of_scope]
        return np.array([*text, self.semantic, self.context, 0.0, 0.0, 0.0])  # the last three: decision only

    #: The registry the models were fitted on: its size and the share of its labelled gaps that an existing team
    #: covers (registry-eval: 30 teams, 60 of 104 gaps). See :meth:`prior_shift`.
    fitted_teams: int = 30
    fitted_reuse_share: float = 0.5769
    #: How much of that correction to apply (0: none, 1: all). The features already tell most gaps written for a
    #: team that is not registered from a registered team's work, so the full Bayes shift counts that twice
    #: (1 team: every reuse gap missed); ``bench/registry.py`` picks the weight with the fewest unchecked errors
    #: (wrong automatic reuses plus reuse gaps sent unchecked to a new team) on random 1-, 3- and 10-team
    #: sub-registries of the set.
    prior_weight: float = 0.15

    def prior_shift(self, teams: int | None) -> float:
        """What to add to both models' log-odds on a registry of ``teams`` teams: the models learnt how often a
        gap is covered on ``fitted_teams`` teams; with fewer, fewer gaps can be (a gap whose team is not
        registered is new), in proportion if gaps spread over teams as in the set: the prior share
        ``fitted_reuse_share * teams / fitted_teams``. A label-shift correction (Bayes: only the prior odds
        change), 0 at or above the fitted size (no extrapolation towards more reuse)."""
        if not teams or teams >= self.fitted_teams or not self.prior_weight:
            return 0.0
        p = self.fitted_reuse_share
        q = p * teams / self.fitted_teams
        return self.prior_weight * float(np.log(q / (1 - q)) - np.log(p / (1 - p)))

    def probabilities(self, decision: np.ndarray, teams: int | None = None) -> tuple[float, float]:
        """``(confidence, covered)`` for one row of :func:`decision_features` on a registry of ``teams`` teams
        (None: as many as the models were fitted on)."""
        shift = self.prior_shift(teams)
        return (
            _logistic(float(np.dot(self.confidence_model, decision)) + self.confidence_bias + shift),
            _logistic(float(np.dot(self.covered_model, decision)) + self.covered_bias + shift),
        )

    def contributions(self, decision: np.ndarray, top: int = 3) -> list[str]:
        """The ``top`` largest (by size) terms of the confidence model for one row of :func:`decision_features`,
        as ``"char_text +0.45"``: the model is linear, so each term is what that evidence adds to the log-odds
        (the bias aside); terms under 0.05 are left out."""
        terms = np.asarray(self.confidence_model) * decision
        order = np.argsort(-np.abs(terms))[:top]
        return [f"{DECISION_FEATURES[i]} {terms[i]:+.2f}" for i in order if abs(terms[i]) >= 0.05]

    def agrees(self, features: np.ndarray) -> bool:
        """The agreement rule for one team's :data:`FEATURES` row (``out_of_scope`` aside)."""
        words = float(features[6] + features[3])  # context (the gap's own words) + name
        return bool(words >= self.agree_at or features[7] >= self.agree_skills)

    def may_reuse(self, features: np.ndarray) -> bool:
        """May the team of this :data:`FEATURES` row be reused automatically: it agrees and nothing in the gap
        reads like its ``out_of_scope``."""
        return self.agrees(features) and features[4] == 0.0


def decision_features(
    features: np.ndarray, scores: np.ndarray, n_skills: int, best: int, weights: Weights
) -> np.ndarray:
    """Shape ``(len(DECISION_FEATURES),)``: what the decision reads of team ``best`` (a row of ``features``,
    shape ``(teams, len(FEATURES))``, ranked by ``scores``, shape ``(teams,)``) for a gap of ``n_skills``
    skills. The margins compare with the best other team. With no other team a margin is 0, not the value
    itself: "no competitor" is no evidence that the team covers the gap, and the value itself as margin was outside
    anything the models were fitted on (on thirty teams a runner-up always shares something, the character
    cosines most of all), so it counted the same evidence twice; 0 reads as "nothing tells the team apart"."""
    f = features[best]
    others = np.delete(np.arange(len(scores)), best)

    def margin(column: np.ndarray) -> float:
        return float(column[best] - column[others].max()) if len(others) else 0.0

    exact = float(f[7])
    return np.array(
        [
            scores[best],
            margin(scores),
            f[0],
            f[1],
            f[2],
            f[3],
            f[6],
            float(weights.agrees(f)),
            exact / max(1, n_skills),
            float(exact >= 2),
            float(max(1, n_skills)),
            f[8],
            f[9],
            margin(features[:, 8]),
            f[5],
            margin(features[:, 5]),
        ],
        dtype=np.float64,
    )


#: The weights ``bench/registry.py --embeddings`` fits with the local MiniLM model blended in.
SEMANTIC_WEIGHTS = Weights(
    skill_text=0.2,
    semantic=0.2,
    confidence_model=_SEMANTIC_CONFIDENCE,
    confidence_bias=-1.6567,
    covered_model=_SEMANTIC_COVERED,
    covered_bias=-0.9674,
    reuse_at=0.3717,
    new_below=0.2353,
    prior_weight=0.4,
)


class Embedder(Protocol):
    """Turns texts into sentence embeddings: ``encode(texts)`` -> float array of shape ``(len(texts), d)``."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


class Verdict(StrEnum):
    reuse = "reuse"
    new = "new"
    triage = "triage"


class SkillHit(BaseModel):
    """One gap skill found in a team: ``how`` is ``exact`` (same key), ``synonym`` or ``fuzzy``."""

    gap_skill: str
    team_skill: str
    how: str


class Candidate(BaseModel):
    """One team's match for a gap, with the evidence a reader needs to check it."""

    team: str
    department: str
    score: float
    features: dict[str, float]
    skills: list[SkillHit] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    out_of_scope: list[str] = Field(default_factory=list)
    #: The best candidate only: what the decision read (:data:`DECISION_FEATURES` by name).
    decision: dict[str, float] = Field(default_factory=dict)

    def explain(self) -> str:
        """One line: the team, its score and what matched (``"billing_ops 0.62; skills refunds=refunds"``)."""
        parts = [f"{self.team} {self.score:.2f}"]
        if self.skills:
            parts.append("skills " + ", ".join(f"{h.gap_skill}={h.team_skill}" for h in self.skills))
        if self.words:
            parts.append("words " + ", ".join(self.words))
        if self.out_of_scope:
            parts.append("out of scope: " + ", ".join(self.out_of_scope))
        return "; ".join(parts)


class MatchResult(BaseModel):
    """The matcher's decision for one gap: ``verdict``, the chosen team (reuse only) and the best
    candidates, best first (empty when no team shares anything with the gap)."""

    verdict: Verdict
    team: str | None = None
    score: float = 0.0
    candidates: list[Candidate] = Field(default_factory=list)
    #: P(the best candidate covers the gap) and P(some team covers it), from the decision models.
    confidence: float = 0.0
    covered: float = 0.0
    #: Why the best candidate was not reused although its confidence was high enough ("" otherwise).
    held_back: str = ""
    #: What moved ``confidence`` most: the largest terms coefficient x value of the (linear) confidence model,
    #: as ``"name +0.52"`` (the log-odds each adds), so a reviewer sees which evidence drove the decision.
    evidence: list[str] = Field(default_factory=list)

    def explain(self) -> str:
        """What was decided and why, in a sentence or two, for the request and the pull request."""
        if not self.candidates:
            return "new team: no registered team shares a skill or a distinctive word with the gap"
        best = self.candidates[0]
        head = {
            Verdict.reuse: f"reuse {best.team}",
            Verdict.new: "new team: the closest team is too far",
            Verdict.triage: "needs triage: the evidence is close",
        }[self.verdict]
        why = f"confidence {self.confidence:.2f}, covered {self.covered:.2f}"
        if self.evidence:
            why += "; evidence " + ", ".join(self.evidence)
        if self.held_back:
            why += f"; {self.held_back}"
        return f"{head} ({why}; closest: {best.explain()})"


#: The text fields of a team, in the order of the stacked TF-IDF matrix (name and description first).
_FIELD_ORDER = ("name", "description", "skill_text", "out_of_scope")


class MatchIndex:
    """Everything needed to score gaps against one revision of the registry, built once.

    ``entries``: the registry's teams; ``synonyms``: the skill table; ``embedder``: optional sentence
    embeddings (team texts are encoded here, once). Scoring a gap costs one TF-IDF transform, a few
    sparse matrix products and one fuzzy lookup over the registry's distinct skills."""

    def __init__(
        self,
        entries: Sequence[RegistryEntry],
        synonyms: Synonyms | None = None,
        *,
        embedder: Embedder | None = None,
        weights: Weights | None = None,
    ) -> None:
        # Imported here, not at module level: scikit-learn takes a second or more to import, and only a
        # process that matches gaps should pay it (``--help`` stays fast).
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.entries = list(entries)
        self.synonyms = synonyms or Synonyms.load()
        self.embedder = embedder
        self.weights = weights or Weights()
        self._surface: dict[str, str] = {}
        names = [self._text(e.name.replace("_", " ")) for e in self.entries]
        descriptions = [self._text(e.description) for e in self.entries]
        skill_texts = [self._text(" ; ".join(e.skills)) for e in self.entries]
        scopes = [self._text(" ; ".join(getattr(e, "out_of_scope", []) or [])) for e in self.entries]
        self.vectorizer = TfidfVectorizer(
            analyzer=_analyzer, lowercase=False, sublinear_tf=True, norm="l2", dtype=np.float32
        )
        if self.entries:
            self.vectorizer.fit(
                [" ; ".join(parts) for parts in zip(names, descriptions, skill_texts, scopes, strict=True)]
            )
            self._vocabulary: dict[str, int] = dict(self.vectorizer.vocabulary_)
            self._idf = np.asarray(self.vectorizer.idf_, dtype=np.float32)
            texts = {"name": names, "description": descriptions, "skill_text": skill_texts, "out_of_scope": scopes}
            # One matrix, the fields stacked (rows: field by field, team by team): one product per query.
            # CSC: a query reads only the columns of its own terms (an inverted index), not every row.
            self._stack = sparse.vstack([self.vectorizer.transform(texts[f]) for f in _FIELD_ORDER]).tocsc()
        else:
            self._vocabulary, self._idf = {}, np.zeros(0, dtype=np.float32)
        # Character 3-5-grams within words: the team's whole text, and its skills alone (two stacked blocks).
        self.char_vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), lowercase=False, sublinear_tf=True, dtype=np.float32
        )
        self._char_stack = None
        if self.entries:
            whole = [" ; ".join(parts) for parts in zip(names, descriptions, skill_texts, strict=True)]
            whole_matrix = self.char_vectorizer.fit_transform(whole)  # one pass over the longest texts
            self._char_stack = sparse.vstack([whole_matrix, self.char_vectorizer.transform(skill_texts)]).tocsc()
            self._char_vocabulary: dict[str, int] = dict(self.char_vectorizer.vocabulary_)
            self._char_idf = np.asarray(self.char_vectorizer.idf_, dtype=np.float32)
            self._char_analyzer = self.char_vectorizer.build_analyzer()
        # Skill keys: one column per distinct key, a team row has 1 where it lists that key.
        self.skill_keys: list[str] = []
        self._key_display: dict[tuple[int, int], str] = {}
        column: dict[str, int] = {}
        rows, cols = [], []
        for row, entry in enumerate(self.entries):
            for skill in entry.skills:
                key = self.synonyms.key(skill)
                col = column.setdefault(key, len(column))
                rows.append(row)
                cols.append(col)
                self._key_display[(row, col)] = skill
        self.skill_keys = list(column)
        self._skill_column = column
        self.team_skills = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(self.entries), len(column))
        )
        self.team_vectors: np.ndarray | None = None
        if embedder is not None and self.entries:
            self.team_vectors = _unit(embedder.encode([_team_sentence(e) for e in self.entries]))

    def _text(self, text: str) -> str:
        expanded = self.synonyms.expand(text)
        return expanded

    def __len__(self) -> int:
        return len(self.entries)

    def gap_text(self, gap: CapabilityGap) -> str:
        """The gap's words as the index compares them: description and skills, synonym-expanded."""
        return self._text(gap.description + " ; " + " ; ".join(gap.required_skills))

    def features(self, gap: CapabilityGap) -> np.ndarray:
        """Shape ``(teams, len(FEATURES))``: each team's evidence for ``gap``, each in 0..1."""
        out = np.zeros((len(self.entries), len(FEATURES)), dtype=np.float32)
        if not self.entries:
            return out
        query, share = self._query(self.gap_text(gap))
        if share:
            sims = self._products(query) * share**self.weights.known_power
            for row, name in enumerate(_FIELD_ORDER):
                out[:, FEATURES.index(name)] = sims[row]
        out[:, 0], out[:, 7] = self._skill_coverage(gap)
        if self._char_stack is not None:
            out[:, 8] = self._char_products(self.gap_text(gap))[0]
            if gap.required_skills:
                out[:, 9] = self._char_products(self._text(" ; ".join(gap.required_skills)))[1]
        skill_words = set(self._text(" ; ".join(gap.required_skills)).split(" "))
        own_words = [w for w in self._text(gap.description).split(" ") if w not in skill_words]
        own, own_share = self._query(" ".join(own_words))
        if own_share:
            sims = self._products(own)
            out[:, 6] = (sims[0] + sims[1]) * own_share**self.weights.known_power  # name + description
        if self.embedder is not None and self.team_vectors is not None:
            vector = _unit(self.embedder.encode([_gap_sentence(gap)]))[0]
            out[:, 5] = np.clip(self.team_vectors @ vector, 0.0, 1.0)
        return out

    def _products(self, query: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Shape ``(fields, teams)``: the cosine of ``query`` (its term columns and weights) with each field
        of each team, reading only those columns of the stacked matrix."""
        columns, values = query
        products = self._stack[:, columns] @ values
        return np.asarray(products).reshape(len(_FIELD_ORDER), len(self.entries))

    def _char_products(self, text: str) -> np.ndarray:
        """Shape ``(2, teams)``: the character-n-gram cosine of ``text`` with each team's whole text and with its
        skills, reading only the columns of the query's n-grams, diluted like the word cosines (:meth:`_query`) by
        the known share of the query's n-gram weight: ``TfidfVectorizer.transform`` drops the n-grams no team has
        and normalises over the rest, so a gap of mostly unknown words looked as close as its few known
        n-grams (on a three-team registry, ``zzzz qqqq builds xxxxxxx`` scored 0.22 against data_engineering)."""
        (columns, values), share = _weigh(self._char_analyzer(text), self._char_vocabulary, self._char_idf)
        if not share:
            return np.zeros((2, len(self.entries)), dtype=np.float32)
        products = self._char_stack[:, columns] @ values  # type: ignore[index]
        return np.asarray(products).reshape(2, len(self.entries)) * share**self.weights.known_power

    def _query(self, text: str) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        """``text`` as the fitted TF-IDF model weighs it (sublinear tf times idf, L2-normalised over the known
        terms, as ``TfidfVectorizer.transform`` does, without its per-call validation) as ``(columns,
        weights)``, and the share of its weight (L2 norm) on words the registry has at all. A word no team
        uses weighs as much as the rarest known word: without that share, a gap of ten words of which one
        is known would look as close to a team as a gap made of that one word."""
        return _weigh(_analyzer(text), self._vocabulary, self._idf)

    def _gap_skill_weights(self, gap: CapabilityGap) -> list[dict[int, tuple[float, str]]]:
        """Per gap skill: ``{skill column: (credit, how)}`` for the exact key and near spellings."""
        from rapidfuzz import fuzz, process

        found = []
        for skill in gap.required_skills:
            key = self.synonyms.key(skill)
            hits: dict[int, tuple[float, str]] = {}
            exact = self._skill_column.get(key)
            if exact is not None:
                hits[exact] = (1.0, "exact" if key == base_key(skill) else "synonym")
            for _choice, ratio, col in process.extract(
                key, self.skill_keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=5
            ):
                hits.setdefault(col, (FUZZY_CREDIT * ratio / 100.0, "fuzzy"))
            found.append(hits)
        return found

    def _skill_coverage(self, gap: CapabilityGap) -> tuple[np.ndarray, np.ndarray]:
        """Per team: the mean credit over the gap's skills, and how many of them it has exactly."""
        weights = self._gap_skill_weights(gap)
        if not weights or not self.skill_keys:
            zeros = np.zeros(len(self.entries), dtype=np.float32)
            return zeros, zeros
        credit = np.zeros((len(self.skill_keys), len(weights)), dtype=np.float32)
        for j, hits in enumerate(weights):
            for col, (value, _how) in hits.items():
                credit[col, j] = value
        per_skill = np.clip(np.asarray(self.team_skills @ credit), 0.0, 1.0)  # teams x gap skills
        return per_skill.mean(axis=1), (per_skill >= 1.0).sum(axis=1).astype(np.float32)

    def scores(self, features: np.ndarray, weights: Weights | None = None) -> np.ndarray:
        """The weighted score per team (clipped at 0) from :meth:`features`."""
        return np.clip(features @ (weights or self.weights).vector(), 0.0, None)

    def match(self, gap: CapabilityGap, *, top: int = 3) -> MatchResult:
        """Decide reuse / new / triage for ``gap`` and explain the ``top`` candidates."""
        features = self.features(gap)
        scores = self.scores(features)
        order = _top(scores, top)
        order = [i for i in order if scores[i] > 0 or features[i, :4].max() > 0]
        if not order:
            return decide([], self.weights)
        evidence = (
            self._gap_skill_weights(gap),
            set(_analyzer(self.gap_text(gap))),
            set(_analyzer(self._text(" ; ".join(gap.required_skills)))),
        )
        candidates = [self._candidate(gap, i, float(scores[i]), features[i], evidence) for i in order]
        decision = decision_features(features, scores, len(gap.required_skills), order[0], self.weights)
        candidates[0].decision = {name: round(float(v), 6) for name, v in zip(DECISION_FEATURES, decision, strict=True)}
        return decide(candidates, self.weights, len(self.entries))

    def _candidate(
        self,
        gap: CapabilityGap,
        row: int,
        score: float,
        features: np.ndarray,
        evidence: tuple[list[dict[int, tuple[float, str]]], set[str], set[str]],
    ) -> Candidate:
        entry = self.entries[row]
        skill_weights, query, skill_words = evidence
        hits = []
        for skill, found in zip(gap.required_skills, skill_weights, strict=True):
            for col, (_value, how) in found.items():
                team_skill = self._key_display.get((row, col))
                if team_skill is not None:
                    hits.append(SkillHit(gap_skill=skill, team_skill=team_skill, how=how))
                    break
        team_words = set(_analyzer(self._text(" ".join([entry.name.replace("_", " "), entry.description]))))
        shared = sorted(query & team_words - skill_words)
        scopes = [s for s in getattr(entry, "out_of_scope", []) or [] if set(_analyzer(self._text(s))) & query]
        return Candidate(
            team=entry.name,
            department=entry.department.value,
            score=round(score, 3),
            features={name: round(float(v), 3) for name, v in zip(FEATURES, features, strict=True)},
            skills=hits,
            words=[w for w in shared if " " not in w][:8],
            out_of_scope=scopes[:3],
        )

    def department_votes(self, gap: CapabilityGap, *, top: int = 5) -> dict[str, float]:
        """The departments of the ``top`` closest teams, each weighted by its score (empty when no
        team shares anything with the gap): the drafter's department for a new team."""
        scores = self.scores(self.features(gap))
        votes: dict[str, float] = {}
        for i in _top(scores, top):
            if scores[i] > 0:
                department = self.entries[i].department.value
                votes[department] = votes.get(department, 0.0) + float(scores[i])
        return votes


def decide(candidates: list[Candidate], weights: Weights, teams: int | None = None) -> MatchResult:
    """Reuse the best candidate when its ``confidence`` is at least ``reuse_at`` and it may be reused (the
    agreement rule, nothing out of scope: :meth:`Weights.may_reuse`); a new team when ``covered`` is below
    ``new_below``; triage otherwise (issue 14: three outcomes, not two). The probabilities come from the
    best candidate's ``decision`` features (:meth:`MatchIndex.match` fills them in), on a registry of ``teams``
    teams (:meth:`Weights.prior_shift`; None: the size the models were fitted on)."""
    if not candidates:
        return MatchResult(verdict=Verdict.new)
    best = candidates[0]
    decision = np.array([best.decision.get(name, 0.0) for name in DECISION_FEATURES])
    confidence, covered = weights.probabilities(decision, teams)
    row = np.array([best.features.get(name, 0.0) for name in FEATURES])
    held_back = ""
    if confidence >= weights.reuse_at and not weights.may_reuse(row):
        matched = int(row[7])
        if row[4] > 0:
            held_back = "the gap reads like what the team does not do"
        elif matched == 1:
            held_back = "one shared skill alone: no word of the gap meets the team's name or description"
        elif matched == 0:
            held_back = "no skill of the gap is the team's own and no word of it meets the team's name or description"
        else:
            held_back = "no word of the gap meets the team's name or description"
    common = {
        "score": best.score,
        "candidates": candidates,
        "confidence": round(confidence, 3),
        "covered": round(covered, 3),
        "evidence": weights.contributions(decision),
    }
    if confidence >= weights.reuse_at and not held_back:
        return MatchResult(verdict=Verdict.reuse, team=best.team, **common)
    verdict = Verdict.new if covered < weights.new_below else Verdict.triage
    return MatchResult(verdict=verdict, held_back=held_back, **common)


def _weigh(
    terms: list[str], vocabulary: dict[str, int], idf: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """``terms`` weighed as a fitted ``TfidfVectorizer`` (sublinear tf, ``idf``) would, L2-normalised over the
    terms in ``vocabulary``, as ``(columns, weights)``, and the known share of the weight (L2 norm; an unknown term
    weighs as much as the rarest known one). See :meth:`MatchIndex._query`."""
    counts: dict[str, int] = {}
    for term in terms:
        counts[term] = counts.get(term, 0) + 1
    rarest = float(idf.max()) if len(idf) else 1.0
    columns, values, unknown = [], [], 0.0
    for term, count in counts.items():
        column = vocabulary.get(term)
        tf = 1.0 + float(np.log(count))
        if column is None:
            unknown += (tf * rarest) ** 2
        else:
            columns.append(column)
            values.append(tf * float(idf[column]))
    weights = np.asarray(values, dtype=np.float32)
    known = float(weights @ weights) if values else 0.0
    query = (np.asarray(columns, dtype=np.int64), weights / np.sqrt(known) if known else weights)
    return query, (float(np.sqrt(known / (known + unknown))) if known else 0.0)


def _logistic(value: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(value, -50.0, 50.0))))


def _analyzer(text: str) -> list[str]:
    """Unigrams without stop words, plus bigrams of adjacent content words (``"rate limiting"``)."""
    out: list[str] = []
    for segment in text.split(";"):  # fields join their parts with ";": no bigram across two skills
        words = [w for w in segment.split(" ") if w and w not in _STOPWORDS and len(w) > 1]
        out += words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    return out


def _top(scores: np.ndarray, k: int) -> list[int]:
    if len(scores) == 0:
        return []
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return sorted(part.tolist(), key=lambda i: (-scores[i], i))


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def _team_sentence(entry: RegistryEntry) -> str:
    return f"{entry.name.replace('_', ' ')}: {entry.description} Skills: {', '.join(entry.skills)}."


def _gap_sentence(gap: CapabilityGap) -> str:
    skills = f" Skills: {', '.join(gap.required_skills)}." if gap.required_skills else ""
    return f"{gap.description}{skills}"


def tokens_of(text: str) -> list[str]:
    """Content words of ``text`` as the matcher sees them (stop words dropped), in order."""
    return [w for w in tokens(text) if w not in _STOPWORDS and len(w) > 1]
