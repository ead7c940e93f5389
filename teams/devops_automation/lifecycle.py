"""After publishing: follow each pull request to merged or closed, auto-merge what policy allows,
and roll a merged team back through a revert pull request (never a force-push)."""

from __future__ import annotations

from typing import Any

from github import GithubException
from pydantic import BaseModel
from requests import RequestException

from . import policy
from .audit import Auditor
from .forge.github import ForgeError, GitHubForge
from .models import RequestState, RiskLevel, TeamCreationRequest
from .pipeline import ActionRefused, Progress, RequestNotFound
from .settings import Settings
from .store import Store
from .target import TargetRepo


class TrackResult(BaseModel):
    request_id: str
    pr_number: int
    before: str
    after: str
    note: str = ""


class Lifecycle:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        auditor: Auditor,
        forge: GitHubForge,
        target: TargetRepo,
        progress: Progress | None = None,
    ) -> None:
        self.settings, self.store, self.auditor = settings, store, auditor
        self.forge, self.target = forge, target
        self.progress = progress or (lambda _rid, _msg: None)

    def track(self) -> list[TrackResult]:
        """Refresh every published request from its pull request."""
        results = []
        for request in self.store.list_requests(limit=10_000, states={RequestState.published}):
            with self.store.request_lock(request.id):
                fresh = self.store.get_request(request.id)
                if fresh is not None and fresh.state is RequestState.published and fresh.pr_number:
                    try:
                        results.append(self._track_one(fresh))
                    except (GithubException, RequestException, ForgeError) as exc:  # one PR must not stop the rest
                        note = f"could not be tracked: {' '.join(str(exc).split())[:300]}"
                        self.progress(fresh.id, note)
                        results.append(
                            TrackResult(
                                request_id=fresh.id,
                                pr_number=fresh.pr_number,
                                before=fresh.state.value,
                                after=fresh.state.value,
                                note=note,
                            )
                        )
        return results

    def _track_one(self, request: TeamCreationRequest) -> TrackResult:
        assert request.pr_number is not None
        pr = self.forge.get_pull(request.pr_number)
        result = TrackResult(
            request_id=request.id, pr_number=pr.number, before=request.state.value, after=request.state.value
        )
        if not pr.merged and pr.state == "open" and self._may_auto_merge(request):
            status = self.forge.checks_state(pr.head.sha)
            tampered = self._tampered(request, pr)
            if tampered:
                result.note = f"auto-merge refused: {tampered}; a human must review"
                self.auditor.event("policy.auto_merge_refused", f"#{pr.number}", request_id=request.id, reason=tampered)
            elif status != "success":
                result.note = f"auto-merge waits: checks are {status}"
            else:
                with self.auditor.action(
                    "forge.merge_pull_request", f"#{pr.number}", request_id=request.id, sha=pr.head.sha
                ) as call:
                    merged = self.forge.call(lambda: pr.merge(merge_method="merge", sha=pr.head.sha))
                    call.result.update(merged=merged.merged, sha=merged.sha)
                pr = self.forge.get_pull(request.pr_number)
                result.note = "auto-merged (low risk, checks passed)"
        if pr.merged:
            request.merge_commit_sha = pr.merge_commit_sha
            self.auditor.event("request.merged", f"#{pr.number}", request_id=request.id, sha=pr.merge_commit_sha)
            request = self.store.save_request(request, RequestState.merged)
        elif pr.state == "closed":
            request.error = f"pull request #{pr.number} was closed without merging"
            self.auditor.event("request.closed_unmerged", f"#{pr.number}", request_id=request.id)
            request = self.store.save_request(request, RequestState.rejected)
        result.after = request.state.value
        self.progress(request.id, f"#{pr.number}: {result.before} -> {result.after} {result.note}".rstrip())
        return result

    def _tampered(self, request: TeamCreationRequest, pr: Any) -> str | None:
        """Why the pull request is no longer exactly what the crew pushed, if it is not."""
        if pr.head.sha != request.commit_sha:
            return f"the branch moved to {pr.head.sha[:10]} after the crew pushed {str(request.commit_sha)[:10]}"
        changed = [f.filename for f in self.forge.call(lambda: list(pr.get_files()))]
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
            self.settings.auto_merge_low_risk
            and request.decision is not None
            and request.decision.risk_level is RiskLevel.low
            and request.override_approved_by is None
        )

    def rollback(self, request_id: str, *, by: str) -> TeamCreationRequest:
        """Open (or find) the pull request that reverts a merged team."""
        with self.store.request_lock(request_id):
            request = self.store.get_request(request_id)
            if request is None:
                raise RequestNotFound(f"no request {request_id!r}; `devops-crew status` lists them")
            if request.state is not RequestState.merged or not request.merge_commit_sha or request.spec is None:
                raise ActionRefused(f"{request.id} is {request.state.value}; only merged teams can be rolled back")
            name = request.spec.name
            request.rollback_branch = request.rollback_branch or policy.branch_name(name, revert=True)
            self.auditor.event("request.rollback", name, request_id=request.id, by=by, branch=request.rollback_branch)
            self.store.save_request(request)
            self.progress(request.id, f"reverting {request.merge_commit_sha[:10]} on {request.rollback_branch}")
            self.target.publish_revert(
                request_id=request.id,
                team_name=name,
                branch=request.rollback_branch,
                merge_sha=request.merge_commit_sha,
                message=f"Revert team {name}\n\nRequested by: {by}\nTracking-Id: {request.id}\n",
            )
            with self.auditor.action("forge.open_pull_request", request.rollback_branch, request_id=request.id) as call:
                pr = self.forge.find_pull_request(request.rollback_branch) or self.forge.open_pull_request(
                    head=request.rollback_branch,
                    base=self.settings.base_branch,
                    title=f"Revert team {name}",
                    body=f"Rolls back team `{name}` (merged in {request.merge_commit_sha}), requested by {by}.\n\n"
                    f"Tracking id: `{request.id}` · opened by devops-crew",
                    labels=["automated", "rollback", "needs-review"],
                    changed_paths=[f"teams/{name}/team.yaml"],
                )
                call.result.update(number=pr.number, url=pr.url)
            request.rollback_pr_number, request.rollback_pr_url = pr.number, pr.url
            return self.store.save_request(request)
