"""What a real OpenAI-compatible server does that OpenAI does not (issue 15), reproduced by the stub:
``json_schema`` answered with HTTP 500, ``tools`` ignored without ``tool_choice``, a reply that loops to the
length limit, a timeout, a refusal as the PR summary, a wrong tool argument. Each ends somewhere true: the
request published with validated text, or failed and resumable, with every call the server got counted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_automation.crew import build_crew_components
from devops_automation.models import RequestState
from devops_automation.settings import DEFAULT_LLM_MAX_TOKENS

from ..helpers import NEW_TEAM_GAP, bare, gh_pull, new_gap, remote_branches
from .conftest import offline_app, stub_settings, wire
from .fake_model import FakeModel, Reply
from .openai_stub import OpenAIStub

pytestmark = pytest.mark.slow

APOLOGY = "I'm sorry, but I can't provide a final answer without using any tools."


class Crew:
    """An app whose crew talks to ``stub`` through ChatOpenAI, with settings overrides."""

    def __init__(self, home: Path, stub: OpenAIStub, **overrides: Any) -> None:
        self.stub = stub
        self.settings = stub_settings(home, stub, **overrides)
        self.app = offline_app(self.settings)
        wire(self.app, build_crew_components(self.settings, self.app.auditor, self.app.target))

    def actions(self, request_id: str) -> list[tuple[str, str]]:
        return [(r.action, r.phase) for r in self.app.store.iter_audit(request_id)]

    def audit(self, request_id: str, action: str) -> list[dict[str, Any]]:
        return [json.loads(r.detail) for r in self.app.store.iter_audit(request_id) if r.action == action]


@pytest.fixture
def crew(tmp_path: Path) -> Iterator[Any]:
    built: list[Crew] = []

    def make(stub: OpenAIStub, **overrides: Any) -> Crew:
        built.append(Crew(tmp_path / f"home{len(built)}", stub, **overrides))
        return built[-1]

    yield make
    for each in built:
        each.app.close()


def asked_with(body: dict[str, Any]) -> str:
    """How a request asked for structure: a response_format type, a forced tool, or plain."""
    if body.get("response_format"):
        return body["response_format"]["type"]
    choice = body.get("tool_choice")
    return f"tool_choice:{choice['function']['name']}" if isinstance(choice, dict) else "plain"


def assert_counted(request: Any, stub: OpenAIStub) -> None:
    """The request's usage counts every request the server got (refused ones included)."""
    assert request.llm_usage.calls == len(stub.requests), (request.llm_usage, len(stub.requests))


def test_json_schema_refused_with_500_falls_back_to_json_object_and_remembers(crew: Any) -> None:
    with OpenAIStub() as stub:
        stub.refused_formats = {"json_schema"}  # llama-cpp-python's answer
        run = crew(stub)
        first = run.app.engine.submit(NEW_TEAM_GAP).request
        second = run.app.engine.submit(new_gap(2)).request
    assert first.state is RequestState.published, first.error
    assert second.state is RequestState.published, second.error
    kinds = [asked_with(b) for b in stub.requests]
    # The first spec: json_schema refused once (500, not retried), then json_object with the schema.
    assert kinds[1:3] == ["json_schema", "json_object"] and stub.refused == [(500, stub.refused[0][1])]
    assert stub.requests[2]["response_format"]["schema"]["title"] == "TeamSpec"
    assert "json_schema" not in kinds[3:]  # learnt: the second request asks json_object straight away
    assert first.llm_usage.calls == 4 and second.llm_usage.calls == 3
    assert first.llm_usage.calls + second.llm_usage.calls == len(stub.requests)
    assert stub.errors == []


