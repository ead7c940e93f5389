"""The real provider path: ChatOpenAI (langchain-openai) through the CrewAI adapter to an
OpenAI-compatible HTTP stub on 127.0.0.1, the whole request from gap to pull request on the local forge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_automation.app import App, build_app
from devops_automation.crew import build_crew_components
from devops_automation.crew.prompts import read_block
from devops_automation.errors import ConfigurationError
from devops_automation.models import RequestState, TeamSpec
from devops_automation.report import request_summary
from devops_automation.scaffold import validate as validation
from devops_automation.settings import Settings

from ..helpers import NEW_TEAM_GAP, bare, gh_pull, remote_branches
from .conftest import offline_app, stub_settings, wire
from .fake_model import FakeModel
from .openai_stub import API_KEY, OpenAIStub

pytestmark = pytest.mark.slow

BUDGET_CALLS, BUDGET_TOKENS = 4, 12_000


@pytest.fixture
def provider_app(tmp_path: Path, stub: OpenAIStub) -> Iterator[App]:
    app = build_app(stub_settings(tmp_path / "home", stub))  # DEVOPS_CREW_LLM set: app.py wires the crew
    assert app.engine.deps.reviser is not None and app.engine.deps.pr_writer is not None
    yield app
    app.close()


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


def test_a_gap_becomes_a_pull_request_through_the_openai_api(provider_app: App, stub: OpenAIStub) -> None:
    request = provider_app.engine.submit(NEW_TEAM_GAP).request
    assert request.state is RequestState.published, request.error
    assert stub.errors == []

    analyst, architect, author = stub.requests
    assert tool_names(analyst) == ["registry_lookup"] and "response_format" not in analyst
    assert analyst["model"] == "gpt-4o-mini" and analyst["temperature"] == 0.0
    assert tool_names(architect) == [] and architect["response_format"]["type"] == "json_schema"
    schema = architect["response_format"]["json_schema"]
    assert schema["name"] == "TeamSpec" and schema["strict"] is True
    assert set(schema["schema"]["required"]) == set(TeamSpec.model_fields)
    assert "OpenAPI schema" not in json.dumps(architect["messages"])  # the schema is sent once, natively
    assert tool_names(author) == ["publish_pull_request"]
    assert [r["choices"][0]["finish_reason"] for r in stub.responses] == ["tool_calls", "stop", "tool_calls"]

    # The request's usage is what the provider reported, call by call, priced from the settings table.
    usage = request.llm_usage
    assert usage.calls == len(stub.responses) == 3
    assert usage.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in stub.responses)
    assert usage.completion_tokens == sum(r["usage"]["completion_tokens"] for r in stub.responses)
    prompt_price, completion_price = provider_app.settings.llm_price("openai/gpt-4o-mini")
    expected = (usage.prompt_tokens * prompt_price + usage.completion_tokens * completion_price) / 1e6
    assert usage.cost_usd == pytest.approx(expected, abs=2e-6)
    assert usage.calls <= BUDGET_CALLS and usage.prompt_tokens + usage.completion_tokens < BUDGET_TOKENS

    assert request_summary(request)["llm_usage"] == usage.model_dump()  # what `status --json` prints
    pr = gh_pull(provider_app, request.pr_number)
    assert pr.title == f"Add team {request.spec.name} for the reported gap"
    assert f"LLM use so far: 3 calls, {usage.prompt_tokens} prompt" in pr.body
    assert f"${usage.cost_usd:.4f}" in pr.body
    assert set(remote_branches(bare(provider_app))) == {"main", request.branch}


def test_the_scaffolder_revises_through_a_tool_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = validation.validate_render

    def strict_validator(rendered: Any, spec: TeamSpec, **kwargs: Any) -> validation.ValidationReport:
        report = real(rendered, spec, **kwargs)
        if any(a.role == "flaky_specialist" for a in spec.agents):
            return validation.ValidationReport(ok=False, errors=["team_tests: flaky_specialist fails"], timings={})
        return report

    monkeypatch.setattr(validation, "validate_render", strict_validator)
    flaky = {"role": "flaky_specialist", "goal": "Flake.", "backstory": "Flaky.", "skills": ["flakes"]}
    with OpenAIStub(FakeModel(extra_agents=[flaky])) as stub:
        settings = stub_settings(tmp_path / "home", stub)
        app = offline_app(settings)
        try:
            wire(app, build_crew_components(settings, app.auditor, app.target))
            request = app.engine.submit(NEW_TEAM_GAP).request
        finally:
            app.close()
    assert request.state is RequestState.published and request.revisions == 1, request.error
    assert [tool_names(b) for b in stub.requests] == [
        ["registry_lookup"],
        [],
        ["scaffold_team"],
        ["publish_pull_request"],
    ]
    revision = stub.requests[2]
    prompt = "\n".join(str(m.get("content") or "") for m in revision["messages"])
    assert read_block(prompt, "errors") == ["team_tests: flaky_specialist fails"]
    call = stub.responses[2]["choices"][0]["message"]["tool_calls"][0]
    assert "flaky_specialist" not in call["function"]["arguments"]
    assert request.llm_usage.calls == 4


def test_a_wrong_api_key_fails_the_request_without_leaking_the_key(tmp_path: Path, stub: OpenAIStub) -> None:
    wrong = "sk-wrong-key-0123456789abcdefghij"
    settings = stub_settings(tmp_path / "home", stub, openai_api_key=wrong, llm_max_retries=0)
    app = offline_app(settings)
    try:
        wire(app, build_crew_components(settings, app.auditor, app.target))
        request = app.engine.submit(NEW_TEAM_GAP).request
        assert request.state is RequestState.failed and request.resume_state is RequestState.analysed
        assert "AuthenticationError" in request.error and wrong not in request.error
        assert "Incorrect API key provided: [REDACTED]" in request.error  # the server echoed it
        assert all(wrong not in r.detail and wrong not in r.target for r in app.store.iter_audit())
    finally:
        app.close()


def test_an_unreachable_provider_fails_the_request_resumably(tmp_path: Path) -> None:
    settings = stub_settings(tmp_path / "home", "http://127.0.0.1:9/v1", llm_max_retries=0)
    app = offline_app(settings)
    try:
        wire(app, build_crew_components(settings, app.auditor, app.target))
        request = app.engine.submit(NEW_TEAM_GAP).request
        assert request.state is RequestState.failed and "Connection" in request.error
        assert set(remote_branches(bare(app))) == {"main"}
    finally:
        app.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"llm": "anthropic/claude-3-5-haiku"}, "only openai/<model> is built in"),
        ({"openai_api_key": None, "openai_base_url": None}, "needs OPENAI_API_KEY"),
    ],
)
def test_an_unusable_llm_configuration_is_refused_up_front(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    settings = stub_settings(tmp_path / "home", "http://127.0.0.1:9/v1", **overrides)
    app = offline_app(settings)
    try:
        with pytest.raises(ConfigurationError, match=message):
            build_crew_components(settings, app.auditor, app.target)
    finally:
        app.close()


def test_without_an_llm_the_offline_drafter_says_so(settings: Settings) -> None:
    app = offline_app(settings)
    try:
        assert settings.llm is None and app.engine.deps.drafter.label == "offline drafter (no LLM configured)"
    finally:
        app.close()


def test_the_key_is_sent_as_a_bearer_token_only(provider_app: App, stub: OpenAIStub) -> None:
    provider_app.engine.submit(NEW_TEAM_GAP)
    assert stub.requests and all(API_KEY not in json.dumps(body) for body in stub.requests)


def test_an_invalid_structured_reply_fails_the_draft_and_is_still_counted(tmp_path: Path) -> None:
    with OpenAIStub(FakeModel(spec_overrides={"department": "astrology", "agents": []})) as stub:
        settings = stub_settings(tmp_path / "home", stub)
        app = offline_app(settings)
        try:
            wire(app, build_crew_components(settings, app.auditor, app.target))
            request = app.engine.submit(NEW_TEAM_GAP).request
            failed = [
                json.loads(r.detail)
                for r in app.store.iter_audit(request.id)
                if (r.action, r.phase) == ("crew.draft", "failed")
            ]
        finally:
            app.close()
    assert request.state is RequestState.failed
    assert "TeamSpec is invalid" in request.error and "unknown department" in request.error
    assert len(stub.requests) == 2 and failed[0]["usage"]["calls"] == 2
    assert failed[0]["usage"]["prompt"] == sum(r["usage"]["prompt_tokens"] for r in stub.responses)
    assert request.llm_usage.calls == 2  # the failed step's calls count on the request too
    assert request.llm_usage.prompt_tokens == failed[0]["usage"]["prompt"]


@pytest.mark.parametrize("mode", ["none", "total_only"])
def test_a_server_that_reports_little_usage_is_estimated_never_zero(tmp_path: Path, mode: str) -> None:
    """Servers that send no ``usage``, or only ``total_tokens``: every call counts, the tokens are what was
    reported plus estimates, and the PR says the figures are estimated."""
    with OpenAIStub() as stub:
        stub.usage_mode = mode
        app = build_app(stub_settings(tmp_path / "home", stub))
        try:
            request = app.engine.submit(NEW_TEAM_GAP).request
            body = gh_pull(app, request.pr_number).body if request.pr_number else ""
        finally:
            app.close()
    assert request.state is RequestState.published, request.error
    usage = request.llm_usage
    assert usage.calls == len(stub.requests) >= 3
    assert usage.estimated and usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.cost_usd > 0
    if mode == "total_only":
        reported = sum(r["usage"]["total_tokens"] for r in stub.responses)
        assert usage.prompt_tokens + usage.completion_tokens == reported  # what was reported is used as is
    assert "(estimated: the server did not report all of its usage)" in body
    assert "$0.0000" not in body


def test_a_structured_reply_cut_off_at_the_length_limit_is_counted(tmp_path: Path) -> None:
    """The SDK raises on a reply cut off at the length limit before LangChain reports its usage: the
    call still counts, with the usage the server reported."""
    with OpenAIStub() as stub:
        stub.cut_off_structured = 5  # every attempt at the spec is cut off
        settings = stub_settings(tmp_path / "home", stub)
        app = offline_app(settings)
        try:
            wire(app, build_crew_components(settings, app.auditor, app.target))
            request = app.engine.submit(NEW_TEAM_GAP).request
        finally:
            app.close()
    assert request.state is RequestState.failed, request.state
    assert request.llm_usage.calls == len(stub.requests) >= 2, (request.llm_usage, len(stub.requests))
    reported = sum(r["usage"]["prompt_tokens"] for r in stub.responses)
    assert request.llm_usage.prompt_tokens == reported and not request.llm_usage.estimated


def test_tool_arguments_that_are_not_an_object_are_still_counted(tmp_path: Path) -> None:
    """LangChain cannot parse tool arguments that are a JSON array; the calls that carried them count."""
    with OpenAIStub() as stub:
        stub.bad_tool_args = 2
        app = build_app(stub_settings(tmp_path / "home", stub))
        try:
            request = app.engine.submit(NEW_TEAM_GAP).request
        finally:
            app.close()
    assert request.state in {RequestState.published, RequestState.failed}
    assert request.llm_usage.calls == len(stub.requests) >= 1, (request.llm_usage, len(stub.requests))
    assert request.llm_usage.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in stub.responses)
