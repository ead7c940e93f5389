"""The crew behind the pipeline's seams: a Drafter, a SpecReviser and a PRWriter.

Each builds a :class:`~devops_automation.crew.crew.DevopsCrew` bound to the request (tools, fresh LLM
adapter), kicks off one small crew, counts what the LLM reported, audits the kickoff, and hands back
only what passed the same pydantic models as any other input. Anything that goes wrong becomes a
:class:`CrewError` (an :class:`~devops_automation.errors.LLMError`), which the engine records as a
failed, resumable step.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crewai import Crew, CrewOutput
from crewai.llms.base_llm import BaseLLM
from pydantic import ValidationError

from ..audit import Auditor, redact
from ..drafting.base import DraftContext, Drafted
from ..errors import LLMError
from ..models import BIDI_CONTROLS, CapabilityGap, Department, LLMUsage, PRText, TeamCreationRequest, TeamSpec
from ..settings import Settings
from ..target import TargetRepo
from ..tools import ToolContext
from . import pr_draft
from .crew import DevopsCrew
from .llm import LLMFactory, usage_of
from .prompts import data_block, gap_data, spec_data, team_summary
from .specs import finalize_spec

MAX_TAKEN_NAMES = 200


class CrewError(LLMError):
    """A crew kickoff failed or returned nothing usable; the request fails at that step, resumably.
    ``usage`` is what the failed step cost: the engine adds it to the request all the same."""


@dataclass
class CrewRuntime:
    """What every crew component shares: settings, the audit trail, the target repo and the LLM."""

    settings: Settings
    auditor: Auditor
    target: TargetRepo
    llm_factory: LLMFactory
    model_name: str

    def request_for(self, gap: CapabilityGap) -> TeamCreationRequest | None:
        return self.auditor.store.get_request_by_gap(gap.id) if gap.id else None

    def context(self, gap: CapabilityGap, request: TeamCreationRequest | None, **bound: Any) -> ToolContext:
        return ToolContext(
            settings=self.settings,
            auditor=self.auditor,
            target=self.target,
            gap=gap,
            request_id=request.id if request else None,
            **bound,
        )

    def kickoff(
        self, stage: str, build: Callable[[BaseLLM], Crew], inputs: dict[str, str], context: ToolContext
    ) -> tuple[CrewOutput, LLMUsage]:
        """Run ``build(llm).kickoff(inputs)`` on a fresh LLM; audit it with the usage it cost."""
        llm: BaseLLM = self.llm_factory()
        with self.auditor.action(
            f"crew.{stage}", f"gap {context.gap.id}", request_id=context.request_id, model=self.model_name
        ) as call:
            try:
                output = build(llm).kickoff(inputs=inputs)
            except Exception as exc:
                usage = usage_of(llm, self.settings, self.model_name)
                call.result.update(usage=_audit_usage(usage))
                # Some servers echo the key they were sent in their errors: never store it.
                reason = describe(exc, lambda text: redact(text, self.auditor.secrets)) or type(exc).__name__
                raise CrewError(f"the LLM crew failed at {stage}: {type(exc).__name__}: {reason}", usage) from exc
            usage = usage_of(llm, self.settings, self.model_name)
            call.result.update(usage=_audit_usage(usage))
        return output, usage


def describe(exc: BaseException, clean: Callable[[str], str] = str, limit: int = 350) -> str:
    """One line: ``str(exc)``, with the innermost cause that has a message beside it when that says more: the
    OpenAI SDK's ``APIConnectionError`` reads only "Connection error." whether the server refused the
    connection, reset it or closed it without an answer; the httpx error under it says which. Each text
    goes through ``clean`` (the redaction) whole, and is cut to ``limit`` characters only after it.

    Follows the chain as :mod:`traceback` shows it: ``raise ... from`` causes, and an implicit context only
    where no cause was given and it was not hidden (``raise ... from None`` hides it, e.g. a database URL)."""

    def line(value: BaseException) -> str:
        return clean(" ".join(str(value).split()))[:limit]

    found: BaseException | None = None
    inner, seen = exc, {id(exc)}
    while True:
        nxt = inner.__cause__ if inner.__cause__ is not None or inner.__suppress_context__ else inner.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        inner = nxt
        if str(inner).strip():
            found = inner
    text = line(exc)
    detail = line(found) if found is not None else ""
    if not detail or detail in text:
        return text
    return f"{text} ({type(found).__name__}: {detail})"


def _audit_usage(usage: LLMUsage) -> dict[str, Any]:
    # Keys without "token": the audit log blanks any key that looks like it names a secret.
    return {
        "calls": usage.calls,
        "prompt": usage.prompt_tokens,
        "completion": usage.completion_tokens,
        "cost_usd": usage.cost_usd,
    }


def drafting_inputs(runtime: CrewRuntime, gap: CapabilityGap, context: DraftContext) -> dict[str, str]:
    """Inputs of :meth:`DevopsCrew.drafting_crew`."""
    taken = sorted(context.existing_teams | context.reserved_names)
    return {
        "gap": data_block("gap", gap_data(gap)),
        "taken_names": ", ".join(taken[:MAX_TAKEN_NAMES]),
        "departments": ", ".join(d.value for d in Department),
        "llm_model": runtime.settings.llm or "openai/gpt-4o-mini",
    }


def naive_inputs(runtime: CrewRuntime, gap: CapabilityGap, context: DraftContext | None = None) -> dict[str, str]:
    """Inputs of the naive :meth:`DevopsCrew.crew`: the team, branch and files are not known up front."""
    return {
        **drafting_inputs(runtime, gap, context or DraftContext()),
        "team": data_block("team", {"note": "the team the architect designed, in the context above"}),
        "branch": "left out (the tool derives it from the rendered team)",
        "closest_team": "see the gap analysis above",
        "files": "as the scaffolder reported",
    }


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class CrewDrafter:
    """Drafter: the gap analyst weighs the gap against the registry, the team architect writes the spec."""

    def __init__(self, runtime: CrewRuntime) -> None:
        self.runtime = runtime
        self.label = f"LLM crew ({runtime.model_name})"

    def draft(self, gap: CapabilityGap, context: DraftContext) -> Drafted:
        """The crew's spec; with ``llm_offline_fallback``, the offline drafter's when the crew fails (the
        request's drafter then says so, and the failed attempt's usage still counts)."""
        try:
            return self._draft(gap, context)
        except CrewError as exc:
            if not self.runtime.settings.llm_offline_fallback:
                raise
            from ..drafting.offline import OfflineDrafter

            request = self.runtime.request_for(gap)
            self.runtime.auditor.event(
                "crew.draft_fallback",
                f"gap {gap.id}",
                request_id=request.id if request else None,
                reason=str(exc)[:300],
            )
            offline = OfflineDrafter().draft(gap, context)
            label = f"offline drafter (fallback: the {self.label} failed)"
            return Drafted(spec=offline.spec, usage=(exc.usage or LLMUsage()) + offline.usage, label=label)

    def _draft(self, gap: CapabilityGap, context: DraftContext) -> Drafted:
        runtime = self.runtime
        request = runtime.request_for(gap)
        tool_context = runtime.context(gap, request)
        inputs = drafting_inputs(runtime, gap, context)
        output, usage = runtime.kickoff(
            "draft", lambda llm: DevopsCrew(llm, tool_context).drafting_crew(), inputs, tool_context
        )
        analysis, design = output.tasks_output[0], output.tasks_output[-1]
        if "closest_teams" not in (_json_object(analysis.raw) or {}):  # prose is never stored as the analysis
            raise CrewError("the gap analyst answered without calling registry_lookup", usage)
        runtime.auditor.event(
            "crew.gap_analysis", f"gap {gap.id}", request_id=tool_context.request_id, analysis=analysis.raw[:2000]
        )
        if not isinstance(design.pydantic, TeamSpec):
            raise CrewError("the team architect returned no TeamSpec", usage)
        try:
            spec = finalize_spec(design.pydantic, gap, runtime.settings.llm_prices)
        except ValidationError as exc:
            raise CrewError(f"the team architect's spec is invalid: {exc.errors()[0]['msg']}", usage) from exc
        return Drafted(spec=spec, usage=usage)


class CrewReviser:
    """SpecReviser: the scaffolder fixes a spec whose render failed, checking it with ``scaffold_team``."""

    def __init__(self, runtime: CrewRuntime) -> None:
        self.runtime = runtime

    def revise(self, gap: CapabilityGap, spec: TeamSpec, errors: list[str]) -> Drafted:
        """The scaffolder's revised spec; with ``llm_offline_fallback``, the offline drafter's spec under the
        approved name when the crew fails (the pipeline checks name and cost again either way)."""
        runtime = self.runtime
        try:
            return self._revise(gap, spec, errors)
        except CrewError as exc:
            if not runtime.settings.llm_offline_fallback:
                raise
            from ..drafting.offline import OfflineDrafter

            request = runtime.request_for(gap)
            runtime.auditor.event(
                "crew.revise_fallback", spec.name, request_id=request.id if request else None, reason=str(exc)[:300]
            )
            offline = OfflineDrafter().build(gap, DraftContext()).model_dump()
            offline["name"] = spec.name  # the approved name; code checks the cost again
            return Drafted(spec=finalize_spec(offline, gap, runtime.settings.llm_prices), usage=exc.usage or LLMUsage())

    def _revise(self, gap: CapabilityGap, spec: TeamSpec, errors: list[str]) -> Drafted:
        runtime = self.runtime
        request = runtime.request_for(gap)
        tool_context = runtime.context(gap, request, team_name=spec.name)
        approved = bool(request and request.cost_approved_by)
        inputs = {
            "gap": data_block("gap", gap_data(gap)),
            "spec": data_block("spec", spec_data(spec)),
            "errors": data_block("errors", errors[:30]),
        }
        output, usage = runtime.kickoff(
            "revise",
            lambda llm: DevopsCrew(llm, tool_context, cost_approved=approved).revision_crew(),
            inputs,
            tool_context,
        )
        answer = _json_object(output.raw) or {}
        candidate = answer.get("spec") if isinstance(answer.get("spec"), dict) else None
        if candidate is None and tool_context.last_spec is not None:
            candidate = tool_context.last_spec.model_dump()
        if candidate is None:
            raise CrewError("the scaffolder submitted no revised spec through scaffold_team", usage)
        try:
            revised = finalize_spec(candidate, gap, runtime.settings.llm_prices)
        except ValidationError as exc:
            raise CrewError(f"the scaffolder's spec is invalid: {exc.errors()[0]['msg']}", usage) from exc
        return Drafted(spec=revised, usage=usage)


def clean_title(text: str, spec: TeamSpec) -> str:
    """One plain line that names the team (a title that does not gets the team's name in front).

    Control characters become spaces; format characters (bidi overrides, zero-width) are dropped."""
    kept = (" " if unicodedata.category(ch) == "Cc" else "" if unicodedata.category(ch) == "Cf" else ch for ch in text)
    line = " ".join("".join(kept).split())
    if spec.name not in line:
        line = f"Add team {spec.name}: {line}" if line else ""
    return line[:200]


def clean_summary(text: str) -> str:
    """The model's summary as plain text for the PR body: bidirectional-override characters dropped
    (they would make the text read differently from what it is), other control characters but newline
    and tab turned into spaces, Windows line endings into newlines; at most 4,000 characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = (
        "" if ch in BIDI_CONTROLS else " " if unicodedata.category(ch) == "Cc" and ch not in "\n\t" else ch
        for ch in text
    )
    return "".join(kept)[:4000]


class CrewPRWriter:
    """PRWriter: the PR author writes title and summary and submits them through ``publish_pull_request``."""

    def __init__(self, runtime: CrewRuntime) -> None:
        self.runtime = runtime

    def write(self, request: TeamCreationRequest, spec: TeamSpec, files: list[str]) -> tuple[PRText, LLMUsage]:
        runtime = self.runtime
        tool_context = runtime.context(
            request.gap,
            request,
            team_name=spec.name,
            branch=request.branch,
            files=list(files),
            # The pipeline renders into <home>/renders/<request id>/ (Pipeline.render_dir).
            rendered_root=runtime.settings.home / "renders" / request.id / spec.name,
        )
        closest = f"{request.matched_team} (match score {request.match_score})" if request.matched_team else "none"
        inputs = {
            "gap": data_block("gap", gap_data(request.gap)),
            "team": data_block("team", team_summary(spec)),
            "closest_team": closest,
            "files": str(len(files)),
        }
        try:
            output, usage = runtime.kickoff(
                "pull_request", lambda llm: DevopsCrew(llm, tool_context).pull_request_crew(), inputs, tool_context
            )
        except CrewError as exc:
            if not runtime.settings.llm_offline_fallback:
                raise
            runtime.auditor.event("crew.pr_text_fallback", spec.name, request_id=request.id, reason=str(exc)[:300])
            return pr_draft.code_text(spec, request, "the PR author's crew failed"), exc.usage or LLMUsage()
        answer = _json_object(output.raw)
        if answer is None or not isinstance(answer.get("title"), str):
            text: PRText | str = "the PR author answered without calling publish_pull_request"
        else:
            text = pr_draft.check(clean_title(answer["title"], spec), clean_summary(str(answer.get("summary") or "")))
        if isinstance(text, str):  # nothing unvalidated is published: code writes the text, and says why
            runtime.auditor.event("crew.pr_text_rejected", spec.name, request_id=request.id, reason=text)
            return pr_draft.code_text(spec, request, text), usage
        return text, usage


__all__ = [
    "CrewDrafter",
    "CrewError",
    "CrewPRWriter",
    "CrewReviser",
    "CrewRuntime",
    "clean_summary",
    "clean_title",
    "drafting_inputs",
    "naive_inputs",
]
