"""After publishing: follow each pull request to merged or closed, auto-merge what policy allows, and
roll a merged team back through a revert pull request (never a force-push)."""

from __future__ import annotations

from pydantic import BaseModel

from .. import policy
from ..audit import audit_context
from ..errors import STEP_FAILURES, ActionRefused
from ..forge import forge_kind
from ..forge.base import PRContent, PullRequest
from ..models import ActorRef, RequestState, RiskLevel, TeamCreationRequest
from ..notify.events import EventKind
from .context import Deps, Progress, RunContext


class TrackResult(BaseModel):
    """What ``track`` did to one published request (README: JSON output)."""

    request_id: str
    pr_number: int
    before: str
    after: str
    note: str = ""


class Lifecycle:
    """``track`` and ``rollback`` over the shared :class:`Deps` (no per-run state on the object)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def track(self, *, progress: Progress | None = None) -> list[TrackResult]:
        """Refresh every published request from its pull request; one failing PR does not stop the rest."""
        results = self._track_rollbacks(progress)
        store = self.deps.store
        for request in store.list_requests(limit=10_000, states={RequestState.published}):
            ctx = RunContext(request.id, progress, step="track")
            with store.request_lock(request.id), audit_context(run=ctx.run_id):
                fresh = store.get_request(request.id)
                if fresh is None or fresh.state is not RequestState.published or not fresh.pr_number:
                    continue
                try:
                    results.append(self._track_one(ctx, fresh))
                except STEP_FAILURES as exc:
                    note = f"could not be tracked: {' '.join(str(exc).split())[:300]}"
                    ctx.say(note)
                    state, number = fresh.state.value, fresh.pr_number
                    results.append(
                        TrackResult(request_id=fresh.id, pr_number=number, before=state, after=state, note=note)
                    )
        return results

    def _track_rollbacks(self, progress: Progress | None) -> list[TrackResult]:
        """Merged requests with an open revert pull request: once it merges, the request is ``rolled_back``."""
        store, forge, results = self.deps.store, self.deps.forge, []
        for request in store.list_requests(limit=10_000, states={RequestState.merged}):
            if request.rollback_pr_number is None:
                continue
            ctx = RunContext(request.id, progress, step="track")
            with store.request_lock(request.id), audit_context(run=ctx.run_id):
                fresh = store.require_request(request.id)
                number = fresh.rollback_pr_number
                if fresh.state is not RequestState.merged or number is None:
                    continue
                result = TrackResult(request_id=fresh.id, pr_number=number, before="merged", after="merged")
                try:
                    pr = forge.get_pull_request(number)
                except STEP_FAILURES as exc:
                    result.note = f"revert could not be tracked: {' '.join(str(exc).split())[:300]}"
                    results.append(result)
                    continue
                if pr.merged:
                    self.deps.auditor.event(
                        "request.rolled_back", f"#{number}", request_id=fresh.id, sha=pr.merge_commit_sha
                    )
                    store.save_request(fresh, RequestState.rolled_back)
                    result.after, result.note = "rolled_back", f"revert #{number} merged"
                    ctx.say(f"revert pull request #{number} merged: the team is removed")
                elif pr.state == "closed":
                    result.note = f"revert #{number} was closed without merging; the team stays"
                else:
                    continue  # still under review: nothing to report
                results.append(result)
        return results

    def _track_one(self, ctx: RunContext, request: TeamCreationRequest) -> TrackResult:
        assert request.pr_number is not None
        forge, auditor = self.deps.forge, self.deps.auditor
        pr = forge.get_pull_request(request.pr_number)
        state = request.state.value
        result = TrackResult(request_id=request.id, pr_number=pr.number, before=state, after=state)
        if not pr.merged and pr.state == "open" and self._may_auto_merge(request):
            tampered = self._tampered(request, pr)
            verdict = forge.checks_verdict(pr.head_sha) if not tampered else None
            if tampered:
                result.note = f"auto-merge refused: {tampered}; a human must review"
                auditor.event("policy.auto_merge_refused", f"#{pr.number}", request_id=request.id, reason=tampered)
            elif verdict != "success":
                result.note = f"auto-merge waits: checks are {verdict}"
            else:
                with auditor.action(
                    "forge.merge_pull_request", f"#{pr.number}", request_id=request.id, sha=pr.head_sha
                ) as call:
                    merged_sha = forge.merge_pull_request(pr.number, pr.head_sha)
                    call.result.update(merged=True, sha=merged_sha)
                pr = forge.get_pull_request(request.pr_number)
                result.note = "auto-merged (low risk, checks passed)"
        store = self.deps.store
        if pr.merged:
            request.merge_commit_sha = pr.merge_commit_sha
            auditor.event("request.merged", f"#{pr.number}", request_id=request.id, sha=pr.merge_commit_sha)
            request = store.save_request(request, RequestState.merged)
        elif pr.state == "closed":
            request.error = f"pull request #{pr.number} was closed without merging"
            request.rejection_reason = request.error
            auditor.event("request.closed_unmerged", f"#{pr.number}", request_id=request.id)
            request = store.save_request(request, RequestState.rejected)
        result.after = request.state.value
        ctx.say(f"#{pr.number}: {result.before} -> {result.after} {result.note}".rstrip())
        return result

    def _tampered(self, request: TeamCreationRequest, pr: PullRequest) -> str | None:
        """Why the pull request is no longer exactly what the crew pushed, if it is not."""
        if pr.head_sha != request.commit_sha:
            return f"the branch moved to {pr.head_sha[:10]} after the crew pushed {str(request.commit_sha)[:10]}"
        changed = self.deps.forge.changed_files(pr.number)
        assert request.spec is not None
        try:
            policy.check_paths(changed, request.spec.name)
        except policy.PolicyViolation as violation:
            return violation.message
        if sorted(changed) != sorted(request.files):
            return "the pull request changes other files than the crew rendered"
        return None

    def _may_auto_merge(self, request: TeamCreationRequest) -> bool:
        return (
            self.deps.settings.auto_merge_low_risk
            and request.decision is not None
            and request.decision.risk_level is RiskLevel.low
            and request.override_approved_by is None
        )

    def rollback(self, request_id: str, *, by: ActorRef | str, progress: Progress | None = None) -> TeamCreationRequest:
        """Open (or find) the pull request that reverts a merged team. Raises NotFound, ActionRefused,
        and the step failures of git and the forge (nothing is stored half-done: run it again)."""
        actor = ActorRef.of(by)
        deps = self.deps
        ctx = RunContext(request_id, progress, step="rollback")
        with deps.store.request_lock(request_id), audit_context(run=ctx.run_id):
            request = deps.store.require_request(request_id)
            if request.state is not RequestState.merged or not request.merge_commit_sha or request.spec is None:
                raise ActionRefused(f"{request.id} is {request.state.value}; only merged teams can be rolled back")
            name = request.spec.name
            fresh = policy.branch_name(name, revert=True, request_id=request.id)
            request.rollback_branch = request.rollback_branch or fresh
            deps.auditor.event(
                "request.rollback",
                name,
                request_id=request.id,
                by=actor.id,
                channel=actor.channel,
                branch=request.rollback_branch,
            )
            deps.store.save_request(request)
            ctx.say(f"reverting {request.merge_commit_sha[:10]} on {request.rollback_branch}")
            deps.target.publish_revert(
                request_id=request.id,
                team_name=name,
                branch=request.rollback_branch,
                merge_sha=request.merge_commit_sha,
                message=f"Revert team {name}\n\nRequested by: {actor.id}\nTracking-Id: {request.id}\n",
            )
            merge_sha = request.merge_commit_sha
            content = PRContent(
                title=f"Revert team {name}",
                body=f"Rolls back team `{name}` (merged in {merge_sha}), requested by {actor.id}.\n\n"
                f"Tracking id: `{request.id}` · opened by devops-crew",
            )
            with deps.auditor.action("forge.open_pull_request", request.rollback_branch, request_id=request.id) as call:
                pr = deps.forge.ensure_pull_request(
                    head=request.rollback_branch,
                    base=deps.settings.base_branch,
                    compose=lambda: content,
                    labels=["automated", "rollback", "needs-review"],
                    changed_paths=[f"teams/{name}/team.yaml"],
                )
                call.result.update(number=pr.number, url=pr.url)
            opened = request.rollback_pr_number is None
            request.rollback_pr_number, request.rollback_pr_url = pr.number, pr.url
            request.pr_forge = forge_kind(deps.settings)
            return deps.store.save_request(request, event=EventKind.rollback_opened if opened else None)
