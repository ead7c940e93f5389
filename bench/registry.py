"""The registry matcher on the labelled registry-eval set, chosen by cross-validation, and at scale.

    .venv/bin/python bench/registry.py              # figures at the shipped weights, CV folds, scale
    .venv/bin/python bench/registry.py --embeddings # the same with the local MiniLM model blended in
    .venv/bin/python bench/registry.py --skip-scale

The set: ``../shared/registry-eval/`` (30 teams, 98 gaps; ``--eval-dir`` elsewhere) plus this project's own
cases in ``bench/registry_cases.yaml`` (same format, next free ids). Printed, for the offline matcher
(no LLM) with the shipped weights (``matcher.Weights``), lexical only and, with ``--embeddings``, blended:

- reuse precision (automatic reuses that name the labelled team / all automatic reuses),
- missed-unchecked (reuse gaps that go to a new-team proposal with no human in between / reuse gaps),
- triage share (gaps sent to a human / all gaps), team accuracy (reuse gaps reused: right team),
- the same on the hard rows (``why``), and each kind of error.

Cross-validation: 5 folds stratified by reuse/new (scikit-learn ``StratifiedKFold``, 3 seeds); everything is
fitted on the training part alone and scored on the held-out part (``choose``):

1. the ranking weights: the grid point that ranks the labelled team first for the most training reuse gaps;
2. the two decision models (``matcher.DECISION_FEATURES`` of the best-ranked team -> scikit-learn
   ``LogisticRegression`` on standardised features: "the labelled team ranks first" for ``confidence``, "the gap
   is labelled reuse" for ``covered``), for each ``C`` of ``C_GRID``;
3. the thresholds ``reuse_at`` (on confidence) and ``new_below`` (on covered), on out-of-fold probabilities
   *inside* the training part (5 inner folds x 3 repeats), never on the models' own training fit: the fewest
   triaged gaps with precision >= 0.97 and missed-unchecked <= 3% there (``TRAIN_PRECISION``, ``TRAIN_MISSED``:
   a margin inside the targets of 0.95 and 5%); the ``C`` whose thresholds do best, refitted on the whole
   training part.

The shipped numbers (``matcher.Weights()``, ``matcher.SEMANTIC_WEIGHTS``) are the same procedure on all the gaps;
the script prints them to paste, and then ``prior_weight`` (``choose_prior_weight``: the share of the prior
correction for small registries with the fewest unchecked errors on random 1-, 3- and 10-team sub-registries).

Small registries (``report_subregistries``): 15 random sub-registries of 1, 3 and 10 of the set's teams (other
draws than the fitting ones) and the whole set, each gap matched against each, a gap whose labelled team was
dropped counted as ``new``; precision, wrong automatic reuses, missed-unchecked and triage per size, beside the
matcher of commit 91e107b (loaded from git) on the same draws.

Scale: the registry grown to 10, 1,000 and 10,000 teams (synthetic teams made by recombining the set's
words), index build time, and the median time to match one gap, beside the floor: the same library calls
(the word and character TF-IDF transforms, the sparse products, one rapidfuzz lookup) made bare, without the
product's code.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rapidfuzz import fuzz, process
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from devops_automation.matcher import DECISION_FEATURES, MatchIndex, Weights, decision_features
from devops_automation.models import CapabilityGap, RegistryEntry
from devops_automation.skills import Synonyms

HERE = Path(__file__).resolve().parent
DEFAULT_EVAL = HERE.parent.parent / "shared" / "registry-eval"
if not DEFAULT_EVAL.is_dir():
    DEFAULT_EVAL = Path("/work/shared/registry-eval")
OWN_CASES = HERE / "registry_cases.yaml"


def load_set(eval_dir: Path) -> tuple[list[RegistryEntry], list[dict[str, Any]]]:
    """The registry and the labelled gaps (the shared set, then this project's own cases)."""
    gaps_doc = yaml.safe_load((eval_dir / "gaps.yaml").read_text())
    registry_doc = yaml.safe_load((eval_dir / gaps_doc.get("registry", "registry.yaml")).read_text())
    entries = [RegistryEntry.model_validate(t) for t in registry_doc["teams"]]
    gaps = list(gaps_doc["gaps"])
    if OWN_CASES.exists():
        gaps += yaml.safe_load(OWN_CASES.read_text())["gaps"]
    for gap in gaps:
        kind, _, team = str(gap["expect"]).partition(":")
        gap["kind"], gap["team"] = kind.strip(), team.strip() or None
        gap["model"] = CapabilityGap(description=gap["description"], required_skills=gap.get("skills") or [])
    return entries, gaps


#: What ``choose`` asks of the cross-validated probabilities inside the set it is given: a margin inside the
#: targets (precision >= 0.95, missed-unchecked <= 5%), since thresholds put just at the targets on one sample
#: land beyond them on the next.
TRAIN_PRECISION, TRAIN_MISSED = 0.97, 0.03
#: The regularisation strengths tried for the decision models (scikit-learn's ``C``), chosen inside each set.
C_GRID = (0.03, 0.1, 0.3, 1.0)


def decisions(
    index: MatchIndex, features: list[np.ndarray], gaps: list[dict], weights: Weights
) -> dict[str, np.ndarray]:
    """Per gap, ranked with ``weights``: the best team's :data:`DECISION_FEATURES` row (``X``, shape
    ``(gaps, len(DECISION_FEATURES))``), whether it is the labelled team (``right``), whether the gap is labelled
    reuse (``reuse``), whether the agreement rule and out_of_scope allow reusing it (``may``), and its name."""
    rows, right, may, teams = [], [], [], []
    for gap, feats in zip(gaps, features, strict=True):
        scores = np.clip(feats @ weights.vector(), 0.0, None)
        best = int(np.argmax(scores))
        rows.append(decision_features(feats, scores, len(gap["model"].required_skills), best, weights))
        teams.append(index.entries[best].name)
        right.append(teams[-1] == gap["team"])
        may.append(weights.may_reuse(feats[best]))
    return {
        "X": np.array(rows).reshape(len(gaps), len(DECISION_FEATURES)),
        "right": np.array(right, dtype=bool),
        "reuse": np.array([g["kind"] == "reuse" for g in gaps]),
        "may": np.array(may, dtype=bool),
        "teams": np.array(teams),
    }


def evaluate(index: MatchIndex, features: list[np.ndarray], gaps: list[dict], weights: Weights) -> dict[str, Any]:
    """Score each gap once with ``weights`` (ranking, decision models, thresholds: what ``MatchIndex.match``
    does); the figures of the module docstring."""
    d = decisions(index, features, gaps, weights)
    probs = np.array([weights.probabilities(x, len(index.entries)) for x in d["X"]]).reshape(len(gaps), 2)
    reused = (probs[:, 0] >= weights.reuse_at) & d["may"]
    new = (probs[:, 1] < weights.new_below) & ~reused
    return _figures(reused, new, d["right"], d["reuse"])


def _figures(reused: np.ndarray, new: np.ndarray, right: np.ndarray, is_reuse: np.ndarray) -> dict[str, Any]:
    made, reuse_gaps = int(reused.sum()), int(is_reuse.sum())
    reuse_right = int((reused & right & is_reuse).sum())
    reused_reuse_gaps = int((reused & is_reuse).sum())
    missed = int((new & is_reuse).sum())
    return {
        "precision": reuse_right / made if made else 1.0,
        "recall": reuse_right / reuse_gaps if reuse_gaps else 0.0,
        "missed_unchecked": missed / reuse_gaps if reuse_gaps else 0.0,
        "triage": float((~reused & ~new).mean()) if len(reused) else 0.0,
        "team_accuracy": reuse_right / reused_reuse_gaps if reused_reuse_gaps else 1.0,
        "errors": {
            "missed_unchecked": missed,
            "wrong_team": reused_reuse_gaps - reuse_right,
            "reuse_should_be_new": int((reused & ~is_reuse).sum()),
        },
        "n": len(reused),
    }


def ranked_first(index: MatchIndex, features: list[np.ndarray], gaps: list[dict], weights: Weights) -> float:
    """Share of reuse gaps whose labelled team ranks first."""
    hits = total = 0
    for gap, feats in zip(gaps, features, strict=True):
        if gap["kind"] != "reuse":
            continue
        total += 1
        hits += index.entries[int(np.argmax(feats @ weights.vector()))].name == gap["team"]
    return hits / total if total else 0.0


def _grid(semantic: bool) -> list[Weights]:
    grid = []
    for skill, text, desc, name in itertools.product((0.3, 0.45, 0.6), (0.1, 0.2), (0.15, 0.25, 0.35), (0.1, 0.2)):
        for sem in (0.2, 0.35) if semantic else (0.0,):
            grid.append(Weights(skill=skill, skill_text=text, description=desc, name=name, semantic=sem))
    return grid


def choose_ranking(index: MatchIndex, features: list[np.ndarray], gaps: list[dict], semantic: bool) -> Weights:
    """The grid's ranking weights that rank the labelled team first for the most reuse gaps of ``gaps``; ties:
    the largest mean relative margin of the labelled team over the next (scale-free, so weights of any size
    compare)."""
    columns = {e.name: i for i, e in enumerate(index.entries)}
    reuse = [(columns[g["team"]], f) for g, f in zip(gaps, features, strict=True) if g["kind"] == "reuse"]
    best: tuple[tuple[float, float], Weights] | None = None
    for weights in _grid(semantic):
        hits, margins = 0, []
        for team, feats in reuse:
            scores = np.clip(feats @ weights.vector(), 0.0, None)
            other = float(np.delete(scores, team).max())
            hits += scores[team] > other
            margins.append((scores[team] - other) / max(scores[team], 1e-9))
        key = (hits, float(np.mean(margins)) if margins else 0.0)
        if best is None or key > best[0]:
            best = (key, weights)
    assert best is not None
    return best[1]


def _logistic_model(c: float) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))


