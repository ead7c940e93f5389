"""The policy layer under attack: names, paths and branches that try to escape, and the limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_automation import policy
from devops_automation.policy import PolicyViolation

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "path",
    [
        "../../.github/workflows/x.yml",
        "teams/refunds/../../.github/workflows/ci.yml",
        "/etc/passwd",
        "teams/refunds/./team.yaml",
        "teams/refunds//team.yaml",
        "teams\\refunds\\team.yaml",
        "C:/teams/refunds/x",
        ".github/workflows/ci.yml",
        "teams/refunds/.github/workflows/ci.yml",
        "teams/refunds/.gitlab-ci.yml",
        "teams/refunds/Jenkinsfile",
        "teams/refunds/CODEOWNERS",
        "teams/refunds/.git/config",
        "teams/billing_ops/team.yaml",
        "teams/refunds_evil/team.yaml",
        "teams/refunds",
        "k8s/teams/other/deployment.yaml",
        "k8s/deployment.yaml",
        "README.md",
        "teams/refunds/x\x00.py",
        "",
    ],
)
def test_paths_outside_the_new_team_are_refused(path: str) -> None:
    with pytest.raises(PolicyViolation) as info:
        policy.check_path(path, "refunds")
    assert info.value.rule in {"path-allow-list", "protected-path"}


@pytest.mark.parametrize(
    "path", ["teams/refunds/team.yaml", "teams/refunds/agents/lead.py", "k8s/teams/refunds/deployment.yaml"]
)
def test_paths_inside_the_new_team_pass(path: str) -> None:
    assert str(policy.check_path(path, "refunds")) == path


@pytest.mark.parametrize(
    "branch",
    [
        "main",
        "master",
        "refs/heads/main",
        "auto/../main",
        "feature/x",
        "auto/team-x",
        "auto/team-refunds-2026",
        "auto/team-refunds-20261127T120000Z/../../main",
        "auto/team-Refunds-20261127T120000Z",
        "auto/team-refunds-20261127T120000Z@{0}",
        "AUTO/team-refunds-20261127T120000Z",
        " auto/team-refunds-20261127T120000Z",
    ],
)
def test_only_auto_team_branches_may_be_pushed(branch: str) -> None:
    with pytest.raises(PolicyViolation) as info:
        policy.check_branch(branch)
    assert info.value.rule == "branch"


def test_branch_name_has_the_documented_shape() -> None:
    assert policy.branch_name("refunds", NOW) == "auto/team-refunds-20261127T120000Z"
    assert policy.check_branch("refs/heads/auto/team-refunds-20261127T120000Z") == "auto/team-refunds-20261127T120000Z"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("github", "reserved-name"),
        ("main", "reserved-name"),
        ("kube_anything", "reserved-name"),
        ("billing_ops", "existing-team"),
        ("Bad-Name", "team-name"),
        ("../x", "team-name"),
    ],
)
def test_team_names_reserved_or_taken_are_refused(name: str, rule: str) -> None:
    with pytest.raises(PolicyViolation) as info:
        policy.check_team_name(name, {"billing_ops"})
    assert info.value.rule == rule
    assert info.value.remedy or rule == "team-name"


def test_rate_limit_counts_a_rolling_day() -> None:
    ledger = [NOW - timedelta(hours=h) for h in (1, 2, 3, 4, 5)]
    with pytest.raises(PolicyViolation) as info:
        policy.check_rate(ledger, limit=5, cooldown_seconds=0, now=NOW, request_id="req-abc")
    assert info.value.rule == "rate-limit"
    assert "`devops-crew approve req-abc --override --reason TEXT`" in info.value.remedy
    # One slot ages out of the window: a request may pass again.
    policy.check_rate([*ledger[:4], NOW - timedelta(hours=25)], limit=5, cooldown_seconds=0, now=NOW)


def test_cooldown_between_requests() -> None:
    with pytest.raises(PolicyViolation) as info:
        policy.check_rate([NOW - timedelta(seconds=30)], limit=5, cooldown_seconds=300, now=NOW)
    assert info.value.rule == "cooldown"
    # an absolute time: a stored remedy stays true when it is read later
    assert f"Retry after {NOW + timedelta(seconds=270):%Y-%m-%d %H:%M:%S} UTC" in info.value.remedy
    policy.check_rate([NOW - timedelta(seconds=301)], limit=5, cooldown_seconds=300, now=NOW)


def test_a_rate_limit_of_zero_means_no_new_teams() -> None:
    with pytest.raises(PolicyViolation) as info:
        policy.check_rate([], limit=0, cooldown_seconds=0, now=NOW)
    assert info.value.rule == "rate-limit" and "DEVOPS_CREW_RATE_LIMIT=0" in info.value.message


def test_two_requests_in_the_same_second_never_share_a_branch() -> None:
    first = policy.branch_name("refunds", NOW, request_id="req-aaaaaaaaaaaa")
    second = policy.branch_name("refunds", NOW, request_id="req-bbbbbbbbbbbb")
    assert first != second and first.startswith("auto/team-refunds-20261127T120000Z-")
    assert policy.check_branch(first) == first and policy.check_branch(second) == second
    assert policy.branch_name("refunds", NOW, request_id="req-aaaaaaaaaaaa") == first  # stable per request