def test_a_dropped_connection_on_json_object_falls_back_to_the_next_way(crew: Any) -> None:
    """llama-cpp-python drops the connection when llama.cpp cannot build the schema's grammar."""
    with OpenAIStub() as stub:
        stub.refused_formats, stub.dropped_formats = {"json_schema"}, {"json_object"}
        run = crew(stub)
        request = run.app.engine.submit(NEW_TEAM_GAP).request
    kinds = [asked_with(b) for b in stub.requests]
    # Everything the server saw, should this fail again as it did once in CI (not reproduced in 60 runs here).
    assert request.state is RequestState.published, (request.error, kinds, stub.refused, stub.errors)
    assert kinds[1] == "json_schema" and kinds[-2] == "tool_choice:TeamSpec"
    assert set(kinds[2:-2]) == {"json_object"}  # dropped (and retried once as a connection error)
    assert_counted(request, stub)  # every request the server got counts, the dropped ones included


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("json_object", "json_object"), ("tool_call", "tool_choice:TeamSpec"), ("prompt", "plain")],
)
def test_every_structured_output_mode_drafts_the_spec(crew: Any, mode: str, kind: str) -> None:
    with OpenAIStub() as stub:
        run = crew(stub, llm_structured_output=mode)
        request = run.app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error
    architect = stub.requests[1]
    assert asked_with(architect) == kind
    tools = [t["function"]["name"] for t in architect.get("tools") or []]
    assert tools == (["TeamSpec"] if mode == "tool_call" else [])
    if mode == "prompt":
        assert "matches this JSON schema" in architect["messages"][-1]["content"]
    assert request.spec is not None and request.spec.name == "d3_js_data_visualization"
    assert_counted(request, stub)


@pytest.mark.parametrize(
    ("mode", "how", "told", "asked"),
    [
        # llama-cpp-python's answer to json_schema; no fallback when a mode is configured
        ("json_schema", "refused", ["Error code: 500", "json_schema is not supported"], ["json_schema"]),
        # a dropped connection: the SDK says only "Connection error."; the cause beside it says no answer came
        (
            "json_object",
            "dropped",
            ["Connection error. (RemoteProtocolError: Server disconnected without sending a response"],
            ["json_object", "json_object"],  # retried once as a connection error, then no fallback
        ),
    ],
)
def test_a_configured_mode_the_server_refuses_fails_the_draft_resumably(
    crew: Any, mode: str, how: str, told: list[str], asked: list[str]
) -> None:
    with OpenAIStub() as stub:
        setattr(stub, f"{how}_formats", {mode})
        run = crew(stub, llm_structured_output=mode)
        request = run.app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.failed and request.resume_state is RequestState.analysed
    assert all(words in request.error for words in told), request.error
    assert [asked_with(b) for b in stub.requests][1:] == asked
    assert_counted(request, stub)


def test_tools_are_forced_with_tool_choice_for_a_server_that_ignores_them_otherwise(crew: Any) -> None:
    with OpenAIStub() as stub:
        stub.tools_need_choice = True
        run = crew(stub)
        request = run.app.engine.submit(NEW_TEAM_GAP).request
        pr = gh_pull(run.app, request.pr_number)
    assert request.state is RequestState.published, request.error
    analyst, _, author = stub.requests
    assert analyst["tool_choice"] == {"type": "function", "function": {"name": "registry_lookup"}}
    assert author["tool_choice"] == {"type": "function", "function": {"name": "publish_pull_request"}}
    assert "## Summary (written by the PR author agent)" in pr.body


class ProseAnalyst(FakeModel):
    """A model that answers the analyst in prose even when the tool is forced."""

    def reply(self, messages: list[dict[str, Any]], tools: list[str], schema: str | None) -> Reply:
        if "registry_lookup" in tools:
            return Reply(content="The gap is real. No team covers it; a new d3 team should be built.")
        return super().reply(messages, tools, schema)


def test_prose_from_the_analyst_is_not_stored_as_the_gap_analysis(crew: Any) -> None:
    with OpenAIStub(ProseAnalyst()) as stub:
        run = crew(stub)
        request = run.app.engine.submit(NEW_TEAM_GAP).request
        analyses = run.audit(request.id, "crew.gap_analysis")
    assert request.state is RequestState.failed and request.resume_state is RequestState.analysed
    assert "answered without calling registry_lookup" in request.error
    assert analyses == [] and request.spec is None
    assert_counted(request, stub)


