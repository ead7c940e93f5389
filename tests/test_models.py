"""Models refuse bad input with a message that names the field and the reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from devops_automation.models import (
    AgentSpec,
    CapabilityGap,
    InvalidTransition,
    RequestState,
    TaskSpec,
    TeamSpec,
    check_transition,
)


def agent(role: str, manager: bool = False) -> AgentSpec:
    return AgentSpec(role=role, goal="g", backstory="b", skills=["x"], is_manager=manager)


def spec(**overrides: object) -> TeamSpec:
    values: dict[str, object] = {
        "name": "refund_handling",
        "description": "Handles refunds",
        "department": "support",
        "agents": [agent("lead", True), agent("refunder")],
        "tasks": [TaskSpec(name="refund", description="d", expected_output="o", agent="refunder")],
        "monthly_cost_usd": 20,
    }
    values.update(overrides)
    return TeamSpec(**values)


def error_text(exc: ValidationError) -> str:
    return "\n".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def test_valid_spec_parses_and_derives_names() -> None:
    team = spec()
    assert team.manager.role == "lead"
    assert team.k8s_name == "refund-handling"


@pytest.mark.parametrize(
    ("agents", "expected"),
    [
        ([agent("a1"), agent("a2")], "exactly one manager"),
        ([agent("a1", True), agent("a2", True)], "found a1, a2"),
        ([], "at least one agent"),
        ([agent("lead", True)] + [agent(f"a{i}") for i in range(12)], "at most 12 agents"),
        ([agent("lead", True), agent("lead")], "repeated: lead"),
    ],
)
def test_team_composition_is_checked(agents: list[AgentSpec], expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec(agents=agents, tasks=[TaskSpec(name="task_one", description="d", expected_output="o", agent="lead")])
    text = error_text(info.value)
    assert text.startswith("agents")
    assert expected in text


def test_unknown_department_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError) as info:
        spec(department="astrology")
    text = error_text(info.value)
    assert "department" in text and "astrology" in text and "engineering" in text


@pytest.mark.parametrize("name", ["../../.github/workflows/x", "Main", "a", "x" * 41, "team-name", "tëam", "a;rm -rf"])
def test_team_names_are_slugs(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec(name=name)
    assert error_text(info.value).startswith("name")


def test_task_must_point_at_a_real_agent() -> None:
    with pytest.raises(ValidationError, match="unknown agent 'ghost'"):
        spec(tasks=[TaskSpec(name="task_one", description="d", expected_output="o", agent="ghost")])


def test_gap_description_limits() -> None:
    with pytest.raises(ValidationError) as info:
        CapabilityGap(description="   ")
    assert error_text(info.value).startswith("description")
    with pytest.raises(ValidationError) as info:
        CapabilityGap(description="x" * 50_000)
    assert "at most 10000 characters" in error_text(info.value)
    with pytest.raises(ValidationError, match="control characters"):
        CapabilityGap(description="hello\x1b[31m")


def test_gap_id_is_stable_and_skills_normalised() -> None:
    one = CapabilityGap(description="Nobody can handle  refunds", required_skills=["Stripe ", "REFUNDS", "stripe"])
    two = CapabilityGap(description="nobody can handle refunds", required_skills=["refunds", "stripe"])
    assert one.required_skills == ["Stripe", "REFUNDS"]  # as typed, first spelling of each kept
    assert one.id == two.id and one.id.startswith("gap-")
    assert CapabilityGap(description="something else").id != one.id


@pytest.mark.parametrize("skill", ["$(rm -rf /)", "<script>", "x" * 61])
def test_hostile_skills_are_refused(skill: str) -> None:
    with pytest.raises(ValidationError, match="required_skills"):
        CapabilityGap(description="d", required_skills=[skill])


def test_state_machine_refuses_skipping_steps() -> None:
    check_transition(RequestState.drafted, RequestState.approved_by_policy)
    with pytest.raises(InvalidTransition):
        check_transition(RequestState.received, RequestState.published)
    with pytest.raises(InvalidTransition):
        check_transition(RequestState.drafted, RequestState.scaffolded)
    with pytest.raises(InvalidTransition):
        check_transition(RequestState.reuse_existing, RequestState.drafted)
