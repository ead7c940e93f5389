"""The state-machine runner: lock a request, run the step its state calls for until it must wait, and
record a failed step so that the next run resumes it.

The runner knows nothing of who asks (that is :mod:`devops_automation.service` and :mod:`.authz`): it
applies human decisions the service has already authorised, and keeps the request's own rules (which
state allows which decision).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import ValidationError

from ..audit import audit_context, redact
from ..errors import STEP_FAILURES, ActionRefused, validation_fields
from ..models import (
    OVERRIDABLE_BEFORE_GATE,
    POSSIBLE_REUSE,
    RATE_RULES,
    REJECTABLE,
    UNFINISHED,
    ActorRef,
    Approval,
    ApprovalKind,
    CapabilityGap,
    LLMUsage,
    RequestState,
    TeamCreationRequest,
)
from ..store import Store
from .context import Deps, Progress, RunContext
from .steps import STEPS

WAITING = {RequestState.refused, RequestState.awaiting_approval}


@dataclass
class Submission:
    request: TeamCreationRequest
    duplicate: bool


def describe_error(exc: Exception) -> str:
    """One line that says what went wrong, naming the fields of a validation error."""
    if isinstance(exc, ValidationError):
        return f"invalid {exc.title}: {validation_fields(exc)}"[:2000]
    text = " ".join(str(exc).split())
    return text[:2000] if text else type(exc).__name__


class Engine:
    """Drives requests through :data:`~.steps.STEPS`. Holds only shared, immutable :class:`Deps`;
    everything about one run lives in its :class:`RunContext`, so threads may share one engine."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @property
    def store(self) -> Store:
        return self.deps.store

    def get(self, request_id: str) -> TeamCreationRequest:
        """The stored request. Raises NotFound."""
        return self.deps.store.require_request(request_id)

    def submit(
        self, gap: CapabilityGap, *, requester: ActorRef | None = None, progress: Progress | None = None
    ) -> Submission:
        """Create the request for ``gap`` (or find the one that exists) and drive it as far as it goes."""
        ctx = RunContext("", progress)
        with audit_context(run=ctx.run_id):
            accepted = self.accept(gap, requester=requester)
        ctx.request_id = accepted.request.id
        if accepted.duplicate:
            ctx.say(f"gap {gap.id} already has request {ctx.request_id} ({accepted.request.state.value})")
        return Submission(self.run(ctx.request_id, progress=progress, ctx=ctx), duplicate=accepted.duplicate)

    def run(
        self, request_id: str, *, progress: Progress | None = None, ctx: RunContext | None = None
    ) -> TeamCreationRequest:
        """Drive the request as far as it can go now. Another process driving the same request makes
        this one wait, then continue from whatever state that one left. Raises NotFound."""
        from ..scaffold.team_tests import warm_spare

        ctx = ctx or RunContext(request_id, progress)
        try:
            with self.deps.store.request_lock(request_id), audit_context(run=ctx.run_id):
                return self._run(ctx, self.get(request_id))
        finally:
            if not self.deps.hooks.stopping:  # the next run's team-test child warms up after this run's PR
                warm_spare()

    def _run(self, ctx: RunContext, request: TeamCreationRequest) -> TeamCreationRequest:
        if request.state is RequestState.failed and request.resume_state is not None:
            ctx.step = request.resume_state.value
            ctx.say(f"resuming after failure at {request.resume_state.value}")
            request.error = None
            request = self.deps.store.save_request(request, request.resume_state)
        hooks = self.deps.hooks
        while request.state in STEPS:
            if hooks.before_step is not None and not hooks.stopping:
                hooks.before_step()
            if hooks.stopping:
                ctx.say(f"stopping at {request.state.value} (the process is shutting down); resume continues it")
                break
            before = request.state
            ctx.step = before.value
            started, spent_before = time.perf_counter(), request.llm_usage.model_copy()
            try:
                request = STEPS[before](self.deps, ctx, request)
            except STEP_FAILURES as exc:
                request = self._fail(ctx, request, before, exc)
                self._observe(before, started, request, spent_before)
                return request
            self._observe(before, started, request, spent_before)
            if request.state in WAITING:
                break  # a human or time has to act before the request can go on
        return request

    def _observe(self, step: RequestState, started: float, request: TeamCreationRequest, before: LLMUsage) -> None:
        observer = self.deps.hooks.on_step
        if observer is not None:
            now = request.llm_usage
            spent = LLMUsage(
                calls=now.calls - before.calls,
                prompt_tokens=now.prompt_tokens - before.prompt_tokens,
                completion_tokens=now.completion_tokens - before.completion_tokens,
                cost_usd=round(now.cost_usd - before.cost_usd, 6),
            )
            observer(step.value, time.perf_counter() - started, request, spent)

    def accept(self, gap: CapabilityGap, *, requester: ActorRef | None = None) -> Submission:
        """Create the request for ``gap`` (or find the one that exists) without running it: a server
        answers at once and drives it with :meth:`run` on a worker."""
        request, created = self.deps.store.create_request(
            gap, requester=requester, received=self.deps.auditor.request_received(gap)
        )
        return Submission(request, duplicate=not created)

    def _fail(
        self, ctx: RunContext, request: TeamCreationRequest, step: RequestState, exc: Exception
    ) -> TeamCreationRequest:
        request.error = redact(describe_error(exc), self.deps.auditor.secrets)
        spent = getattr(exc, "usage", None)  # a failed LLM step still cost tokens
        if isinstance(spent, LLMUsage):
            request.llm_usage = request.llm_usage + spent
        request.resume_state = step
        ctx.say(f"failed at {step.value}: {request.error}")
        self.deps.auditor.event("request.failed", step.value, request_id=request.id, error=request.error)
        return self.deps.store.save_request(request, RequestState.failed)

    def pending(self) -> list[TeamCreationRequest]:
        """Requests a scheduled run should retry: failed ones, rate-limited ones, and any a crash
        stopped between steps. Waiting-for-a-human and policy-refused names are left alone."""
        requests = self.deps.store.list_requests(limit=1000, states=set(UNFINISHED))
        return [
            r
            for r in reversed(requests)
            if r.state is not RequestState.refused or (r.decision and r.decision.rule in RATE_RULES)
        ]

    def approve(
        self,
        request_id: str,
        *,
        by: ActorRef | str,
        override: bool = False,
        reason: str = "",
        self_approval: bool = False,
        progress: Progress | None = None,
    ) -> TeamCreationRequest:
        """Apply a human approval the caller has authorised: the cost ceiling, or (``override``) the
        rate limit and cooldown; then drive the request on. Raises NotFound, ActionRefused."""
        actor = ActorRef.of(by)
        ctx = RunContext(request_id, progress)
        with self.deps.store.request_lock(request_id), audit_context(run=ctx.run_id):
            request = self.get(request_id)
            if override:
                rate_limited = (
                    request.state is RequestState.refused
                    and request.decision is not None
                    and request.decision.rule in RATE_RULES
                )
                if not rate_limited and request.state not in OVERRIDABLE_BEFORE_GATE:
                    rule = f" by rule {request.decision.rule}" if request.decision and request.decision.rule else ""
                    raise ActionRefused(
                        f"{request.id} is {request.state.value}{rule}; "
                        "an override only lifts the rate limit and cooldown"
                    )
                request.override_approved_by = actor.id
            elif request.state is not RequestState.awaiting_approval:
                rule = request.decision.rule if request.state is RequestState.refused and request.decision else None
                hint = ""
                if rule in RATE_RULES:
                    hint = f" (refused by rule {rule}: lift it with --override and a --reason)"
                elif rule == "previously-rejected":
                    hint = " (refused by rule previously-rejected: reopen it with --reconsider)"
                raise ActionRefused(f"{request.id} is {request.state.value}, not awaiting approval{hint}")
            elif request.decision is not None and request.decision.rule == POSSIBLE_REUSE:
                request.triage_decided_by = actor.id  # a new team after all; the cost ceiling still applies
            else:
                request.cost_approved_by = actor.id
            kind = (
                ApprovalKind.override
                if override
                else ApprovalKind.new_team
                if request.triage_decided_by == actor.id and request.cost_approved_by != actor.id
                else ApprovalKind.cost
            )
            request.approvals.append(Approval(by=actor, kind=kind, reason=reason, self_approval=self_approval))
            self.deps.auditor.event(
                "policy.human_approval",
                request.id,
                request_id=request.id,
                by=actor.id,
                channel=actor.channel,
                kind=kind.value,
                override=override,
                reason=reason,
                self_approval=self_approval,
            )
            self.deps.store.save_request(request)
        return self.run(request.id, ctx=ctx)

    def reconsider(
        self,
        request_id: str,
        *,
        by: ActorRef | str,
        reason: str = "",
        self_approval: bool = False,
        progress: Progress | None = None,
    ) -> TeamCreationRequest:
        """A human lifts the ``previously-rejected`` rule for this one request (the caller has
        authorised it), then the request goes through the gate again. Raises NotFound, ActionRefused."""
        actor = ActorRef.of(by)
        ctx = RunContext(request_id, progress)
        with self.deps.store.request_lock(request_id), audit_context(run=ctx.run_id):
            request = self.get(request_id)
            rule = request.decision.rule if request.decision else None
            if request.state is not RequestState.refused or rule != "previously-rejected":
                raise ActionRefused(f"{request.id} is {request.state.value}, not refused as previously rejected")
            request.reconsidered_by = actor.id
            request.approvals.append(
                Approval(by=actor, kind=ApprovalKind.reconsider, reason=reason, self_approval=self_approval)
            )
            self.deps.auditor.event(
                "policy.reconsidered",
                request.id,
                request_id=request.id,
                by=actor.id,
                channel=actor.channel,
                reason=reason,
                self_approval=self_approval,
            )
            self.deps.store.save_request(request)
        return self.run(request.id, ctx=ctx)
    def _reuse_instead(
        self, request: TeamCreationRequest, actor: ActorRef, team: str, reason: str
    ) -> TeamCreationRequest:
        if request.branch and request.commit_sha:
            raise ActionRefused(f"{request.id} already pushed {request.branch}; reject it, then file the gap again")
        registry = RunContext(request.id).registry(self.deps)
        if team not in registry.names():
            known = ", ".join(c.team for c in request.match.candidates) if request.match else ""
            hint = f" (closest: {known})" if known else ""
            raise ActionRefused(f"no registered team {team[:60]!r}{hint}")
        self.deps.auditor.event(
            "registry.reuse",
            team,
            request_id=request.id,
            by=actor.id,
            channel=actor.channel,
            reason=reason,
            triage=True,
        )
        request.matched_team = team
        scores = {c.team: c.score for c in request.match.candidates} if request.match else {}
        request.match_score = scores.get(team)
        request.triage_decided_by = actor.id
        request.decision = None
        self.deps.store.release_slot(request.id)
        return self.deps.store.save_request(request, RequestState.reuse_existing)

    def _withdraw_publication(self, request: TeamCreationRequest) -> bool:
        """A rejected request that already pushed (it failed at or after opening its pull request): close
        its open pull request and delete its branch, but only while the branch still holds exactly the
        crew's commit (nothing a human pushed is deleted). True when reviewers had already closed its pull
        request unmerged (their no, which a withdrawal must not erase). Raises ActionRefused if it was merged."""
        forge, auditor, branch = self.deps.forge, self.deps.auditor, request.branch
        assert branch is not None
        pr = forge.find_pull_request(branch)
        if pr is not None and pr.merged:
            raise ActionRefused(f"{request.id}'s pull request #{pr.number} is merged; `devops-crew track` records it")
        closed_by_reviewers = pr is not None and pr.state == "closed"
        if pr is not None and pr.state == "open":
            with auditor.action("forge.close_pull_request", f"#{pr.number}", request_id=request.id):
                forge.close_pull_request(pr.number)
        head = self.deps.target.remote_head(branch)
        if head is not None and head == request.commit_sha:
            with auditor.action("forge.delete_branch", branch, request_id=request.id, commit=head):
                forge.delete_branch(branch)
        elif head is not None:
            auditor.event("forge.branch_kept", branch, request_id=request.id, head=head, reason="moved by someone else")
        return closed_by_reviewers

    def reject(
        self,
        request_id: str,
        *,
        by: ActorRef | str,
        reason: str = "",
        use_team: str | None = None,
        withdrawn: bool = False,
    ) -> TeamCreationRequest:
        """A human's rejection of a waiting, refused or failed request; its rate-limit slot goes back.
        With ``use_team`` the gap goes to that registered team instead (``reuse_existing``: the human's
        triage). ``withdrawn``: the requester took their own request back (the caller's authorisation said
        so); it is recorded as such and not remembered as a rejection. Raises NotFound, ActionRefused (also
        for a ``use_team`` the registry does not have)."""
        actor = ActorRef.of(by)
        with self.deps.store.request_lock(request_id):
            request = self.get(request_id)
            if request.state not in REJECTABLE:
                raise ActionRefused(
                    f"{request.id} is {request.state.value}; only waiting, refused or failed requests can be rejected"
                )
            if use_team is not None:
                return self._reuse_instead(request, actor, use_team, reason)
            if request.branch and request.commit_sha and self._withdraw_publication(request):
                withdrawn = False  # reviewers closed its pull request first: that no is remembered
            self.deps.auditor.event(
                "policy.human_rejection",
                request.id,
                request_id=request.id,
                by=actor.id,
                channel=actor.channel,
                reason=reason,
                withdrawn=withdrawn,
            )
            who = f"withdrawn by {actor.id}, its requester" if withdrawn else f"rejected by {actor.id}"
            request.error = who + (f": {reason}" if reason else "")
            request.rejected_by, request.rejection_reason, request.withdrawn = actor, reason or None, withdrawn
            self.deps.store.release_slot(request.id)  # nothing was published: the slot goes back
            return self.deps.store.save_request(request, RequestState.rejected)