def _thresholds(conf: np.ndarray, cov: np.ndarray, d: dict[str, np.ndarray]) -> tuple[tuple, float, float]:
    """The ``(key, reuse_at, new_below)`` with the fewest triaged gaps meeting ``TRAIN_PRECISION`` and
    ``TRAIN_MISSED`` on these probabilities (or, when none does, the best precision minus missed); thresholds
    lie midway between neighbouring probabilities."""

    def cuts(p: np.ndarray) -> np.ndarray:
        values = np.unique(p)
        return np.concatenate([[0.0], (values[1:] + values[:-1]) / 2, [1.0 + 1e-9]])

    hi, lo = cuts(conf), cuts(cov)
    reused = (conf[None, :] >= hi[:, None]) & d["may"][None, :]  # (hi, gaps)
    made = reused.sum(axis=1)
    precision = np.where(made > 0, (reused & d["right"]).sum(axis=1) / np.maximum(made, 1), 1.0)
    new = (cov[None, None, :] < lo[None, :, None]) & ~reused[:, None, :]  # (hi, lo, gaps)
    missed = (new & d["reuse"]).sum(axis=2) / max(1, int(d["reuse"].sum()))
    triage = (~reused[:, None, :] & ~new).mean(axis=2)
    meets = (precision[:, None] >= TRAIN_PRECISION) & (missed <= TRAIN_MISSED)
    second = np.where(meets, -triage, precision[:, None] - missed)
    keys = np.stack(np.broadcast_arrays(meets, second, made[:, None]), axis=-1).reshape(-1, 3)
    k = int(np.lexsort(keys.T[::-1])[-1])
    i, j = divmod(k, len(lo))
    return tuple(keys[k].tolist()), float(hi[i]), float(lo[j])


