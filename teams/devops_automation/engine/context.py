"""What the engine's steps work with: the shared, read-only dependencies and one run's own context."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..audit import Auditor
from ..drafting.base import Drafter, PRWriter, SpecReviser, TriageReader
from ..registry import Registry, RegistryCache
from ..settings import Settings
from ..store import Store

if TYPE_CHECKING:
    from ..forge.base import Forge
    from ..forge.codeowners import Reviewers
    from ..models import LLMUsage, TeamCreationRequest
    from ..target import Staged, TargetRepo


@dataclass(frozen=True)
class ProgressEvent:
    """One progress line of a run: ``step`` is the state being worked on (or ``track``, ``rollback``)."""

    run_id: str
    request_id: str
    step: str
    message: str


Progress = Callable[[ProgressEvent], None]


def _ignore(_event: ProgressEvent) -> None:
    return None


StepObserver = Callable[[str, float, "TeamCreationRequest", "LLMUsage"], None]
"""Called after each step as ``(step, seconds, request after the step, LLM usage the step added)``."""


@dataclass(frozen=True)
class Hooks:
    """What a long-running process adds to the engine: ``draining`` (set on SIGTERM: each run stops at
    its next saved state, which ``resume --pending`` or the next server start continues), ``on_step``
    (step timings, for metrics) and ``before_step`` (the server's intake gate). The CLI passes none."""

    draining: threading.Event | None = None
    on_step: StepObserver | None = None
    #: Called before each step, at a saved state (a server's intake gate: runs hold back while an
    #: acknowledgement is being made); it may block for a bounded time, never raises.
    before_step: Callable[[], object] | None = None

    @property
    def stopping(self) -> bool:
        return self.draining is not None and self.draining.is_set()


@dataclass(frozen=True)
class Deps:
    """Everything the steps share. Immutable and free of per-run state: a server calls the engine from
    many threads at once, each with its own :class:`RunContext`."""

    settings: Settings
    store: Store
    auditor: Auditor
    target: TargetRepo
    forge: Forge
    drafter: Drafter
    reviser: SpecReviser | None = None
    pr_writer: PRWriter | None = None
    hooks: Hooks = field(default_factory=Hooks)
    #: The registry revisions this process has parsed and indexed (one per ``teams/`` tree id); None:
    #: each run reads and indexes the registry itself.
    registries: RegistryCache | None = None
    #: Reads a triage case first (the LLM's gap analyst); None: a human triages every close case.
    triage_reader: TriageReader | None = None


@dataclass
class RunContext:
    """One run of one request: a stable ``run_id`` (in its audit rows and progress lines), the
    caller's progress callback, and what the run reads once (the registry: each read is a git fetch)."""

    request_id: str
    progress: Progress | None = None  # None: nobody listens
    #: False for a dry run: nothing is prepared for a publish (no commit is staged, not even a local one).
    publishing: bool = True
    run_id: str = field(default_factory=lambda: "run-" + secrets.token_hex(4))
    step: str = ""
    #: The commit the scaffold step built for the render it validated, for the publish step of this run
    #: to push without building it again (None: publish stages it itself).
    staged: Staged | None = None
    #: The CODEOWNERS reviewers of that commit's files, read at its base while the tests ran (None: the
    #: publish step's pull request reads them).
    reviewers: Reviewers | None = None
    _registry: Registry | None = None

    def __post_init__(self) -> None:
        if self.progress is None:
            self.progress = _ignore

    def say(self, message: str) -> None:
        assert self.progress is not None
        self.progress(ProgressEvent(self.run_id, self.request_id, self.step, message))

    def registry(self, deps: Deps) -> Registry:
        """The target repository's teams, read once per run."""
        if self._registry is None:
            cache = deps.registries
            if cache is None:
                cache = RegistryCache(deps.settings, size=1)
            revision, files = deps.target.team_files_unless(cache.known, lambda: _base_head(deps))
            # The fallback (the revision was evicted meanwhile) reads that revision's tree, not the base branch
            # as it is now: a cache entry always holds the content of its key.
            self._registry = cache.get(
                revision, lambda: files if files is not None else deps.target.team_files_of(revision)
            )
        return self._registry


def _base_head(deps: Deps) -> str | None:
    """The base branch's commit as the forge's API gives it (one audited request). Raises ForgeError."""
    base = deps.settings.base_branch
    with deps.auditor.action("forge.branch_head", base) as call:
        head = deps.forge.branch_head(base)
        call.result["commit"] = head
    return head
