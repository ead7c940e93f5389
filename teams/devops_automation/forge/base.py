"""What the pipeline needs from a forge (GitHub, the local forge, or the store-backed stand-in)."""

from __future__ import annotations

from typing import Protocol

from ..models import PullRequestRef


class Forge(Protocol):
    label: str

    def find_pull_request(self, head: str) -> PullRequestRef | None:
        """The pull request whose head is ``head``, if one was opened already."""

    def open_pull_request(
        self, *, head: str, base: str, title: str, body: str, labels: list[str], draft: bool = False
    ) -> PullRequestRef:
        """Open it; if one exists for ``head`` already, return that one with ``created=False``."""