def test_every_call_is_capped_per_task_and_a_looping_reply_fails_the_step(crew: Any) -> None:
    with OpenAIStub() as stub:
        stub.looping = True
        run = crew(stub, llm_max_tokens={"design_team": 300})
        started = time.monotonic()
        request = run.app.engine.submit(NEW_TEAM_GAP).request
        elapsed = time.monotonic() - started
    assert request.state is RequestState.failed and request.resume_state is RequestState.analysed
    caps = [b["max_completion_tokens"] for b in stub.requests]
    assert caps[0] == DEFAULT_LLM_MAX_TOKENS["analyse_gap"]
    assert all(b["max_tokens"] == b["max_completion_tokens"] for b in stub.requests)  # both names, for any server
    assert [r["choices"][0]["finish_reason"] for r in stub.responses] == ["length"] * len(stub.responses)
    # Every token the server generated is counted: the caps, not the 8,192-token context.
    assert request.llm_usage.completion_tokens == sum(caps) < 8192
    assert_counted(request, stub)
    assert elapsed < 60


def test_a_timeout_ends_the_step_failed_quickly_without_a_retry_and_is_counted(crew: Any) -> None:
    with OpenAIStub() as stub:
        stub.delay_seconds = 30.0  # a client that waited for the answer (or retried) would take 30 s or more
        run = crew(stub, llm_timeout_seconds=0.5, llm_max_retries=2)
        started = time.monotonic()
        request = run.app.engine.submit(NEW_TEAM_GAP).request
        elapsed = time.monotonic() - started
        assert len(stub.requests) == 1  # not retried: the server is still working for the client that left
    assert request.state is RequestState.failed and request.resume_state is RequestState.analysed
    assert "Timeout" in request.error
    assert elapsed < 15, elapsed  # the 0.5 s timeout, once, plus the pipeline's own work on a busy machine
    usage = request.llm_usage
    assert usage.calls == 1 and usage.estimated and usage.prompt_tokens > 0  # unknown: estimated, never zero


def test_an_apology_is_never_published_as_the_summary(crew: Any) -> None:
    with OpenAIStub(FakeModel(summary=APOLOGY)) as stub:
        run = crew(stub)
        request = run.app.engine.submit(NEW_TEAM_GAP).request
        pr = gh_pull(run.app, request.pr_number)
        rejected = run.audit(request.id, "crew.pr_text_rejected")
    assert request.state is RequestState.published, request.error
    assert "sorry" not in pr.body.lower() and "final answer" not in pr.body
    assert "## Summary (written by code, because its summary failed validation: it reads as a refusal" in pr.body
    assert f"Adds the {request.spec.department.value} team `{request.spec.name}`" in pr.body
    assert rejected and "refusal" in rejected[0]["reason"]
    assert pr.title == "Add team d3_js_data_visualization for capability gap gap-d3"  # code's title too


def test_the_branch_is_not_asked_for_and_a_wrong_one_is_refused_then_code_writes_the_text(crew: Any) -> None:
    truncated = "auto/team-d3_js_data_visualization"  # the tiny model dropped the timestamp
    with OpenAIStub(FakeModel(publish_branches=[truncated] * 3, summary=APOLOGY)) as stub:
        run = crew(stub)
        request = run.app.engine.submit(NEW_TEAM_GAP).request
        pr = gh_pull(run.app, request.pr_number)
        refused = [a for a in run.actions(request.id) if a == ("tool.publish_pull_request", "failed")]
    assert request.state is RequestState.published, request.error
    author_prompt = json.dumps(stub.requests[2]["messages"])
    assert request.branch not in author_prompt and "{branch}" not in author_prompt
    assert refused  # the wrong branch never reached git
    assert set(remote_branches(bare(run.app))) == {"main", request.branch}
    assert "written by code, because" in pr.body and "sorry" not in pr.body.lower()
    assert_counted(request, stub)


def test_with_the_offline_fallback_a_failed_draft_still_finishes_the_request(crew: Any) -> None:
    with OpenAIStub(FakeModel(spec_overrides={"department": "astrology"})) as stub:
        run = crew(stub, llm_offline_fallback=True)
        request = run.app.engine.submit(NEW_TEAM_GAP).request
        pr = gh_pull(run.app, request.pr_number)
    assert request.state is RequestState.published, request.error
    assert request.drafter == "offline drafter (fallback: the LLM crew (openai/gpt-4o-mini) failed)"
    assert "Drafted by: offline drafter (fallback" in pr.body
    assert_counted(request, stub)  # the failed draft's calls count too
    assert request.llm_usage.calls == 3