def fit_decision(d: dict[str, np.ndarray], weights: Weights, seed: int = 0) -> Weights:
    """``weights`` with both decision models and thresholds fitted on ``d`` (:func:`decisions`): for each ``C``
    of ``C_GRID``, out-of-fold probabilities (5-fold, 3 repeats, inside ``d``) give the thresholds and how well
    they do; the best ``C`` is refitted on all of ``d``, its standardisation folded into raw coefficients."""
    x, right, reuse = d["X"], d["right"].astype(int), d["reuse"].astype(int)
    best: tuple[tuple, float, float, float] | None = None
    for c in C_GRID:
        conf, cov = np.zeros(len(x)), np.zeros(len(x))
        for repeat in range(3):
            inner = StratifiedKFold(n_splits=5, shuffle=True, random_state=100 + 10 * seed + repeat)
            conf += cross_val_predict(_logistic_model(c), x, right, cv=inner, method="predict_proba")[:, 1] / 3
            cov += cross_val_predict(_logistic_model(c), x, reuse, cv=inner, method="predict_proba")[:, 1] / 3
        key, hi, lo = _thresholds(conf, cov, d)
        if best is None or key[:2] > best[0][:2]:
            best = (key, c, hi, lo)
    assert best is not None
    _key, c, hi, lo = best
    update: dict[str, Any] = {"reuse_at": round(hi, 4), "new_below": round(lo, 4)}
    for name, target in (("confidence", right), ("covered", reuse)):
        model = _logistic_model(c).fit(x, target)
        scaler, lr = model[0], model[1]
        coef = lr.coef_[0] / scaler.scale_
        update[f"{name}_model"] = tuple(round(float(v), 4) for v in coef)
        update[f"{name}_bias"] = round(float(lr.intercept_[0] - coef @ scaler.mean_), 4)
    return weights.model_copy(update=update)


