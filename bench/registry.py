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

Cross-validation: 5 folds stratified by reuse/new (scikit-learn ``StratifiedKFold``, 3 seeds); in each fold
a grid search over field weights and thresholds on the training part, scored on the held-out part. The
objective: fewest triaged gaps subject to precision >= 0.95 and missed-unchecked <= 5% on the training part.

Scale: the registry grown to 10, 1,000 and 10,000 teams (synthetic teams made by recombining the set's
words), index build time, and the median time to match one gap, beside the floor: the same library calls
(one TF-IDF transform, the sparse products, one rapidfuzz lookup) made bare, without the product's code.
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
from sklearn.model_selection import StratifiedKFold

from devops_automation.matcher import MatchIndex, Weights
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


def evaluate(index: MatchIndex, features: list[np.ndarray], gaps: list[dict], weights: Weights) -> dict[str, Any]:
    """Score each gap once with ``weights``; the figures of the module docstring."""
    reuse_made = reuse_right = triage = missed_unchecked = wrong_team = false_reuse = 0
    reuse_gaps = sum(1 for g in gaps if g["kind"] == "reuse")
    reused_reuse_gaps = 0
    for gap, feats in zip(gaps, features, strict=True):
        scores = np.clip(feats @ weights.vector(), 0.0, None)
        best = int(np.argmax(scores)) if len(scores) else -1
        top = float(scores[best]) if best >= 0 else 0.0
        agrees = best >= 0 and (feats[best, 6] >= weights.agree_at or feats[best, 7] >= weights.agree_skills)
        agrees = agrees and feats[best, 4] == 0
        verdict = "reuse" if top >= weights.reuse_at and agrees else "new" if top < weights.new_below else "triage"
        team = index.entries[best].name if best >= 0 else None
        if verdict == "triage":
            triage += 1
        elif verdict == "reuse":
            reuse_made += 1
            if gap["kind"] == "reuse":
                reused_reuse_gaps += 1
                if team == gap["team"]:
                    reuse_right += 1
                else:
                    wrong_team += 1
            else:
                false_reuse += 1
        elif gap["kind"] == "reuse":
            missed_unchecked += 1
    n = len(gaps) or 1
    return {
        "precision": reuse_right / reuse_made if reuse_made else 1.0,
        "recall": reuse_right / reuse_gaps if reuse_gaps else 0.0,
        "missed_unchecked": missed_unchecked / reuse_gaps if reuse_gaps else 0.0,
        "triage": triage / n,
        "team_accuracy": reuse_right / reused_reuse_gaps if reused_reuse_gaps else 1.0,
        "errors": {"missed_unchecked": missed_unchecked, "wrong_team": wrong_team, "reuse_should_be_new": false_reuse},
        "n": len(gaps),
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
    for skill, text, desc, name, oos in itertools.product(
        (0.3, 0.45, 0.6), (0.1, 0.2), (0.15, 0.25, 0.35), (0.1, 0.2), (0.6,)
    ):
        for sem, agree in itertools.product((0.2, 0.35) if semantic else (0.0,), (0.0, 0.02, 0.05)):
            grid.append(
                Weights(
                    skill=skill,
                    skill_text=text,
                    description=desc,
                    name=name,
                    out_of_scope=oos,
                    semantic=sem,
                    agree_at=agree,
                )
            )
    return grid


def _tops(index: MatchIndex, features: list[np.ndarray], gaps: list[dict], w: Weights) -> tuple[np.ndarray, ...]:
    """Per gap: the best score, whether the best team is the labelled one, whether its text agrees."""
    agrees = np.zeros(len(gaps), dtype=bool)
    tops, right = np.zeros(len(gaps)), np.zeros(len(gaps), dtype=bool)
    for i, (gap, feats) in enumerate(zip(gaps, features, strict=True)):
        scores = np.clip(feats @ w.vector(), 0.0, None)
        best = int(np.argmax(scores))
        tops[i], right[i] = scores[best], index.entries[best].name == gap["team"]
        agrees[i] = (feats[best, 6] >= w.agree_at or feats[best, 7] >= w.agree_skills) and feats[best, 4] == 0
    return tops, right, agrees


def choose(index: MatchIndex, features: list[np.ndarray], gaps: list[dict], semantic: bool) -> tuple[Weights, dict]:
    """The weights and thresholds with the fewest triaged gaps meeting the targets on ``gaps`` (or, when
    none does, the most precise with the fewest missed-unchecked)."""
    is_reuse = np.array([g["kind"] == "reuse" for g in gaps])
    best: tuple[tuple, Weights] | None = None
    for base in _grid(semantic):
        tops, right, agrees = _tops(index, features, gaps, base)
        ordered = np.unique(np.round(tops, 3))
        cuts = np.concatenate([ordered[:1], (ordered[1:] + ordered[:-1]) / 2])  # midway between scores
        if len(cuts) > 48:  # at most 48 candidate thresholds, spread evenly over the scores seen
            cuts = cuts[np.linspace(0, len(cuts) - 1, 48).round().astype(int)]
        for hi in cuts:
            reused = (tops >= hi) & agrees
            made = reused.sum()
            precision = (reused & right & is_reuse).sum() / made if made else 1.0
            for lo in cuts[cuts <= hi]:
                new = tops < lo
                missed = (new & is_reuse).sum() / max(1, is_reuse.sum())
                new &= ~reused
                triage = (~reused & ~new).sum() / len(gaps)
                meets = precision >= 0.95 and missed <= 0.05
                # Ties: the widest margins (midpoints between neighbouring scores would be better still).
                key = (meets, -triage if meets else precision - missed, float(lo - hi))
                if best is None or key > best[0]:
                    best = (key, base.model_copy(update={"reuse_at": float(hi), "new_below": float(lo)}))
    assert best is not None
    return best[1], evaluate(index, features, gaps, best[1])


def cross_validate(index: MatchIndex, features: list[np.ndarray], gaps: list[dict], semantic: bool) -> list[dict]:
    labels = [g["kind"] for g in gaps]
    folds = []
    for seed in (0, 1, 2):
        splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        for train, test in splitter.split(np.zeros(len(gaps)), labels):
            w, _ = choose(index, [features[i] for i in train], [gaps[i] for i in train], semantic)
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
    return f"{mean:.2f} ± {spread:.2f} (min {min(values):.2f}, max {max(values):.2f})"


def report_quality(
    entries: list[RegistryEntry], gaps: list[dict], embedder: Any, label: str, cv: bool, power: float | None = None
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
    folds = cross_validate(index, features, gaps, semantic=embedder is not None)
    print("5-fold CV x 3 seeds (held-out parts; weights chosen on the training parts):")
    for i, fold in enumerate(folds):
        w = fold["weights"]
        print(
            f"  fold {i:2d}: "
            + _line("", fold).strip()[:150]
            + f"  w=({w.skill},{w.skill_text},{w.description},{w.name},{w.semantic}) agree>={w.agree_at}"
            + f" at>={w.reuse_at:.3f} new<{w.new_below:.3f}"
        )
    for key in ("precision", "missed_unchecked", "triage", "team_accuracy"):
        print(f"  {key:<17} {_spread(folds, key)}")
    chosen, fig = choose(index, features, gaps, semantic=embedder is not None)
    chosen = chosen.model_copy(update={"known_power": shipped.known_power})
    print(f"chosen on the whole set: {chosen.model_dump()}")
    print(_line("  (in-sample)", fig))


def _shipped_semantic() -> Weights:
    from devops_automation.matcher import SEMANTIC_WEIGHTS

    return SEMANTIC_WEIGHTS


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


def floor_match(vectorizer: TfidfVectorizer, matrix: Any, skill_keys: list[str], gap: CapabilityGap) -> np.ndarray:
    """The same library work as one match, bare: transform, sparse product, fuzzy lookup, top 3."""
    query = vectorizer.transform([gap.description.lower() + " " + " ".join(gap.required_skills).lower()])
    scores = (matrix @ query.T).toarray().ravel()
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
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words="english")
        matrix = vectorizer.fit_transform([f"{e.name} {e.description} {' '.join(e.skills)}" for e in registry])
        keys = sorted({s for e in registry for s in e.skills})
        floor = []
        for gap in models:
            t0 = time.perf_counter()
            floor_match(vectorizer, matrix, keys, gap)
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
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--powers", default="", help="also cross-validate these known_power values, e.g. 0,0.5,1")
    args = parser.parse_args(argv)
    if not (args.eval_dir / "gaps.yaml").exists():
        print(f"no evaluation set at {args.eval_dir}", file=sys.stderr)
        return 2
    entries, gaps = load_set(args.eval_dir)
    powers = [float(p) for p in args.powers.split(",")] if args.powers else [None]
    for power in powers:
        report_quality(entries, gaps, None, "lexical (TF-IDF + skills + fuzzy), no LLM", cv=not args.no_cv, power=power)
    if args.embeddings:
        from devops_automation.embeddings import local_embedder

        report_quality(entries, gaps, local_embedder(None), "lexical + MiniLM embeddings, no LLM", cv=not args.no_cv)
    if not args.skip_scale:
        report_scale(entries, gaps, [int(s) for s in args.sizes.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
