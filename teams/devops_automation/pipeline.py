"""The one path every request takes: analyse, draft, gate, scaffold, publish.

Each step is a method over the stored request that ends by saving a new state, so a request can be
run again after a crash or a refusal and continues from the last good state: no second branch, no
second pull request. The policy gate sits between drafting and everything that writes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from github import GithubException
from pydantic import ValidationError
from requests import RequestException

from . import policy, pr_text
from .audit import Auditor, redact
from .drafting.base import DraftContext, Drafter, PRWriter, SpecReviser
from .forge.github import ForgeError, GitHubForge
from .models import (
    CapabilityGap,
    LLMUsage,
    Outcome,
    PolicyDecision,
    PRText,
    RequestState,
    TeamCreationRequest,
)
from .policy import PolicyViolation
from .registry import Registry
from .scaffold.render import RenderError
from .settings import Settings
from .store import NameTaken, Store
from .target import TargetRepo, TargetRepoError, commit_message

Progress = Callable[[str, str], None]

RATE_RULES = {"rate-limit", "cooldown"}
# What ends a step as `failed` (resumable) instead of crashing the process.
FAILURES = (
    TargetRepoError,
    ForgeError,
    GithubException,
    RequestException,
    PolicyViolation,
    OSError,
    ValueError,
    RenderError,
)
MAX_REVISIONS = 2
REJECTABLE = {RequestState.awaiting_approval, RequestState.refused, RequestState.failed}
IN_FLIGHT = {
    RequestState.awaiting_approval,
    RequestState.approved_by_policy,
    RequestState.scaffolded,
    RequestState.published,
}
OVERRIDABLE_BEFORE_GATE = {RequestState.received, RequestState.analysed, RequestState.drafted}


class RenderInvalid(ValueError):
    """The rendered team failed validation; ``errors`` has one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("the rendered team failed validation: " + "; ".join(errors))
        self.errors = errors


class RequestNotFound(LookupError):
    pass


class ActionRefused(RuntimeError):
    """A human command that does not apply to the request in its current state."""


@dataclass
class Submission:
    request: TeamCreationRequest
    duplicate: bool


