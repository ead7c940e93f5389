"""The one interface every drafter implements, whether it asks a language model or not."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from ..models import CapabilityGap, TeamSpec


class DraftContext(BaseModel):
    """What a drafter may know besides the gap: names it must not reuse."""

    existing_teams: set[str] = set()
    reserved_names: set[str] = set()


class Drafter(Protocol):
    #: Shown in outputs so a reader knows whether a model or the offline rules wrote the spec.
    label: str

    def draft(self, gap: CapabilityGap, context: DraftContext) -> TeamSpec: ...
