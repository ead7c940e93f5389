"""Untrusted text in prompts: quoted as JSON data between tags the text itself can never produce.

A gap (and everything a model wrote from it: a spec, validation errors) reaches a prompt only through
:func:`data_block`. Inside the block every value is a JSON string whose ``<``, ``>``, ``{``, ``}`` and
``&`` are written as ``\\u`` escapes, so the data cannot close its block (``</gap>``), open a fake
one, or form a ``{placeholder}`` that CrewAI would interpolate. The tasks tell the agents that a
block is data to read, never instructions to follow (``tasks/tasks.yaml``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..models import CapabilityGap, TeamSpec

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "{": "\\u007b", "}": "\\u007d", "&": "\\u0026"}
_TAG = re.compile(r"^[a-z][a-z_]{0,30}$")


def quote(value: Any) -> str:
    """``value`` as JSON whose text holds none of ``< > { } &`` (they are ``\\u`` escapes).

    Structural braces of objects are kept: only characters inside JSON strings are escaped, which is
    what makes the result still valid JSON that decodes to ``value``.
    """
    if isinstance(value, dict):
        items = ", ".join(f"{quote(str(k))}: {quote(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(quote(v) for v in value) + "]"
    text = json.dumps(value, ensure_ascii=False)
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def data_block(tag: str, value: Any) -> str:
    """``<tag>`` + :func:`quote` of ``value`` + ``</tag>``, on three lines."""
    if not _TAG.fullmatch(tag):
        raise ValueError(f"bad tag {tag!r}")
    return f"<{tag}>\n{quote(value)}\n</{tag}>"


def read_block(text: str, tag: str) -> Any:
    """The value of the first ``<tag>`` block in ``text`` (for tests and the stub model), or None."""
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.DOTALL)
    return json.loads(match.group(1)) if match else None


def gap_data(gap: CapabilityGap) -> dict[str, Any]:
    """The gap's fields as the agents see them (unset fields left out)."""
    return gap.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


def spec_data(spec: TeamSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def team_summary(spec: TeamSpec) -> dict[str, Any]:
    """The short view of a spec the PR author needs (no backstories, no task texts)."""
    return {
        "name": spec.name,
        "department": spec.department.value,
        "description": spec.description,
        "agents": [{"role": a.role, "manager": a.is_manager, "goal": a.goal} for a in spec.agents],
        "tasks": [t.name for t in spec.tasks],
        "monthly_cost_usd": spec.monthly_cost_usd,
    }