def describe_error(exc: Exception) -> str:
    """One line that says what went wrong, naming the fields of a validation error."""
    if isinstance(exc, ValidationError):
        fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
        return f"invalid {exc.title}: {fields}"[:2000]
    text = " ".join(str(exc).split())
    return text[:2000] if text else type(exc).__name__


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        auditor: Auditor,
        target: TargetRepo,
        forge: GitHubForge,
        drafter: Drafter,
        progress: Progress | None = None,
        reviser: SpecReviser | None = None,
        pr_writer: PRWriter | None = None,
    ) -> None:
        self.settings, self.store, self.auditor = settings, store, auditor
        self.target, self.forge, self.drafter = target, forge, drafter
        self.reviser, self.pr_writer = reviser, pr_writer
        self._run_registry: Registry | None = None  # read once per run: each read is a git fetch
        self.progress = progress or (lambda _rid, _msg: None)

    # -- entry points -------------------------------------------------------------------------
    def submit(self, gap: CapabilityGap) -> Submission:
        """Create the request for ``gap`` (or find the one that exists) and drive it as far as it goes."""
        request, created = self.store.create_request(gap)
        if created:
            self.auditor.event(
                "request.received", gap.id or "", request_id=request.id, requesting_team=gap.requesting_team
            )
        else:
            self.progress(request.id, f"gap {gap.id} already has request {request.id} ({request.state.value})")
        return Submission(self.run(request.id), duplicate=not created)

    def get(self, request_id: str) -> TeamCreationRequest:
        request = self.store.get_request(request_id)
        if request is None:
            raise RequestNotFound(f"no request {request_id!r}; `devops-crew status` lists them")
        return request

    def run(self, request_id: str) -> TeamCreationRequest:
        """Drive the request as far as it can go now. Another process driving the same request
        makes this one wait, then continue from whatever state that one left."""
        with self.store.request_lock(request_id):
            return self._run(self.get(request_id))

    def _run(self, request: TeamCreationRequest) -> TeamCreationRequest:
        self._run_registry = None
        steps: dict[RequestState, Callable[[TeamCreationRequest], TeamCreationRequest]] = {
            RequestState.received: self._analyse,
            RequestState.analysed: self._draft,
            RequestState.drafted: self._gate,
            RequestState.refused: self._gate,
            RequestState.awaiting_approval: self._gate,
            RequestState.approved_by_policy: self._scaffold,
            RequestState.scaffolded: self._publish,
        }
        if request.state is RequestState.failed and request.resume_state is not None:
            self.progress(request.id, f"resuming after failure at {request.resume_state.value}")
            request.error = None
            request = self.store.save_request(request, request.resume_state)
        while request.state in steps:
            before = request.state
            try:
                request = steps[request.state](request)
            except FAILURES as exc:
                return self._fail(request, before, exc)
            if request.state in (RequestState.refused, RequestState.awaiting_approval):
                break  # a human or time has to act before the request can go on
        return request

    def pending(self) -> list[TeamCreationRequest]:
        """Requests a scheduled run should retry: failed ones, rate-limited ones, and any a crash
        stopped between steps. Waiting-for-a-human and policy-refused names are left alone."""
        unfinished = {
            RequestState.received,
            RequestState.analysed,
            RequestState.drafted,
            RequestState.approved_by_policy,
            RequestState.scaffolded,
            RequestState.failed,
            RequestState.refused,
        }
        requests = self.store.list_requests(limit=1000, states=unfinished)
        return [
            r
            for r in reversed(requests)
            if r.state is not RequestState.refused or (r.decision and r.decision.rule in RATE_RULES)
        ]

    def approve(self, request_id: str, *, by: str, override: bool = False) -> TeamCreationRequest:
        """A human's approval: the cost ceiling, or (``override``) the rate limit and cooldown."""
        with self.store.request_lock(request_id):
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
                request.override_approved_by = by
            else:
                if request.state is not RequestState.awaiting_approval:
                    raise ActionRefused(f"{request.id} is {request.state.value}, not awaiting approval")
                request.cost_approved_by = by
            self.auditor.event("policy.human_approval", request.id, request_id=request.id, by=by, override=override)
            self.store.save_request(request)
        return self.run(request.id)

    def reject(self, request_id: str, *, by: str, reason: str = "") -> TeamCreationRequest:
        with self.store.request_lock(request_id):
            request = self.get(request_id)
            if request.state not in REJECTABLE:
                raise ActionRefused(
                    f"{request.id} is {request.state.value}; only waiting, refused or failed requests can be rejected"
                )
            self.auditor.event("policy.human_rejection", request.id, request_id=request.id, by=by, reason=reason)
            request.error = f"rejected by {by}" + (f": {reason}" if reason else "")
            self.store.release_slot(request.id)  # nothing was published: the slot goes back
            return self.store.save_request(request, RequestState.rejected)

    # -- steps --------------------------------------------------------------------------------
    def _registry(self) -> Registry:
        """The target repository's teams, read once per run of a request (a read is a git fetch)."""
        if self._run_registry is None:
            self._run_registry = Registry.from_yaml_files(self.target.team_files())
        return self._run_registry

    def _analyse(self, request: TeamCreationRequest) -> TeamCreationRequest:
        self.progress(request.id, "analysing: matching the gap against the registry")
        ranked = self._registry().rank(request.gap)
        if ranked:
            request.matched_team, request.match_score = ranked[0].team, ranked[0].score
        return self.store.save_request(request, RequestState.analysed)

    def _draft(self, request: TeamCreationRequest) -> TeamCreationRequest:
        if request.matched_team and (request.match_score or 0) >= self.settings.reuse_threshold:
            self.progress(request.id, f"reusing existing team {request.matched_team} (score {request.match_score})")
            self.auditor.event("registry.reuse", request.matched_team, request_id=request.id, score=request.match_score)
            return self.store.save_request(request, RequestState.reuse_existing)
        self.progress(request.id, f"drafting a team spec with the {self.drafter.label}")
        context = DraftContext(existing_teams=self._registry().names(), reserved_names=set(policy.RESERVED_NAMES))
        drafted = self.drafter.draft(request.gap, context)
        request.spec, request.drafter = drafted.spec, self.drafter.label
        request.llm_usage = request.llm_usage + drafted.usage
        return self.store.save_request(request, RequestState.drafted)

    def _gate(self, request: TeamCreationRequest) -> TeamCreationRequest:
        spec = request.spec
        assert spec is not None
        self.progress(request.id, f"policy gate for team {spec.name}")
        try:
            policy.check_team_name(spec.name, self._registry().names())
            self._check_not_in_flight(request)
        except PolicyViolation as violation:
            return self._refuse(request, violation.decision())
        waiting = policy.cost_decision(spec, self.settings.monthly_cost_ceiling_usd, request.cost_approved_by)
        if waiting is not None:
            request.decision = waiting
            self.auditor.event("policy.needs_approval", spec.name, request_id=request.id, rule=waiting.rule)
            return self.store.save_request(request, RequestState.awaiting_approval)
        return self._approve_gate(request)

    def _check_not_in_flight(self, request: TeamCreationRequest) -> None:
        """Two open requests may not propose the same new team folder (checked again, atomically,
        when the rate-limit slot is taken)."""
        assert request.spec is not None
        for other in self.store.list_requests(limit=10_000, states=IN_FLIGHT):
            if other.id != request.id and other.spec is not None and other.spec.name == request.spec.name:
                raise self._name_in_flight(other.id, request.spec.name, other.state.value)

    @staticmethod
    def _name_in_flight(holder: str, name: str, state: str) -> PolicyViolation:
        return PolicyViolation(
            "existing-team",
            f"request {holder} already proposes teams/{name}/ ({state})",
            "Wait until its pull request is merged or closed, or propose another name.",
        )

    def _approve_gate(self, request: TeamCreationRequest) -> TeamCreationRequest:
        """Take a rate-limit slot (or the human override) and fix the branch name."""
        spec = request.spec
        assert spec is not None
        overridden = request.override_approved_by is not None

        def check(ledger: list) -> None:
            if not overridden:
                policy.check_rate(
                    ledger, limit=self.settings.rate_limit_per_day, cooldown_seconds=self.settings.cooldown_seconds
                )

        try:
            try:
                self.store.consume_slot(request.id, spec.name, overridden=overridden, check=check)
            except NameTaken as taken:
                raise self._name_in_flight(taken.holder, spec.name, "being proposed") from taken
        except PolicyViolation as violation:
            return self._refuse(
                request, violation.decision(policy.risk_level(spec, self.settings.monthly_cost_ceiling_usd))
            )
        risk = policy.RiskLevel.high if overridden else policy.risk_level(spec, self.settings.monthly_cost_ceiling_usd)
        request.decision = PolicyDecision(outcome=Outcome.approved, message="all policy rules passed", risk_level=risk)
        request.branch = request.branch or policy.branch_name(spec.name)
        self.auditor.event(
            "policy.approved",
            spec.name,
            request_id=request.id,
            risk=risk.value,
            branch=request.branch,
            override_by=request.override_approved_by,
        )
        return self.store.save_request(request, RequestState.approved_by_policy)

    def _refuse(self, request: TeamCreationRequest, decision: PolicyDecision) -> TeamCreationRequest:
        request.decision = decision
        self.progress(request.id, f"refused by policy ({decision.rule}): {decision.message}")
        self.auditor.event(
            "policy.refused",
            request.spec.name if request.spec else "",
            request_id=request.id,
            rule=decision.rule,
            message=decision.message,
        )
        return self.store.save_request(request, RequestState.refused)

    def render_dir(self, request: TeamCreationRequest) -> Path:
        return self.settings.home / "renders" / request.id

    def _render(self, request: TeamCreationRequest) -> list[str]:
        from .scaffold.render import render_team
        from .scaffold.validate import validate_render

        spec = request.spec
        assert spec is not None
        dest = self.render_dir(request)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        self.progress(request.id, f"rendering teams/{spec.name}/ with cookiecutter")
        rendered = render_team(spec, request.gap, dest, owner=request.gap.requesting_team or "platform-team")
        files = policy.check_paths(rendered.files, spec.name)
        if self.settings.validate_render:
            self.progress(request.id, f"validating {len(files)} rendered files")
            report = validate_render(rendered, spec, kubernetes_version=self.settings.kubernetes_version)
            if not report.ok:
                raise RenderInvalid(report.errors)
        return files

    def rendered_root(self, request: TeamCreationRequest) -> Path:
        spec = request.spec
        assert spec is not None
        return self.render_dir(request) / spec.name

    def _scaffold(self, request: TeamCreationRequest) -> TeamCreationRequest:
        while True:
            try:
                request.files = self._render(request)
                return self.store.save_request(request, RequestState.scaffolded)
            except RenderInvalid as invalid:
                if self.reviser is None or request.revisions >= MAX_REVISIONS:
                    raise
                self._revise(request, invalid.errors)

    def _revise(self, request: TeamCreationRequest, errors: list[str]) -> None:
        """Let the reviser fix a spec whose render failed; the result is held to the approved name
        and to the cost ceiling again, in code."""
        spec = request.spec
        assert spec is not None
        request.revisions += 1
        self.progress(request.id, f"validation failed; revision {request.revisions} of {MAX_REVISIONS}")
        revised = self.reviser.revise(request.gap, spec, errors)  # type: ignore[union-attr]
        request.llm_usage = request.llm_usage + revised.usage
        if revised.spec.name != spec.name:
            raise PolicyViolation("team-name", f"a revision may not rename the approved team {spec.name!r}")
        ceiling = self.settings.monthly_cost_ceiling_usd
        if policy.cost_decision(revised.spec, ceiling, request.cost_approved_by):
            raise PolicyViolation("cost-ceiling", "the revised team costs more than the ceiling allows")
        if request.cost_approved_by and revised.spec.monthly_cost_usd > max(spec.monthly_cost_usd, ceiling):
            raise PolicyViolation("cost-ceiling", "the revised team costs more than the human approved")
        self.auditor.event("spec.revised", spec.name, request_id=request.id, errors=errors[:10])
        request.spec = revised.spec
        if request.decision is not None and request.override_approved_by is None:  # labels, draft, auto-merge
            request.decision.risk_level = policy.risk_level(revised.spec, ceiling)
        self.store.save_request(request)

    def _publish(self, request: TeamCreationRequest) -> TeamCreationRequest:
        spec, branch = request.spec, request.branch
        assert spec is not None and branch is not None
        if not self.rendered_root(request).exists():  # lost after a crash: render again, identically
            request.files = self._render(request)
        self.progress(request.id, f"committing {len(request.files)} files on {branch} and pushing")
        published = self.target.publish_branch(
            gap_id=request.gap.id,
            request_id=request.id,
            team_name=spec.name,
            branch=branch,
            rendered_root=self.rendered_root(request),
            files=request.files,
            message=commit_message(spec.name, request.gap.id, request.id),
        )
        if published.branch != branch:  # published by another process or installation: reuse it
            self.auditor.event("publish.adopt_branch", published.branch, request_id=request.id, instead_of=branch)
            request.branch = branch = published.branch
        request.commit_sha = published.commit
        self.store.save_request(request)
        self.progress(request.id, f"opening the pull request on the {self.forge.label}")
        with self.auditor.action("forge.open_pull_request", branch, request_id=request.id) as call:
            pr = self.forge.find_pull_request(branch)
            if pr is not None:  # opened before a crash: make sure labels and reviewers are there too
                found = self.forge.get_pull(pr.number)
                pr.warnings = self.forge.decorate(
                    found,
                    pr_text.labels(request.decision),
                    self.forge.reviewers(request.files, self.settings.base_branch),
                )
            else:
                text = self._pr_text(request)
                pr = self.forge.open_pull_request(
                    head=branch,
                    base=self.settings.base_branch,
                    title=text.title,
                    body=pr_text.body(
                        request, spec, request.files, request.drafter or self.drafter.label, summary=text.summary
                    ),
                    labels=pr_text.labels(request.decision),
                    draft=request.decision is not None and request.decision.risk_level is policy.RiskLevel.high,
                    changed_paths=request.files,
                )
            call.result.update(number=pr.number, url=pr.url, created=pr.created, warnings=pr.warnings)
        request.pr_number, request.pr_url = pr.number, pr.url
        request = self.store.save_request(request, RequestState.published)
        shutil.rmtree(self.render_dir(request), ignore_errors=True)  # the branch holds it now
        return request

    def _pr_text(self, request: TeamCreationRequest) -> PRText:
        spec = request.spec
        assert spec is not None
        if self.pr_writer is None:
            return PRText(title=pr_text.title(spec, request))
        text, usage = self.pr_writer.write(request, spec, request.files)
        request.llm_usage = request.llm_usage + usage
        self.store.save_request(request)
        return text

    def _fail(self, request: TeamCreationRequest, step: RequestState, exc: Exception) -> TeamCreationRequest:
        request.error = redact(describe_error(exc), self.auditor.secrets)
        spent = getattr(exc, "usage", None)  # a failed LLM step still cost tokens
        if isinstance(spent, LLMUsage):
            request.llm_usage = request.llm_usage + spent
        request.resume_state = step
        self.progress(request.id, f"failed at {step.value}: {request.error}")
        self.auditor.event("request.failed", step.value, request_id=request.id, error=request.error)
        return self.store.save_request(request, RequestState.failed)