def choose(
    index: MatchIndex, features: list[np.ndarray], gaps: list[dict], semantic: bool, seed: int = 0
) -> tuple[Weights, dict]:
    """Everything fitted on ``gaps`` alone: the ranking weights, then the decision models and thresholds."""
    ranking = choose_ranking(index, features, gaps, semantic)
    weights = fit_decision(decisions(index, features, gaps, ranking), ranking, seed)
    return weights, evaluate(index, features, gaps, weights)


def cross_validate(
    index: MatchIndex, features: list[np.ndarray], gaps: list[dict], semantic: bool, seeds: tuple[int, ...] = (0, 1, 2)
) -> list[dict]:
    labels = [g["kind"] for g in gaps]
    folds = []
    for seed in seeds:
        splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        for train, test in splitter.split(np.zeros(len(gaps)), labels):
            w, _ = choose(index, [features[i] for i in train], [gaps[i] for i in train], semantic, seed)
            fig = evaluate(index, [features[i] for i in test], [gaps[i] for i in test], w)
            fig["weights"] = w
            folds.append(fig)
    return folds


def _line(label: str, fig: dict) -> str:
    e = fig["errors"]
    return (
        f"{label:<28} n={fig['n']:<3} precision {fig['precision']:.2f}  missed-unchecked {fig['missed_unchecked']:.2f}"
        f"  triage {fig['triage']:.2f}  recall {fig['recall']:.2f}  team-accuracy {fig['team_accuracy']:.2f}"
        f"  errors: missed {e['missed_unchecked']}, wrong team {e['wrong_team']},"
        f" should-be-new {e['reuse_should_be_new']}"
    )


def _spread(folds: list[dict], key: str) -> str:
    values = [f[key] for f in folds]
    mean, spread = statistics.mean(values), statistics.pstdev(values)
    return f"{mean:.2f} ± {spread:.2f} (min {min(values):.2f}, max {max(values):.2f}; mean {mean:.3f})"


def report_quality(
    entries: list[RegistryEntry],
    gaps: list[dict],
    embedder: Any,
    label: str,
    cv: bool,
    power: float | None = None,
    seeds: tuple[int, ...] = (0, 1, 2),
) -> None:
    started = time.perf_counter()
    shipped = Weights() if embedder is None else _shipped_semantic()
    if power is not None:
        shipped = shipped.model_copy(update={"known_power": power})
        label = f"{label}, known_power={power}"
    index = MatchIndex(entries, Synonyms.load(), embedder=embedder, weights=shipped)
    features = [index.features(g["model"]) for g in gaps]
    print(f"\n== {label}: {len(entries)} teams, {len(gaps)} gaps (features in {time.perf_counter() - started:.2f} s)")
    hard = [i for i, g in enumerate(gaps) if g.get("why")]
    print(_line("shipped weights, all", evaluate(index, features, gaps, shipped)))
    print(
        _line(
            "shipped weights, hard rows", evaluate(index, [features[i] for i in hard], [gaps[i] for i in hard], shipped)
        )
    )
    print(f"right team ranked first (reuse gaps): {ranked_first(index, features, gaps, shipped):.2f}")
    if not cv:
        return
    folds = cross_validate(index, features, gaps, semantic=embedder is not None, seeds=seeds)
    print(f"5-fold CV x {len(seeds)} seeds {seeds} (held-out parts; everything fitted on the training parts):")
    for i, fold in enumerate(folds):
        w = fold["weights"]
        print(
            f"  fold {i:2d}: "
            + _line("", fold).strip()[:150]
            + f"  rank w=({w.skill},{w.skill_text},{w.description},{w.name},{w.semantic})"
            + f" reuse if confidence>={w.reuse_at:.3f}, new if covered<{w.new_below:.3f}"
        )
    for key in ("precision", "missed_unchecked", "triage", "team_accuracy"):
        print(f"  {key:<17} {_spread(folds, key)}")
    chosen, fig = choose(index, features, gaps, semantic=embedder is not None)
    chosen = chosen.model_copy(update={"known_power": shipped.known_power})
    print(f"chosen on the whole set (the procedure of each fold, on all {len(gaps)} gaps):")
    for name, value in chosen.model_dump().items():
        if value != Weights.model_fields[name].default:
            print(f"    {name}={value},")
    print(_line("  (in-sample)", fig))
    prior = choose_prior_weight(entries, gaps, chosen, embedder)
    print(f"  prior_weight={prior['best']}  (unchecked errors [wrong reuses, missed] per size of fitting draws:)")
    for alpha in PRIOR_GRID:
        counts = prior[alpha]
        total = sum(sum(c) for c in counts.values())
        print(f"    {alpha:<5} " + "  ".join(f"{size} teams {c}" for size, c in counts.items()) + f"  total {total}")


