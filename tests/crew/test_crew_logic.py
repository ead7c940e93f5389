"""The crew's logic with a scripted ``crewai.BaseLLM``: which agent is asked what, how often, and what
code does with the answers. The whole pipeline runs for real (git, render, validation, local forge)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from devops_automation.crew.crew import DevopsCrew
from devops_automation.crew.prompts import read_block
from devops_automation.drafting.cost import monthly_cost
from devops_automation.models import RequestState, TeamSpec
from devops_automation.scaffold import validate as validation
from devops_automation.tools import PublishPullRequestTool, RegistryLookupTool, ScaffoldTeamTool, ToolContext

from ..helpers import NEW_TEAM_GAP, bare, gh_pull, remote_branches
from .conftest import ScriptedCrewApp, offline_app
from .fake_model import FakeModel, Reply
from .scripted import scripted_factory

pytestmark = pytest.mark.slow

FLAKY = {"role": "flaky_specialist", "goal": "Do flaky things.", "backstory": "Breaks renders.", "skills": ["flakes"]}


def actions(crew_app: ScriptedCrewApp, request_id: str) -> list[tuple[str, str]]:
    return [(r.action, r.phase) for r in crew_app.app.store.iter_audit(request_id)]


def test_the_happy_path_takes_three_llm_calls_and_records_them(scripted_app: Callable[..., ScriptedCrewApp]) -> None:
    crew_app = scripted_app(FakeModel(spec_overrides={"monthly_cost_usd": 0.01}))
    request = crew_app.app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error

    calls = crew_app.recorder.calls
    assert [(c["tools"], c["schema"]) for c in calls] == [
        (["registry_lookup"], None),  # gap analyst: its tool's answer is final
        ([], "TeamSpec"),  # team architect: native structured output, no tools
        (["publish_pull_request"], None),  # PR author: its tool's answer is final
    ]
    usage = request.llm_usage
    assert usage.calls == 3 and usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.cost_usd > 0
    assert request.drafter == "LLM crew (openai/gpt-4o-mini)"

    spec = request.spec
    assert spec is not None and spec.name == "d3_js_data_visualization"
    # The model said $0.01; the documented formula decides.
    assert spec.monthly_cost_usd == monthly_cost(spec.resources, len(spec.agents), spec.llm_model) > 1

    pr = gh_pull(crew_app.app, request.pr_number)
    assert pr.title == "Add team d3_js_data_visualization for the reported gap"
    assert "## Summary (written by the PR author agent)" in pr.body
    assert "Adds **d3_js_data_visualization** to close the gap." in pr.body
    assert f"LLM use so far: 3 calls, {usage.prompt_tokens} prompt + {usage.completion_tokens} completion" in pr.body
    assert "8 tasks need interactive d3.js charts" in pr.body and request.id in pr.body

    done = actions(crew_app, request.id)
    for action in ("crew.draft", "tool.registry_lookup", "crew.pull_request", "tool.publish_pull_request"):
        assert (action, "initiated") in done and (action, "succeeded") in done, action
    draft_row = next(
        r for r in crew_app.app.store.iter_audit(request.id) if (r.action, r.phase) == ("crew.draft", "succeeded")
    )
    assert json.loads(draft_row.detail)["usage"]["calls"] == 2


def test_the_gap_reaches_every_prompt_only_as_a_quoted_data_block(
    scripted_app: Callable[..., ScriptedCrewApp],
) -> None:
    crew_app = scripted_app()
    crew_app.app.engine.submit(NEW_TEAM_GAP)
    for call in crew_app.recorder.calls:
        prompt = "\n".join(str(m.get("content") or "") for m in call["messages"] if m["role"] == "user")
        assert prompt.count("<gap>\n") == prompt.count("\n</gap>") == 1  # one block, its delimiters intact
        assert read_block(prompt, "gap")["description"] == NEW_TEAM_GAP.description
        assert "never" in prompt and "instructions" in prompt


def test_a_render_that_fails_validation_is_revised_by_the_scaffolder(
    scripted_app: Callable[..., ScriptedCrewApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = validation.validate_render

    def strict_validator(rendered: Any, spec: TeamSpec, **kwargs: Any) -> validation.ValidationReport:
        report = real(rendered, spec, **kwargs)
        if any(a.role == "flaky_specialist" for a in spec.agents):
            report = validation.ValidationReport(
                ok=False,
                errors=[*report.errors, f"team_tests: teams/{spec.name}/tests: flaky_specialist fails"],
                timings={},
            )
        return report

    monkeypatch.setattr(validation, "validate_render", strict_validator)
    crew_app = scripted_app(FakeModel(extra_agents=[FLAKY]))
    request = crew_app.app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error
    assert request.revisions == 1
    assert [c["tools"] or c["schema"] for c in crew_app.recorder.calls] == [
        ["registry_lookup"],
        "TeamSpec",
        ["scaffold_team"],  # the scaffolder's one turn per revision: the tool validated its fix
        ["publish_pull_request"],
    ]
    assert request.llm_usage.calls == 4
    assert "flaky_specialist" not in [a.role for a in request.spec.agents]
    revise_prompt = "\n".join(str(m.get("content")) for m in crew_app.recorder.calls[2]["messages"])
    assert any("flaky_specialist fails" in e for e in read_block(revise_prompt, "errors"))
    done = actions(crew_app, request.id)
    assert ("tool.scaffold_team", "succeeded") in done and ("spec.revised", "recorded") in done
    scratch = crew_app.app.settings.home / "crew" / "scaffold" / request.id / request.spec.name
    assert (scratch / "teams" / request.spec.name / "team.yaml").is_file()


def test_a_render_that_stays_invalid_fails_after_two_revisions_and_pushes_nothing(
    scripted_app: Callable[..., ScriptedCrewApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_failing(rendered: Any, spec: TeamSpec, **kwargs: Any) -> validation.ValidationReport:
        return validation.ValidationReport(ok=False, errors=["hadolint: DL3000: always wrong"], timings={})

    monkeypatch.setattr(validation, "validate_render", always_failing)
    crew_app = scripted_app()
    request = crew_app.app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.failed and "validation" in (request.error or "")
    assert request.revisions == 2
    tools = [c["tools"] for c in crew_app.recorder.calls]
    assert tools.count(["scaffold_team"]) == 2 and len(tools) == 4
    assert set(remote_branches(bare(crew_app.app))) == {"main"}


def test_an_invalid_spec_from_the_model_fails_the_request_with_the_reason(
    scripted_app: Callable[..., ScriptedCrewApp],
) -> None:
    crew_app = scripted_app(FakeModel(spec_overrides={"department": "astrology"}))
    request = crew_app.app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.failed and request.resume_state is RequestState.analysed
    assert "draft" in request.error and "unknown department 'astrology'" in request.error
    failed = [
        json.loads(r.detail)
        for r in crew_app.app.store.iter_audit(request.id)
        if (r.action, r.phase) == ("crew.draft", "failed")
    ]
    assert failed and failed[0]["usage"]["calls"] == 2  # the calls were made and are on record


class SilentAuthor(FakeModel):
    """A PR author that answers in prose instead of calling its tool."""

    def reply(self, messages: list[dict[str, Any]], tools: list[str], schema: str | None) -> Reply:
        if "publish_pull_request" in tools:
            return Reply(content="This PR adds a d3 team.")
        return super().reply(messages, tools, schema)


def test_a_pr_author_that_skips_its_tool_gets_a_pull_request_written_by_code(
    scripted_app: Callable[..., ScriptedCrewApp],
) -> None:
    """Prose instead of the tool is never published: code writes title and summary, and says so."""
    crew_app = scripted_app(SilentAuthor())
    request = crew_app.app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error
    pr = gh_pull(crew_app.app, request.pr_number)
    assert pr.title == f"Add team {request.spec.name} for capability gap {NEW_TEAM_GAP.id}"
    assert "This PR adds a d3 team." not in pr.body
    assert "## Summary (written by code, because the PR author answered without calling publish_pull_request)" in (
        pr.body
    )
    assert f"Adds the {request.spec.department.value} team `{request.spec.name}`" in pr.body
    assert ("crew.pr_text_rejected", "recorded") in actions(crew_app, request.id)


def test_the_crew_is_a_crewbase_project_of_four_agents_from_yaml(crew_settings: Any) -> None:
    app = offline_app(crew_settings)
    try:
        factory, _, _ = scripted_factory()
        context = ToolContext(crew_settings, app.auditor, app.target, NEW_TEAM_GAP)
        optimized, naive = DevopsCrew(factory(), context), DevopsCrew(factory(), context, naive=True)
        assert set(optimized.agents_config) == {"gap_analyst", "team_architect", "scaffolder", "pr_author"}
        whole = naive.crew()
        assert [t.name for t in whole.tasks] == ["analyse_gap", "design_team", "scaffold_team", "write_pull_request"]
        assert [a.role for a in whole.agents] == ["Gap analyst", "Team architect", "Scaffolder", "Pull request author"]
        drafting = optimized.drafting_crew()
        design = drafting.tasks[1]
        assert design.output_pydantic is TeamSpec and design.response_model is TeamSpec
        assert design.context == [drafting.tasks[0]]
        tools = {type(t): t for a in whole.agents for t in a.tools}
        assert set(tools) == {RegistryLookupTool, ScaffoldTeamTool, PublishPullRequestTool}
        assert not any(t.result_as_answer for t in tools.values())  # naive: every result goes back to the model
        assert tools[PublishPullRequestTool].dry_run
        assert all(t.result_as_answer for a in optimized.drafting_crew().agents for t in a.tools)
    finally:
        app.close()


def test_the_naive_sequential_crew_runs_end_to_end_in_seven_calls_without_pushing(crew_settings: Any) -> None:
    from devops_automation.crew.components import CrewRuntime, naive_inputs

    app = offline_app(crew_settings)
    try:
        factory, recorder, _ = scripted_factory()
        runtime = CrewRuntime(crew_settings, app.auditor, app.target, factory, "openai/gpt-4o-mini")
        context = runtime.context(NEW_TEAM_GAP, None)
        output, usage = runtime.kickoff(
            "naive",
            lambda llm: DevopsCrew(llm, context, naive=True).crew(),
            naive_inputs(runtime, NEW_TEAM_GAP),
            context,
        )
        assert usage.calls == len(recorder.calls) == 7
        assert [c["tools"] or c["schema"] for c in recorder.calls] == [
            ["registry_lookup"],
            ["registry_lookup"],  # the model reads the lookup back and answers
            "TeamSpec",
            ["scaffold_team"],
            ["scaffold_team"],
            ["publish_pull_request"],
            ["publish_pull_request"],
        ]
        assert json.loads(context.last_spec.model_dump_json())["name"] == "d3_js_data_visualization"
        assert set(remote_branches(bare(app))) == {"main"}  # dry run: nothing pushed
        assert "Done." in output.raw
    finally:
        app.close()


def _raised(make: Callable[[], None]) -> BaseException:
    try:
        make()
    except Exception as exc:  # the exception is the value under test
        return exc
    raise AssertionError("nothing raised")


def test_a_crew_failure_names_the_cause_the_way_a_traceback_shows_it() -> None:
    from devops_automation.audit import redact
    from devops_automation.crew.components import describe

    def connection() -> None:
        try:
            raise OSError("Server disconnected without sending a response.")
        except OSError as low:
            raise ConnectionError("Connection error.") from low

    assert describe(_raised(connection)) == (
        "Connection error. (OSError: Server disconnected without sending a response.)"
    )

    def hidden() -> None:  # `from None` hides what it replaces (store.py hides a database URL this way)
        try:
            raise ValueError("postgresql://admin:hunter2@db/crew")
        except ValueError:
            raise RuntimeError("the store is unreachable") from None

    assert describe(_raised(hidden)) == "the store is unreachable"

    def unrelated() -> None:  # an implicit context is shown, as a traceback shows it
        try:
            {}["missing"]
        except KeyError:
            raise RuntimeError("the draft failed")  # noqa: B904 - the implicit context is the case under test

    assert describe(_raised(unrelated)) == "the draft failed (KeyError: 'missing')"

    looped = _raised(connection)
    assert looped.__cause__ is not None
    looped.__cause__.__cause__ = looped  # a cycle ends the walk
    assert describe(looped).startswith("Connection error. (OSError:")

    def empty_inner() -> None:  # the innermost cause with a message, not an empty one under it
        try:
            try:
                raise TimeoutError()
            except TimeoutError as empty:
                raise OSError("connection reset by peer") from empty
        except OSError as middle:
            raise ConnectionError("Connection error.") from middle

    assert describe(_raised(empty_inner)) == "Connection error. (OSError: connection reset by peer)"

    key = "sk-" + "A" * 40

    def long_and_secret() -> None:  # redacted whole, then cut: a key across the cut is not left half-shown
        try:
            raise OSError("x" * 330 + f" Incorrect API key provided: {key}")
        except OSError as low:
            raise ConnectionError("y" * 340 + " " + key) from low

    text = describe(_raised(long_and_secret), lambda t: redact(t, [key]))
    assert "sk-AAAA" not in text and len(text) <= 2 * 350 + 40 and "(OSError: xxx" in text
