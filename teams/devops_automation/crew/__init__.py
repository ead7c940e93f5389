"""The LLM crew: four CrewAI agents that draft a team, revise it, and write its pull request.

    drafter, reviser, pr_writer = build_crew_components(settings, auditor, target)

The three objects implement the pipeline's seams (:mod:`devops_automation.drafting.base`): ``Drafter``
(gap analyst + team architect), ``SpecReviser`` (scaffolder) and ``PRWriter`` (PR author). The policy
gate, rendering, validation and pushing stay in the pipeline's code between them. This module is
light on purpose: CrewAI and LangChain are imported only when the components are built, after
:func:`~devops_automation.quiet.isolate_crewai` has switched off telemetry and moved CrewAI's files
into the state directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ..quiet import isolate_crewai

if TYPE_CHECKING:
    from ..audit import Auditor
    from ..drafting.base import Drafter, PRWriter, SpecReviser, TriageReader
    from ..settings import Settings
    from ..target import TargetRepo
    from .llm import LLMFactory


class CrewComponents(NamedTuple):
    drafter: Drafter
    reviser: SpecReviser
    pr_writer: PRWriter


def build_crew_components(
    settings: Settings,
    auditor: Auditor,
    target: TargetRepo,
    *,
    chat_model: Any = None,
    llm_factory: LLMFactory | None = None,
) -> CrewComponents:
    """The crew's drafter, reviser and PR writer for ``settings``.

    The LLM is ``ChatOpenAI`` built from ``DEVOPS_CREW_LLM``, ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``,
    unless ``chat_model`` (any LangChain chat model) or ``llm_factory`` (returns a fresh
    ``crewai.BaseLLM`` per kickoff, e.g. a scripted one in tests) is given. Raises
    :class:`~devops_automation.errors.ConfigurationError` for
    an unusable configuration.
    """
    isolate_crewai(settings.home)
    from .components import CrewDrafter, CrewPRWriter, CrewReviser, CrewRuntime
    from .llm import llm_factory as adapter_factory
    from .llm import make_chat_model

    model_name = settings.llm or "custom"
    if llm_factory is None:
        llm_factory = adapter_factory(
            chat_model if chat_model is not None else make_chat_model(settings), model_name, settings
        )
    runtime = CrewRuntime(settings, auditor, target, llm_factory, model_name)
    return CrewComponents(CrewDrafter(runtime), CrewReviser(runtime), CrewPRWriter(runtime))


def build_triage_reader(
    settings: Settings, auditor: Auditor, target: TargetRepo, *, llm_factory: LLMFactory | None = None
) -> TriageReader:
    """The gap analyst as the first reader of triage cases (:mod:`.triage`), on the crew's LLM."""
    isolate_crewai(settings.home)
    from .components import CrewRuntime
    from .llm import llm_factory as adapter_factory
    from .llm import make_chat_model
    from .triage import CrewTriageReader

    model_name = settings.llm or "custom"
    if llm_factory is None:
        llm_factory = adapter_factory(make_chat_model(settings), model_name)
    return CrewTriageReader(CrewRuntime(settings, auditor, target, llm_factory, model_name))


__all__ = ["CrewComponents", "build_crew_components", "build_triage_reader"]
