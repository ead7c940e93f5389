"""The devops crew: four CrewAI agents and their tasks, assembled with ``@CrewBase`` from the YAML in
``agents/agents.yaml`` and ``tasks/tasks.yaml`` (installed as ``devops_automation.agents``/``.tasks``).

The pipeline never hands a whole request to one kickoff. It runs three small crews at its LLM steps,
with the policy gate and the deterministic work (registry matching, rendering, validation, pushing)
in code between them:

- :meth:`DevopsCrew.drafting_crew`: gap analyst (``registry_lookup``, whose answer is final) then team
  architect (native structured output, ``output_pydantic=TeamSpec``): 2 LLM calls.
- :meth:`DevopsCrew.revision_crew`: the scaffolder, only when a render failed validation; its
  ``scaffold_team`` answer is final: 1 LLM call per revision (the pipeline allows two).
- :meth:`DevopsCrew.pull_request_crew`: the PR author, whose ``publish_pull_request`` answer is
  final: 1 LLM call.

:meth:`DevopsCrew.crew` is the textbook alternative: the same four agents in one sequential kickoff,
every tool result read back by the model. The pipeline does not use it; ``bench/llm_calls.py``
compares the two.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from crewai import Agent, Crew, Process, Task
from crewai.llms.base_llm import BaseLLM
from crewai.project import CrewBase, agent, crew, task

from devops_automation.models import TeamSpec
from devops_automation.tools import (
    PublishPullRequestTool,
    RegistryLookupTool,
    ScaffoldTeamTool,
    ToolContext,
)

AGENTS_CONFIG = str(files("devops_automation.agents") / "agents.yaml")
TASKS_CONFIG = str(files("devops_automation.tasks") / "tasks.yaml")

# No delegation, no crewai-side retries of a failed kickoff (a failure is the pipeline's to resume), no
# tool-result cache (every tool call runs, and is audited), and few turns.
AGENT_OPTIONS: dict[str, Any] = {
    "allow_delegation": False,
    "max_iter": 3,
    "max_retry_limit": 0,
    "cache": False,
    "verbose": False,
}


@CrewBase
class DevopsCrew:
    """The gap analyst, team architect, scaffolder and PR author, bound to one request's tools.

    ``naive=True`` builds the textbook variant: tools whose results go back to the model for another
    turn, and the output schema in the prompt instead of native structured output.
    """

    agents_config = AGENTS_CONFIG
    tasks_config = TASKS_CONFIG

    def __init__(self, llm: BaseLLM, context: ToolContext, *, naive: bool = False, cost_approved: bool = False) -> None:
        self.llm = llm
        self.context = context
        self.naive = naive
        self.cost_approved = cost_approved

    # -- agents ---------------------------------------------------------------------------------
    @agent
    def gap_analyst(self) -> Agent:
        tool = RegistryLookupTool(context=self.context, result_as_answer=not self.naive)
        return Agent(config=self.agents_config["gap_analyst"], llm=self.llm, tools=[tool], **AGENT_OPTIONS)

    @agent
    def team_architect(self) -> Agent:
        return Agent(config=self.agents_config["team_architect"], llm=self.llm, **AGENT_OPTIONS)

    @agent
    def scaffolder(self) -> Agent:
        tool = ScaffoldTeamTool(
            context=self.context,
            cost_approved=self.cost_approved,
            result_as_answer=not self.naive,
            max_usage_count=2,
        )
        return Agent(config=self.agents_config["scaffolder"], llm=self.llm, tools=[tool], **AGENT_OPTIONS)

    @agent
    def pr_author(self) -> Agent:
        tool = PublishPullRequestTool(
            context=self.context, dry_run=self.naive, result_as_answer=not self.naive, max_usage_count=2
        )
        return Agent(config=self.agents_config["pr_author"], llm=self.llm, tools=[tool], **AGENT_OPTIONS)

    # -- tasks ----------------------------------------------------------------------------------
    @task
    def analyse_gap(self) -> Task:
        return Task(config=self.tasks_config["analyse_gap"])

    @task
    def design_team(self) -> Task:
        # response_model asks the LLM for native structured output (json_schema) and keeps the
        # schema out of the prompt text; output_pydantic makes the task's output the TeamSpec.
        return Task(
            config=self.tasks_config["design_team"],
            output_pydantic=TeamSpec,
            response_model=None if self.naive else TeamSpec,
        )

    @task
    def revise_spec(self) -> Task:
        return Task(config=self.tasks_config["revise_spec"])

    @task
    def scaffold_team(self) -> Task:
        return Task(config=self.tasks_config["scaffold_team"])

    @task
    def write_pull_request(self) -> Task:
        return Task(config=self.tasks_config["write_pull_request"])

    # -- crews ----------------------------------------------------------------------------------
    def _crew(self, tasks: list[Task]) -> Crew:
        agents = list({id(t.agent): t.agent for t in tasks if t.agent is not None}.values())
        return Crew(
            agents=agents,
            tasks=tasks,
            process=Process.sequential,
            verbose=False,
            tracing=False,
            cache=False,
            memory=False,
        )

    def drafting_crew(self) -> Crew:
        """Gap analyst then team architect: inputs ``gap``, ``taken_names``, ``departments``, ``llm_model``."""
        return self._crew([self.analyse_gap(), self.design_team()])

    def revision_crew(self) -> Crew:
        """The scaffolder alone: inputs ``gap``, ``spec``, ``errors``."""
        return self._crew([self.revise_spec()])

    def pull_request_crew(self) -> Crew:
        """The PR author alone: inputs ``gap``, ``team``, ``branch``, ``closest_team``, ``files``."""
        return self._crew([self.write_pull_request()])

    @crew
    def crew(self) -> Crew:
        """All four agents in one sequential kickoff, each task reading every earlier output.

        The naive reference the benchmark compares against (build it with ``naive=True``); inputs are
        the union of the drafting and pull-request crews' inputs.
        """
        return self._crew([t for t in self.tasks if t.name != "revise_spec"])
