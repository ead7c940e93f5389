"""What the PR author wrote, checked before it is published; the code-written text when it fails.

A tiny model once gave up with "I'm sorry, but I can't provide a final answer without using any tools…" and
that sentence was published as the PR's summary (issue 15). So the model's title and summary are a
:class:`PRDraft`: bounded in length and lines, not empty, not a refusal or an apology, not talk about tools or
answers. A draft that fails (or a PR author that never called its tool) is replaced by :func:`code_text`,
whose heading says code wrote it and why.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, ValidationError, field_validator

from ..models import PRText, TeamCreationRequest, TeamSpec
from ..pr_text import title as default_title

AGENT = "the PR author agent"
MAX_SUMMARY_LINES = 12
#: Phrases of a model that refuses, apologises or talks about its own turn instead of the team.
REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|sorry,|i apologi[sz]e|apologies|i can(?:no|')t|i am unable|i'?m unable|"
    r"i'?m not able|i am not able|unable to (?:provide|help|assist|comply)|as an ai|language model|"
    r"final answer|without (?:using )?(?:any )?tools?|tool call|i cannot)\b",
    re.IGNORECASE,
)


class PRDraft(BaseModel):
    """The PR author's text, already cleaned (:func:`~.components.clean_title`, ``clean_summary``)."""

    title: str = Field(min_length=8, max_length=120)
    summary: str = Field(min_length=20, max_length=2000)

    @field_validator("title", "summary")
    @classmethod
    def _not_a_refusal(cls, value: str) -> str:
        if REFUSAL.search(value):
            raise ValueError("it reads as a refusal or an apology, not as a description of the team")
        if sum(ch.isalpha() for ch in value) < len(value) / 3:
            raise ValueError("it is mostly not words")
        return value

    @field_validator("summary")
    @classmethod
    def _bounded_lines(cls, value: str) -> str:
        if len([line for line in value.splitlines() if line.strip()]) > MAX_SUMMARY_LINES:
            raise ValueError(f"it has more than {MAX_SUMMARY_LINES} lines")
        return value


def check(title: str, summary: str) -> PRText | str:
    """The model's text as a :class:`PRText`, or the reason (one line, written by code) it is refused."""
    try:
        draft = PRDraft(title=title, summary=summary)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"its {first['loc'][0]} failed validation: {first['msg'].removeprefix('Value error, ')}"
    return PRText(title=draft.title, summary=draft.summary, summary_by=AGENT)


def code_text(spec: TeamSpec, request: TeamCreationRequest, reason: str) -> PRText:
    """Title and summary written by code from the approved spec; ``summary_by`` says so and why."""
    manager = next((a.role for a in spec.agents if a.is_manager), "none")
    summary = (
        f"Adds the {spec.department.value} team `{spec.name}`: {len(spec.agents)} agents (manager `{manager}`) "
        f"and {len(spec.tasks)} tasks, drafted for capability gap `{request.gap.id}`. "
        "The gap, the agents and the cost are below."
    )
    return PRText(title=default_title(spec, request), summary=summary, summary_by=f"code, because {reason}")
