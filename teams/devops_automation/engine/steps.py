"""The steps of the one path: analyse, draft, gate, scaffold, publish.

Each step is a function ``step(deps, ctx, request) -> request`` that ends by saving a new state, so a
request can be run again after a crash or a refusal and continues from the last good state. The policy
gate sits between drafting and everything that writes. A step raises only
:data:`~devops_automation.errors.STEP_FAILURES` on purpose (the runner records them as ``failed``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import policy, pr_text
from ..drafting.base import DraftContext, validated_choice
from ..drafting.quarantine import quarantine
from ..errors import ForgeError, GitError, PolicyViolation, RenderInvalid
from ..forge import forge_kind
from ..forge.base import PRContent
from ..models import (
    IN_FLIGHT,
    POSSIBLE_REUSE,
    MatchCandidate,
    MatchSummary,
    Outcome,
    PolicyDecision,
    PRText,
    RequestState,
    RiskLevel,
    TeamCreationRequest,
)
from ..store import NameTaken
from ..target import BranchTaken, Published, Staged, commit_message
from ..team_cards import card_url
from .context import Deps, RunContext

Step = Callable[[Deps, RunContext, TeamCreationRequest], TeamCreationRequest]
MAX_REVISIONS = 2


#: For requests analysed before the three-way matcher (``request.match`` is None): their ``match_score`` is the
#: Jaccard-style skill score of then, and reuse meant a score at or above that matcher's threshold, the then
#: default of ``DEVOPS_CREW_REUSE_THRESHOLD``, 0.6. (0.044 was the threshold of the weighted TF-IDF score that
#: came later; those requests carry a ``match`` and are decided by its verdict.)
LEGACY_REUSE_SCORE = 0.6


def analyse(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> TeamCreationRequest:
    """received -> analysed: the matcher's verdict (reuse, new or triage), the closest team and why."""
    ctx.say("analysing: matching the gap against the registry")
    result = ctx.registry(deps).match(request.gap)
    best = result.candidates[0] if result.candidates else None
    request.matched_team, request.match_score = (best.team, best.score) if best else (None, None)
    request.match = MatchSummary(
        verdict=result.verdict.value,
        explanation=result.explain()[:4000],
        candidates=[
            MatchCandidate(team=c.team, score=c.score, explanation=c.explain()[:500]) for c in result.candidates
        ],
    )
    if request.match.verdict == "triage" and deps.triage_reader is not None:
        _first_reader(deps, ctx, request)
    ctx.say(f"registry match: {request.match.explanation}")
    return deps.store.save_request(request, RequestState.analysed)


