"""Skills as people write them: one display form, one matching key, one slug.

A skill is kept as the person typed it (``FP&A``, ``C#``, ``Node.js``, ``A/B testing``) for display. The
matcher compares *keys*: NFKC, case-folded, single-spaced, ``react.js``/``reactjs`` folded to ``react``, a
last-word plural folded to its singular, and aliases mapped to one canonical term by a synonym table
(``k8s`` is ``kubernetes``). File and Python names use :func:`skill_slug`, a strict ``a-z0-9_`` slug.

The synonym table is YAML, ``{canonical: [alias, ...]}``: the shipped ``synonyms.yaml`` holds general
vocabulary only (abbreviations and spellings, never phrases from one gap); an operator's file
(``DEVOPS_CREW_SYNONYMS_FILE``) extends it and wins on conflicts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import yaml

DEFAULT_SYNONYMS_FILE = Path(__file__).resolve().parent / "synonyms.yaml"
#: What a skill may contain: letters and digits of any script, space and ``. + # / & _ - ' ( )``.
SKILL_CHARS = re.compile(r"^[^\W_][\w .+#/&'()\-]{0,59}$")
SKILL_CHARS_TEXT = "must be 1-60 characters: letters, digits, space and . + # / & _ - ' ( ), starting with one"
_JS_SUFFIX = re.compile(r"(?<=[a-z0-9])(?:\.js|js)$")
_SLUG_WORDS = {"#": " sharp ", "+": " plus ", "&": " and "}


def display_skill(value: str) -> str:
    """The skill as typed, NFKC-normalised and single-spaced (``" Node.js "`` -> ``"Node.js"``)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value)).strip()


def fold_plural(word: str) -> str:
    """A crude English singular: ``dashboards`` -> ``dashboard``, ``policies`` -> ``policy``; words
    ending in ``ss``, ``us``, ``is`` and words of three letters or fewer stay as they are."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1]


def base_key(value: str) -> str:
    """The spelling-insensitive form of a skill before synonyms: case-folded, single-spaced, ``.js``
    dropped, the last word singular (``"React.js"`` -> ``"react"``, ``"Smart Contracts"`` -> ``"smart contract"``)."""
    text = display_skill(value).casefold().strip(" .")
    text = re.sub(r"\s*([/&+#])\s*", r"\1", text)  # "ci / cd" -> "ci/cd", "r & d" -> "r&d"
    text = _JS_SUFFIX.sub("", text).strip(" .-")
    words = text.split(" ")
    words[-1] = fold_plural(words[-1])
    return " ".join(w for w in words if w)


def skill_slug(value: str, max_len: int = 40) -> str:
    """A strict ``a-z0-9_`` slug of a skill for file and Python names: ``C#`` -> ``c_sharp``,
    ``C++`` -> ``c_plus_plus``, ``R&D`` -> ``r_and_d``; cut at a word boundary, never mid-word."""
    text = display_skill(value).lower()
    for mark, word in _SLUG_WORDS.items():
        text = text.replace(mark, word)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    parts = [p for p in re.split(r"[^a-z0-9]+", text) if p]
    return join_words(parts, max_len)


def join_words(parts: Iterable[str], max_len: int = 40, sep: str = "_") -> str:
    """Whole words joined by ``sep`` while they fit in ``max_len`` characters (never cut mid-word)."""
    out = ""
    for part in parts:
        candidate = f"{out}{sep}{part}" if out else part
        if len(candidate) > max_len:
            break
        out = candidate
    return out


class Synonyms:
    """An alias -> canonical table over skill keys (see the module docstring for the file format)."""

    def __init__(self, table: Mapping[str, Iterable[str]] | None = None) -> None:
        self.canonical: dict[str, str] = {}
        for canonical, aliases in (table or {}).items():
            key = base_key(str(canonical))
            self.canonical[key] = key
            for alias in aliases or []:
                self.canonical[base_key(str(alias))] = key
        phrases = sorted((a for a in self.canonical if a != self.canonical[a]), key=len, reverse=True)
        self._phrase = (
            re.compile(r"(?<![\w.#+&/])(" + "|".join(re.escape(p) for p in phrases) + r")(?![\w#+&/])")
            if phrases
            else None
        )

    @classmethod
    def load(cls, extra: Path | None = None) -> Synonyms:
        """The shipped table, extended by ``extra`` (entries there win). Raises ValueError naming the
        file when it is not a ``{canonical: [aliases]}`` mapping."""
        return cls(_merged(DEFAULT_SYNONYMS_FILE, extra))

    def key(self, skill: str) -> str:
        """The canonical matching key of ``skill`` (``"K8s"`` -> ``"kubernetes"``)."""
        key = base_key(skill)
        return self.canonical.get(key, key)

    def expand(self, text: str) -> str:
        """``text`` as :func:`tokens`, space-joined, with the canonical term added after every alias it
        contains (``"our K8s clusters"`` -> ``"our k8s kubernetes cluster"``), for lexical retrieval."""
        joined = " ".join(tokens(text))
        if self._phrase is None:
            return joined
        return self._phrase.sub(lambda m: f"{m.group(1)} {self.canonical[m.group(1)]}", joined)


_TOKEN = re.compile(r"[^\W_][\w.+#&/'-]*")


def tokens(text: str) -> list[str]:
    """Words of ``text`` as the matcher compares them: NFKC, case-folded, ``.js`` dropped, plurals
    folded, trailing punctuation stripped (``"React.js dashboards,"`` -> ``["react", "dashboard"]``)."""
    found = []
    for word in _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()):
        word = _JS_SUFFIX.sub("", word.strip(".-'/&")).strip(".-'/&")
        if word:
            found.append(fold_plural(word))
    return found


@lru_cache(maxsize=8)
def _read_table(path: str, mtime: float) -> dict[str, list[str]]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"synonyms file {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, list | type(None)) for v in data.values()):
        raise ValueError(f"synonyms file {path}: must map each canonical term to a list of aliases")
    return {str(k): [str(a) for a in v or []] for k, v in data.items()}


def _merged(*paths: Path | None) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for path in paths:
        if path is None:
            continue
        for canonical, aliases in _read_table(str(path), Path(path).stat().st_mtime).items():
            table[canonical] = [*table.get(canonical, []), *aliases]
    return table
