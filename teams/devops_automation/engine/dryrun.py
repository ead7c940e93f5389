"""A dry run: analyse, draft, gate and scaffold (with validation) a gap exactly as a request would, and
show the diff that would be pushed, without a stored request, a branch, a pull request, a rate-limit
slot or a notification. The real steps run against a store that reads the real one and writes nothing;
only one audit row, that the dry run happened, is written."""

from __future__ import annotations

import dataclasses
import difflib
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..audit import Auditor
from ..errors import RenderInvalid
from ..models import ActorRef, CapabilityGap, RequestState, TeamCreationRequest, check_transition
from ..notify.events import EventKind
from ..scaffold.team_tests import warm_spare
from ..store import GENESIS_HASH, AuditRow, Store
from .context import Deps, Progress, RunContext
from .steps import STEPS, _render, render_dir, rendered_root

#: The states a dry run stops at: what would happen next needs a real branch, a human or time.
_STOPS = {
    RequestState.reuse_existing,
    RequestState.refused,
    RequestState.awaiting_approval,
    RequestState.scaffolded,
}
MAX_DIFF_LINES = 20_000


class ScratchStore(Store):
    """Reads the real store, writes nothing: saves only move the in-memory request, the rate-limit
    slot is checked but not taken."""

    def __init__(self, real: Store) -> None:
        super().__init__(real.engine)
        self._writers = real._writers

    def save_request(
        self,
        request: TeamCreationRequest,
        new_state: RequestState | None = None,
        *,
        event: EventKind | None = None,
    ) -> TeamCreationRequest:
        if new_state is not None:
            check_transition(request.state, new_state)
            request.state = new_state
        request.updated_at = datetime.now(UTC)
        return request

    def consume_slot(
        self, request_id: str, team_name: str, *, overridden: bool, check: Any = None, record: bool = True
    ) -> None:
        super().consume_slot(request_id, team_name, overridden=overridden, check=check, record=False)

    def release_slot(self, request_id: str) -> None:
        return None


class RecordingAuditor(Auditor):
    """Keeps what the steps would have audited in memory (shown in the result), writes nothing."""

    def __init__(self, real: Auditor) -> None:
        super().__init__(real.store, real.secrets)
        self.actions: list[str] = []

    def _write(self, request_id: str | None, action: str, phase: str, target: str, detail: dict[str, Any]) -> AuditRow:
        self.actions.append(f"{action} {phase} {target}".strip())
        return AuditRow(0, datetime.now(UTC), request_id, action, phase, target, "", GENESIS_HASH, GENESIS_HASH)


@dataclass
class DryRun:
    """What a dry run found. ``outcome``: the state the request would stop at (``scaffolded`` means it
    would be pushed and a pull request opened); ``diff``: the unified diff (git's new-file form) of
    what would be pushed; ``invalid``: validation errors when the render failed."""

    request: TeamCreationRequest
    outcome: str
    diff: str = ""
    invalid: list[str] = field(default_factory=list)
    would_audit: list[str] = field(default_factory=list)


def dry_run(deps: Deps, gap: CapabilityGap, *, requester: ActorRef | None, progress: Progress | None) -> DryRun:
    """Run ``gap`` through analyse, draft, gate and scaffold without writing anything but renders in a
    scratch directory (removed afterwards). Raises the steps' failures (LLM, forge) as they are."""
    auditor = RecordingAuditor(deps.auditor)
    scratch = dataclasses.replace(deps, store=ScratchStore(deps.store), auditor=auditor)
    request = TeamCreationRequest(id="req-dryrun-" + secrets.token_hex(4), gap=gap, requester=requester)
    ctx = RunContext(request.id, progress, publishing=False)  # no commit is staged, not even a local one
    result = DryRun(request=request, outcome="")
    try:
        while request.state in STEPS and request.state not in _STOPS:
            ctx.step = request.state.value
            try:
                request = STEPS[request.state](scratch, ctx, request)
            except RenderInvalid as invalid:
                result.invalid = invalid.errors
                break
        if request.state is RequestState.awaiting_approval and request.spec is not None:
            try:  # a human approval is all it lacks: show what it would push then
                request.files = _render(scratch, ctx, request)
            except RenderInvalid as invalid:
                result.invalid = invalid.errors
        if request.files and not result.invalid:
            result.diff = unified_diff(scratch, request)
    finally:
        shutil.rmtree(render_dir(deps, request), ignore_errors=True)
        warm_spare()
    if request.decision is not None and request.id in request.decision.remedy:
        # The remedy names this request's id, which nothing stores: a real request gets its own.
        remedy = request.decision.remedy.replace(request.id, "ID")
        request = request.model_copy(update={"decision": request.decision.model_copy(update={"remedy": remedy})})
    result.request, result.outcome = request, "invalid" if result.invalid else request.state.value
    result.would_audit = auditor.actions
    deps.auditor.event(
        "request.dry_run",
        gap.id or "",
        outcome=result.outcome,
        team=request.spec.name if request.spec else None,
        files=len(request.files),
        requesting_team=gap.requesting_team,
    )
    return result


def unified_diff(deps: Deps, request: TeamCreationRequest) -> str:
    """The rendered files as git shows new files (``diff --git a/P b/P``, ``new file mode``, ``--- /dev/null``),
    at most :data:`MAX_DIFF_LINES` lines."""
    root = rendered_root(deps, request)
    out: list[str] = []
    for path in sorted(request.files):
        text = (root / path).read_text(encoding="utf-8", errors="replace")
        out += [f"diff --git a/{path} b/{path}", "new file mode 100644"]
        body = difflib.unified_diff([], text.splitlines(), "/dev/null", f"b/{path}", lineterm="")
        out += list(body)
        if len(out) > MAX_DIFF_LINES:
            out = [*out[:MAX_DIFF_LINES], f"... diff cut at {MAX_DIFF_LINES} lines"]
            break
    return "\n".join(out) + "\n"