def _shipped_semantic() -> Weights:
    from devops_automation.matcher import SEMANTIC_WEIGHTS

    return SEMANTIC_WEIGHTS


# -- small registries --------------------------------------------------------------------------------------------
#: Registry sizes and draws for ``report_subregistries``: random sub-registries of the set's teams; a gap whose
#: labelled team is not in the draw is labelled ``new`` there (the team it needs does not exist).
SUB_SIZES, SUB_DRAWS, SUB_SEED = (1, 3, 10, 30), 15, 11


def sub_registries(entries: list[RegistryEntry], size: int, draws: int = SUB_DRAWS) -> list[list[RegistryEntry]]:
    """``draws`` random sub-registries of ``size`` teams (seeded by the size, the same for every matcher); at the
    set's own size every draw is the whole set."""
    rng = random.Random(SUB_SEED * 1000 + size)
    if size >= len(entries):
        return [list(entries)]  # one registry of that size: counted once
    return [sorted(rng.sample(entries, size), key=lambda e: e.name) for _ in range(draws)]


def relabel(gaps: list[dict], names: set[str]) -> list[dict]:
    """``gaps`` as labelled for a registry of ``names``: reuse of a team not in it is ``new``."""
    return [g if g["kind"] != "reuse" or g["team"] in names else {**g, "kind": "new", "team": None} for g in gaps]


def verdict_figures(verdicts: list[tuple[str, str | None]], gaps: list[dict]) -> dict[str, Any]:
    """:func:`_figures` from ``(verdict, team)`` pairs, as ``MatchIndex.match`` decides them."""
    reused = np.array([v == "reuse" for v, _ in verdicts], dtype=bool)
    new = np.array([v == "new" for v, _ in verdicts], dtype=bool)
    right = np.array([t is not None and t == g["team"] for (_, t), g in zip(verdicts, gaps, strict=True)])
    return _figures(reused, new, right, np.array([g["kind"] == "reuse" for g in gaps], dtype=bool))


def subregistry_table(
    entries: list[RegistryEntry], gaps: list[dict], make_index: Any, sizes: tuple[int, ...] = SUB_SIZES
) -> dict[int, dict[str, Any]]:
    """Per size: the figures of every gap matched once against each of the draws (``make_index(entries)`` builds
    the matcher; its ``match(gap)`` decides), all draws pooled."""
    table = {}
    for size in sizes:
        verdicts, labelled = [], []
        for draw in sub_registries(entries, size):
            index = make_index(draw)
            relabelled = relabel(gaps, {e.name for e in draw})
            for gap in relabelled:
                result = index.match(gap["model"])
                verdicts.append((str(result.verdict), result.team))
            labelled += relabelled
        table[size] = verdict_figures(verdicts, labelled)
    return table