def _first_reader(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> None:
    """Let the triage reader (the LLM's analyst) decide a close case among the listed teams or "new".
    An answer outside that list leaves the case to a human; the thresholds already decided the rest."""
    assert request.match is not None and deps.triage_reader is not None
    answer, usage = deps.triage_reader.choose(request.gap, request.match.candidates)
    request.llm_usage = request.llm_usage + usage
    choice = validated_choice(answer, request.match.candidates)
    deps.auditor.event("registry.triage_reader", choice or "invalid", request_id=request.id, answer=str(answer)[:200])
    if choice is None:
        ctx.say(f"the analyst's triage answer {str(answer)[:60]!r} is not a listed team or 'new': a human decides")
        return
    request.match.decided_by = "llm"
    if choice == "new":
        request.match.verdict = "new"
        request.match.explanation = "new team (the analyst read the close candidates): " + request.match.explanation
    else:
        request.match.verdict = "reuse"
        request.matched_team = choice
        request.match_score = next(c.score for c in request.match.candidates if c.team == choice)
        request.match.explanation = f"reuse {choice} (the analyst's choice among the close candidates)"


def _reuses(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> bool:
    if request.match is not None:
        return request.match.verdict == "reuse" and request.matched_team is not None
    # Analysed before the three-way matcher: the rule of then (its Jaccard-style score at or above 0.6; the
    # matcher's thresholds are now probabilities of its decision models, not scores).
    return request.matched_team is not None and (request.match_score or 0) >= LEGACY_REUSE_SCORE


def draft(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> TeamCreationRequest:
    """analysed -> reuse_existing (a team covers the gap) or drafted (a TeamSpec; a triage case is drafted
    too, so that a human's confirmation can go straight on to the gate)."""
    if _reuses(deps, ctx, request):
        ctx.say(f"reusing existing team {request.matched_team} (score {request.match_score})")
        deps.auditor.event("registry.reuse", request.matched_team, request_id=request.id, score=request.match_score)
        return deps.store.save_request(request, RequestState.reuse_existing)
    ctx.say(f"drafting a team spec with the {deps.drafter.label}")
    registry = ctx.registry(deps)
    context = DraftContext(
        existing_teams=registry.names(),
        reserved_names=set(policy.RESERVED_NAMES),
        department=registry.department_for(request.gap),
    )
    drafted = deps.drafter.draft(request.gap, context)
    request.spec, request.drafter = quarantine(drafted.spec, request.gap), drafted.label or deps.drafter.label
    request.llm_usage = request.llm_usage + drafted.usage
    return deps.store.save_request(request, RequestState.drafted)


def triage_decision(request: TeamCreationRequest) -> PolicyDecision:
    """The waiting decision of a gap the matcher could not decide (rule ``possible-reuse``), naming the
    closest teams with what matched."""
    assert request.match is not None
    shown = "; ".join(c.explanation or f"{c.team} {c.score:.2f}" for c in request.match.candidates[:3])
    first = request.match.candidates[0].team if request.match.candidates else "TEAM"
    return PolicyDecision(
        outcome=Outcome.needs_approval,
        rule=POSSIBLE_REUSE,
        message=f"an existing team may already cover this gap: {shown}"[:2000],
        remedy=f"A human confirms a new team with `devops-crew approve {request.id}`, or reuses a team with "
        f"`devops-crew reject {request.id} --use-team {first}`.",
        risk_level=RiskLevel.medium,
    )


def gate(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> TeamCreationRequest:
    """drafted|refused|awaiting_approval -> approved_by_policy, refused or awaiting_approval."""
    spec = request.spec
    assert spec is not None
    ctx.say(f"policy gate for team {spec.name}")
    try:
        policy.check_team_name(spec.name, ctx.registry(deps).names())
        _check_not_in_flight(deps, request)
        _check_not_rejected_before(deps, request)
    except PolicyViolation as violation:
        return refuse(deps, ctx, request, violation.decision())
    if request.match is not None and request.match.verdict == "triage" and not request.triage_decided_by:
        request.decision = triage_decision(request)
        deps.auditor.event(
            "policy.needs_approval",
            spec.name,
            request_id=request.id,
            rule=POSSIBLE_REUSE,
            candidates=[(c.team, c.score) for c in request.match.candidates],
        )
        return deps.store.save_request(request, RequestState.awaiting_approval)
    waiting = policy.cost_decision(
        spec, deps.settings.monthly_cost_ceiling_usd, request.cost_approved_by, request_id=request.id
    )
    if waiting is not None:
        request.decision = waiting
        deps.auditor.event("policy.needs_approval", spec.name, request_id=request.id, rule=waiting.rule)
        return deps.store.save_request(request, RequestState.awaiting_approval)
    return _take_slot(deps, ctx, request)


def _check_not_in_flight(deps: Deps, request: TeamCreationRequest) -> None:
    """Two open requests may not propose the same new team folder (checked again, atomically, when the
    rate-limit slot is taken). One indexed query on the requests' team column, however many are stored."""
    assert request.spec is not None
    for other in deps.store.list_requests(limit=2, states=set(IN_FLIGHT), team=request.spec.name):
        if other.id != request.id:
            raise name_in_flight(other.id, request.spec.name, other.state.value)


def _check_not_rejected_before(deps: Deps, request: TeamCreationRequest) -> None:
    """Human decisions are remembered: a team reviewers rejected (or whose pull request they closed) is
    not proposed again by a reworded gap. Same team name or the same skills as a rejected request is
    refused until a human reconsiders (``approve --reconsider``)."""
    assert request.spec is not None
    if request.reconsidered_by is not None:
        return
    earlier = deps.store.rejected_like(request.spec.name, request.gap.required_skills)
    if earlier is None or earlier.id == request.id:
        return
    raise previously_rejected(earlier, request.id)


def previously_rejected(earlier: TeamCreationRequest, request_id: str = "ID") -> PolicyViolation:
    who = f"{earlier.rejected_by.key}" if earlier.rejected_by else "a reviewer on the forge"
    why = earlier.rejection_reason or earlier.error or "no reason given"
    team = f"teams/{earlier.spec.name}/" if earlier.spec else "the same skills"
    return PolicyViolation(
        "previously-rejected",
        f"{team} was rejected before: request {earlier.id}, by {who}: {why}"[:1000],
        f"A human who disagrees reopens it with `devops-crew approve {request_id} --reconsider`; otherwise reject"
        " this one.",
    )


def name_in_flight(holder: str, name: str, state: str) -> PolicyViolation:
    return PolicyViolation(
        "existing-team",
        f"request {holder} already proposes teams/{name}/ ({state})",
        "Wait until its pull request is merged or closed, or propose another name.",
    )


def _take_slot(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> TeamCreationRequest:
    """Take a rate-limit slot (or the human override) and fix the branch name."""
    spec = request.spec
    assert spec is not None
    overridden = request.override_approved_by is not None
    settings = deps.settings

    def check(ledger: list) -> None:
        if not overridden:
            policy.check_rate(
                ledger,
                limit=settings.rate_limit_per_day,
                cooldown_seconds=settings.cooldown_seconds,
                request_id=request.id,
            )

    try:
        try:
            deps.store.consume_slot(request.id, spec.name, overridden=overridden, check=check)
        except NameTaken as taken:
            raise name_in_flight(taken.holder, spec.name, "being proposed") from taken
    except PolicyViolation as violation:
        risk = policy.risk_level(spec, settings.monthly_cost_ceiling_usd)
        return refuse(deps, ctx, request, violation.decision(risk))
    risk = policy.RiskLevel.high if overridden else policy.risk_level(spec, settings.monthly_cost_ceiling_usd)
    request.decision = PolicyDecision(outcome=Outcome.approved, message="all policy rules passed", risk_level=risk)
    request.branch = request.branch or policy.branch_name(spec.name, request_id=request.id)
    deps.auditor.event(
        "policy.approved",
        spec.name,
        request_id=request.id,
        risk=risk.value,
        branch=request.branch,
        override_by=request.override_approved_by,
    )
    return deps.store.save_request(request, RequestState.approved_by_policy)


def refuse(deps: Deps, ctx: RunContext, request: TeamCreationRequest, decision: PolicyDecision) -> TeamCreationRequest:
    request.decision = decision
    ctx.say(f"refused by policy ({decision.rule}): {decision.message}")
    deps.auditor.event(
        "policy.refused",
        request.spec.name if request.spec else "",
        request_id=request.id,
        rule=decision.rule,
        message=decision.message,
    )
    return deps.store.save_request(request, RequestState.refused)


def render_dir(deps: Deps, request: TeamCreationRequest) -> Path:
    return deps.settings.home / "renders" / request.id


def rendered_root(deps: Deps, request: TeamCreationRequest) -> Path:
    assert request.spec is not None
    return render_dir(deps, request) / request.spec.name


def _render(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> list[str]:
    """Render the request's spec (policy-checked paths) and validate it; in a run that may publish
    (``ctx.publishing``: not a dry run), the publish's fetch and commit are done while the team's tests
    run (:func:`_stage_beside`). Returns the rendered files. Raises RenderError, RenderInvalid,
    PolicyViolation."""
    from ..scaffold.render import render_team
    from ..scaffold.validate import validate_render

    spec = request.spec
    assert spec is not None
    dest = render_dir(deps, request)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    ctx.say(f"rendering teams/{spec.name}/ with cookiecutter")
    rendered = render_team(
        spec,
        request.gap,
        dest,
        owner=request.gap.requesting_team or "platform-team",
        a2a_url=card_url(spec.name, deps.settings.team_a2a_url),
    )
    ctx.staged, ctx.reviewers = None, None
    files = policy.check_paths(rendered.files, spec.name)
    if deps.settings.validate_render:
        ctx.say(f"validating {len(files)} rendered files")
        report = None
        try:
            report = validate_render(
                rendered,
                spec,
                kubernetes_version=deps.settings.kubernetes_version,
                beside=(lambda: _stage_beside(deps, ctx, request, files)) if ctx.publishing else None,
            )
        finally:
            if report is None or not report.ok:  # nothing staged for a render that did not pass
                ctx.staged, ctx.reviewers = None, None
        if not report.ok:
            raise RenderInvalid(report.errors)
    return files


def _stage_beside(deps: Deps, ctx: RunContext, request: TeamCreationRequest, files: list[str]) -> None:
    """While the generated team's tests run, what the publish needs that does not depend on them: the
    fetch and commit of this render (not the push) into ``ctx.staged``, and the CODEOWNERS reviewers at
    the commit's base into ``ctx.reviewers``. Best effort: a refusal, a git or a forge failure here is
    only audited; the publish step then does that work itself and meets it again where it belongs."""
    branch = request.branch
    if request.spec is None or branch is None:
        return
    try:
        staged = deps.target.stage_branch(**_branch_args(deps, request, branch, files))
    except (GitError, PolicyViolation) as exc:
        deps.auditor.event("publish.stage_deferred", branch, request_id=request.id, reason=_reason(exc))
        return
    if not isinstance(staged, Staged):
        return
    ctx.staged = staged
    try:
        with deps.auditor.action("forge.read_codeowners", staged.base, request_id=request.id) as call:
            ctx.reviewers = deps.forge.reviewers(files, staged.base)
            call.result.update(users=ctx.reviewers.users, teams=ctx.reviewers.teams, cached=ctx.reviewers.cached)
    except ForgeError:  # audited as failed; the pull request reads them again
        ctx.reviewers = None


def scaffold(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> TeamCreationRequest:
    """approved_by_policy -> scaffolded: render and validate; the reviser may fix a failed render twice."""
    while True:
        try:
            request.files = _render(deps, ctx, request)
            return deps.store.save_request(request, RequestState.scaffolded)
        except RenderInvalid as invalid:
            if deps.reviser is None or request.revisions >= MAX_REVISIONS:
                raise
            _revise(deps, ctx, request, invalid.errors)


def _revise(deps: Deps, ctx: RunContext, request: TeamCreationRequest, errors: list[str]) -> None:
    """Let the reviser fix a spec whose render failed; the result is held to the approved name and to
    the cost ceiling again, in code."""
    spec = request.spec
    assert spec is not None and deps.reviser is not None
    request.revisions += 1
    ctx.say(f"validation failed; revision {request.revisions} of {MAX_REVISIONS}")
    revised = deps.reviser.revise(request.gap, spec, errors)
    request.llm_usage = request.llm_usage + revised.usage
    if revised.spec.name != spec.name:
        raise PolicyViolation("team-name", f"a revision may not rename the approved team {spec.name!r}")
    ceiling = deps.settings.monthly_cost_ceiling_usd
    if policy.cost_decision(revised.spec, ceiling, request.cost_approved_by):
        raise PolicyViolation("cost-ceiling", "the revised team costs more than the ceiling allows")
    if request.cost_approved_by and revised.spec.monthly_cost_usd > max(spec.monthly_cost_usd, ceiling):
        raise PolicyViolation("cost-ceiling", "the revised team costs more than the human approved")
    deps.auditor.event("spec.revised", spec.name, request_id=request.id, errors=errors[:10])
    request.spec = revised.spec
    if request.decision is not None and request.override_approved_by is None:  # labels, draft, auto-merge
        request.decision.risk_level = policy.risk_level(revised.spec, ceiling)
    deps.store.save_request(request)


def publish(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> TeamCreationRequest:
    """scaffolded -> published: commit and push the auto/ branch, then ensure its pull request."""
    spec, branch = request.spec, request.branch
    assert spec is not None and branch is not None
    # A commit staged by this run's scaffold step is the request's first visit here, so a branch its push
    # creates has no pull request yet. Rendered again (lost after a crash), an earlier run may have opened
    # one before the crash, and the branch been deleted since: the pull request is looked for.
    rerendered = not rendered_root(deps, request).exists()
    if rerendered:  # lost after a crash: render again, identically
        request.files = _render(deps, ctx, request)
    (staged, ctx.staged), (reviewers, ctx.reviewers) = (ctx.staged, None), (ctx.reviewers, None)
    ctx.say(f"committing {len(request.files)} files on {branch} and pushing")
    head_is_new = False
    try:
        published = _push_staged(deps, request, staged, branch)
        head_is_new = published is not None and not rerendered  # the staged create-only push made it
        if published is None:
            reviewers = None  # read at the stage's base; the whole publish builds on the base it fetches
            published = _publish_branch(deps, request, branch)
    except BranchTaken:
        fresh = policy.branch_name(spec.name, request_id=request.id)
        if fresh == branch:  # the same second: the next resume gets a new name
            raise
        deps.auditor.event("publish.branch_taken", branch, request_id=request.id, instead=fresh)
        ctx.say(f"{branch} exists with someone else's commits; publishing on {fresh} instead")
        request.branch = branch = fresh
        deps.store.save_request(request)
        published = _publish_branch(deps, request, branch)
    if published.branch != branch:  # published by another process or installation: reuse it
        deps.auditor.event("publish.adopt_branch", published.branch, request_id=request.id, instead_of=branch)
        request.branch = branch = published.branch
    request.commit_sha = published.commit
    deps.store.save_request(request)
    if published.on_base and deps.forge.find_pull_request(branch) is None:
        return _already_on_base(deps, ctx, request)
    ctx.say(f"opening the pull request on the {deps.forge.label}")

    def compose() -> PRContent:
        text = _pr_text(deps, request)
        summary = text.summary
        drafter = request.drafter or deps.drafter.label
        body = pr_text.body(request, spec, request.files, drafter, summary=summary, summary_by=text.summary_by)
        return PRContent(title=text.title, body=body)

    try:
        with deps.auditor.action("forge.open_pull_request", branch, request_id=request.id) as call:
            pr = deps.forge.ensure_pull_request(
                head=branch,
                base=deps.settings.base_branch,
                compose=compose,
                labels=pr_text.labels(request.decision),
                draft=request.decision is not None and request.decision.risk_level is policy.RiskLevel.high,
                changed_paths=request.files,
                reviewers=reviewers,
                head_is_new=head_is_new,
            )
            call.result.update(number=pr.number, url=pr.url, created=pr.created, warnings=pr.warnings)
    except ForgeError as exc:  # GitHub's 422 "No commits between": the base already has the commit
        if exc.status == 422 and deps.target.on_base(request.commit_sha or ""):
            return _already_on_base(deps, ctx, request)
        raise
    request.pr_number, request.pr_url = pr.number, pr.url
    request.pr_forge = forge_kind(deps.settings)
    request = deps.store.save_request(request, RequestState.published)
    shutil.rmtree(render_dir(deps, request), ignore_errors=True)  # the branch holds it now
    return request


def _publish_branch(deps: Deps, request: TeamCreationRequest, branch: str) -> Published:
    return deps.target.publish_branch(**_branch_args(deps, request, branch, request.files))


def _branch_args(deps: Deps, request: TeamCreationRequest, branch: str, files: list[str]) -> dict[str, Any]:
    """What ``TargetRepo.stage_branch`` and ``publish_branch`` are given for this request's render."""
    spec = request.spec
    assert spec is not None
    return {
        "gap_id": request.gap.id,
        "request_id": request.id,
        "team_name": spec.name,
        "branch": branch,
        "rendered_root": rendered_root(deps, request),
        "files": files,
        "message": commit_message(spec.name, request.gap.id, request.id),
    }


def _reason(exc: Exception) -> str:
    """An exception as one audit line: its type and message, whitespace folded, at most 300 characters."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _push_staged(deps: Deps, request: TeamCreationRequest, staged: Staged | None, branch: str) -> Published | None:
    """Push the commit this run's scaffold step staged for ``branch``; None when there is none, or when the
    push failed or was not tried (the remote moved since the stage, someone created the branch, the remote
    refused; audited): the caller then publishes from scratch, which fetches and decides (adopt, rename,
    refuse) on what the remote holds now."""
    if staged is None or staged.branch != branch:
        return None
    try:
        return deps.target.push_staged(staged, request.id)
    except GitError as exc:
        deps.auditor.event("publish.staged_push_abandoned", branch, request_id=request.id, reason=_reason(exc))
        return None


def _already_on_base(deps: Deps, ctx: RunContext, request: TeamCreationRequest) -> TeamCreationRequest:
    """The base branch already holds the crew's commit (someone fast-forwarded it): the team is merged
    and there is no pull request to open. The request ends ``merged``, which is what the world says."""
    ctx.say(f"{deps.settings.base_branch} already contains {request.commit_sha}: the team is merged")
    deps.auditor.event("publish.already_on_base", request.commit_sha or "", request_id=request.id)
    request.merge_commit_sha = request.commit_sha
    deps.store.save_request(request, RequestState.published)
    request = deps.store.save_request(request, RequestState.merged)
    shutil.rmtree(render_dir(deps, request), ignore_errors=True)
    return request


def _pr_text(deps: Deps, request: TeamCreationRequest) -> PRText:
    spec = request.spec
    assert spec is not None
    if deps.pr_writer is None:
        return PRText(title=pr_text.title(spec, request))
    text, usage = deps.pr_writer.write(request, spec, request.files)
    request.llm_usage = request.llm_usage + usage
    deps.store.save_request(request)
    return text


#: The step for each state a run can continue from.
STEPS: dict[RequestState, Step] = {
    RequestState.received: analyse,
    RequestState.analysed: draft,
    RequestState.drafted: gate,
    RequestState.refused: gate,
    RequestState.awaiting_approval: gate,
    RequestState.approved_by_policy: scaffold,
    RequestState.scaffolded: publish,
}