#: The draws ``choose_prior_weight`` fits on (other draws than the ones ``report_subregistries`` scores), and the
#: weights of the prior correction (``Weights.prior_weight``) it tries.
FIT_SIZES, FIT_SEED, PRIOR_GRID = (1, 3, 10), 23, (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def choose_prior_weight(entries: list[RegistryEntry], gaps: list[dict], weights: Weights, embedder: Any = None) -> dict:
    """``Weights.prior_weight`` with the fewest unchecked errors (automatic reuses of a wrong team or of a gap no
    registered team covers, plus reuse gaps sent to a new team with no human in between) over random
    sub-registries of ``FIT_SIZES`` teams (``SUB_DRAWS`` each, relabelled as in :func:`relabel`), all else as
    fitted on the whole set. Returns ``{prior_weight: {size: (wrong, missed)}}`` and the choice under ``"best"``."""
    synonyms = Synonyms.load()
    rows = []
    for size in FIT_SIZES:
        rng = random.Random(FIT_SEED * 1000 + size)
        for _ in range(SUB_DRAWS):
            draw = sorted(rng.sample(entries, size), key=lambda e: e.name)
            index = MatchIndex(draw, synonyms, embedder=embedder, weights=weights)
            relabelled = relabel(gaps, {e.name for e in draw})
            rows.append((size, decisions(index, [index.features(g["model"]) for g in gaps], relabelled, weights)))
    table: dict[Any, Any] = {}
    for alpha in PRIOR_GRID:
        w = weights.model_copy(update={"prior_weight": alpha})
        counts: dict[int, list[int]] = {size: [0, 0] for size in FIT_SIZES}
        for size, d in rows:
            probs = np.array([w.probabilities(x, size) for x in d["X"]]).reshape(len(d["X"]), 2)
            reused = (probs[:, 0] >= w.reuse_at) & d["may"]
            new = (probs[:, 1] < w.new_below) & ~reused
            counts[size][0] += int((reused & ~(d["right"] & d["reuse"])).sum())
            counts[size][1] += int((new & d["reuse"]).sum())
        table[alpha] = counts
    table["best"] = min(PRIOR_GRID, key=lambda a: (sum(sum(c) for c in table[a].values()), a))
    return table


def old_matcher() -> Any:
    """The matcher of commit 91e107b (one score, two score thresholds, the context agreement rule), loaded from
    git beside the current one, for comparing like with like on the same sub-registries."""
    import importlib.util
    import subprocess

    import devops_automation

    source = subprocess.run(
        ["git", "-C", str(HERE.parent), "show", f"{OLD_MATCHER}:teams/devops_automation/matcher.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = "devops_automation._matcher_" + OLD_MATCHER
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = devops_automation.__name__
    sys.modules[name] = module
    exec(compile(source, f"{OLD_MATCHER}:matcher.py", "exec"), module.__dict__)  # noqa: S102 (our own history)
    return module


OLD_MATCHER = "91e107b"


def _sub_line(size: int, fig: dict) -> str:
    e = fig["errors"]
    wrong = e["wrong_team"] + e["reuse_should_be_new"]
    return (
        f"{size:>6} {fig['n']:>6} {fig['precision']:>10.2f} {wrong:>7} {fig['missed_unchecked']:>8.2f}"
        f" {fig['triage']:>7.2f}"
    )


def report_subregistries(entries: list[RegistryEntry], gaps: list[dict], embedder: Any, weights: Weights) -> None:
    print(
        f"\n== small registries: {SUB_DRAWS} random draws of each size, gaps relabelled (a dropped team: new)"
        f"\n{'teams':>6} {'gaps':>6} {'precision':>10} {'wrong':>7} {'missed':>8} {'triage':>7}   matcher"
    )
    synonyms = Synonyms.load()
    current = subregistry_table(entries, gaps, lambda d: MatchIndex(d, synonyms, embedder=embedder, weights=weights))
    old = old_matcher()
    old_weights = old.Weights() if embedder is None else old.SEMANTIC_WEIGHTS
    before = subregistry_table(
        entries, gaps, lambda d: old.MatchIndex(d, synonyms, embedder=embedder, weights=old_weights)
    )
    for size in current:
        print(_sub_line(size, current[size]) + "   this one")
        print(_sub_line(size, before[size]) + f"   {OLD_MATCHER} (before the decision models)")


# -- scale ------------------------------------------------------------------------------------------------------
def synthetic_registry(entries: list[RegistryEntry], size: int, seed: int = 7) -> list[RegistryEntry]:
    """``size`` teams: the set's own, then recombinations of their words, names and skills."""
    rng = random.Random(seed)
    words = sorted({w for e in entries for w in e.description.lower().replace(",", "").replace(".", "").split()})
    skills = sorted({s for e in entries for s in e.skills})
    out = list(entries[:size])
    while len(out) < size:
        base = rng.choice(entries)
        name = f"{base.name[:20]}_{len(out):05d}"
        description = " ".join(rng.sample(words, 14)).capitalize() + "."
        out.append(
            RegistryEntry(name=name, description=description, department=base.department, skills=rng.sample(skills, 5))
        )
    return out


def floor_match(
    vectorizers: tuple[TfidfVectorizer, TfidfVectorizer],
    matrices: tuple[Any, Any],
    skill_keys: list[str],
    gap: CapabilityGap,
) -> np.ndarray:
    """The same library work as one match, bare: the word and character transforms and their sparse products,
    fuzzy lookup, top 3."""
    text = gap.description.lower() + " " + " ".join(gap.required_skills).lower()
    scores = np.zeros(matrices[0].shape[0])
    for vectorizer, matrix in zip(vectorizers, matrices, strict=True):
        scores += (matrix @ vectorizer.transform([text]).T).toarray().ravel()
    for skill in gap.required_skills:
        process.extract(skill.lower(), skill_keys, scorer=fuzz.ratio, score_cutoff=88, limit=5)
    return np.argpartition(-scores, 3)[:3]


def report_scale(entries: list[RegistryEntry], gaps: list[dict], sizes: list[int]) -> None:
    print("\n== scale: one gap matched against N teams (median of all set gaps, index built once)")
    print(f"{'teams':>7} {'build s':>8} {'match ms':>9} {'p95 ms':>7} {'floor ms':>9} {'ratio':>6}")
    models = [g["model"] for g in gaps]
    for size in sizes:
        registry = synthetic_registry(entries, size)
        started = time.perf_counter()
        index = MatchIndex(registry, Synonyms.load())
        build = time.perf_counter() - started
        times = []
        for gap in models:
            t0 = time.perf_counter()
            index.match(gap)
            times.append((time.perf_counter() - t0) * 1000)
        texts = [f"{e.name} {e.description} {' '.join(e.skills)}" for e in registry]
        vectorizers = (
            TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words="english"),
            TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5)),
        )
        matrices = (vectorizers[0].fit_transform(texts), vectorizers[1].fit_transform(texts))
        keys = sorted({s for e in registry for s in e.skills})
        floor = []
        for gap in models:
            t0 = time.perf_counter()
            floor_match(vectorizers, matrices, keys, gap)
            floor.append((time.perf_counter() - t0) * 1000)
        median, f_median = statistics.median(times), statistics.median(floor)
        p95 = sorted(times)[int(0.95 * (len(times) - 1))]
        print(f"{size:>7} {build:>8.2f} {median:>9.2f} {p95:>7.2f} {f_median:>9.2f} {median / f_median:>6.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--embeddings", action="store_true", help="also blend the local MiniLM model in")
    parser.add_argument("--no-cv", action="store_true", help="skip cross-validation")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-small", action="store_true", help="skip the small sub-registries")
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--powers", default="", help="also cross-validate these known_power values, e.g. 0,0.5,1")
    parser.add_argument("--seeds", default="0,1,2", help="the outer folds' shuffling seeds (other draws of the folds)")
    args = parser.parse_args(argv)
    if not (args.eval_dir / "gaps.yaml").exists():
        print(f"no evaluation set at {args.eval_dir}", file=sys.stderr)
        return 2
    entries, gaps = load_set(args.eval_dir)
    powers = [float(p) for p in args.powers.split(",")] if args.powers else [None]
    seeds = tuple(int(s) for s in args.seeds.split(","))
    for power in powers:
        label = "lexical (TF-IDF + skills + fuzzy), no LLM"
        report_quality(entries, gaps, None, label, cv=not args.no_cv, power=power, seeds=seeds)
    if not args.skip_small:
        report_subregistries(entries, gaps, None, Weights())
    if args.embeddings:
        from devops_automation.embeddings import local_embedder

        label = "lexical + MiniLM embeddings, no LLM"
        embedder = local_embedder(None)
        report_quality(entries, gaps, embedder, label, cv=not args.no_cv, seeds=seeds)
        if not args.skip_small:
            report_subregistries(entries, gaps, embedder, _shipped_semantic())
    if not args.skip_scale:
        report_scale(entries, gaps, [int(s) for s in args.sizes.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
