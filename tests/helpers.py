"""Test helpers shared by pipeline and CLI tests: reading what really landed in the target repo."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from git import Repo

from devops_automation.app import App
from devops_automation.models import CapabilityGap
from devops_automation.service import CrewService
from devops_automation.settings import Settings

from .conftest import make_settings

NEW_TEAM_GAP = CapabilityGap(
    id="gap-d3",
    description="8 tasks need interactive d3.js charts for the quarterly dashboards",
    required_skills=["d3.js", "data visualization"],
    requesting_team="analytics",
)
COVERED_GAP = CapabilityGap(
    id="gap-support",
    description="Customers wait days for answers to their support tickets",
    required_skills=["ticket triage", "customer communication"],
)


def new_gap(n: int) -> CapabilityGap:
    return CapabilityGap(
        id=f"gap-n{n}",
        description=f"Gap number {n} needs kotlin and swift apps",
        required_skills=["kotlin", "swift"],
        proposed_name=f"mobile_team_{n}",
    )


def remote_branches(bare: Path) -> dict[str, str]:
    repo = Repo(bare)
    return {h.name: h.commit.hexsha for h in repo.heads}


def changed_paths(bare: Path, branch: str, base: str = "main") -> list[str]:
    repo = Repo(bare)
    return sorted(repo.git.diff("--name-only", f"{base}...{branch}").splitlines())


def bare(app: App) -> Path:
    """The target repository's bare repo inside the embedded forge."""
    server = app.forge.server  # type: ignore[attr-defined]
    assert server is not None
    return server.repo_path(app.settings.target_repo)


def pull_count(app: App) -> int:
    return app.forge.repo.get_pulls(state="all").totalCount


def gh_pull(app: App, number: int) -> Any:
    """The PyGithub pull request, to play a reviewer (merge, close) or read what GitHub shows."""
    return app.forge.repo.get_pull(number)  # type: ignore[attr-defined]


def forge_approve(app: App, number: int, reviewer: str = "rita") -> None:
    """``reviewer``, a collaborator who is not the author, approves pull request ``number`` on the embedded
    forge with a token of their own (its protection needs an approval from someone other than the crew)."""
    from github import Auth, Github

    server = app.forge.server  # type: ignore[attr-defined]
    server.add_user(reviewer, token=f"{reviewer}-forge-token")
    as_reviewer = Github(base_url=server.base_url, auth=Auth.Token(f"{reviewer}-forge-token"))
    as_reviewer.get_repo(app.settings.target_repo).get_pull(number).create_review(event="APPROVE")


def review_and_pass_ci(app: App, number: int, reviewer: str = "rita") -> Any:
    """Play GitHub's other side for a merge into the embedded target's protected base: CI reports ``ci``
    success on the pull request's head and ``reviewer`` approves it; the PyGithub pull request, to merge."""
    server = app.forge.server  # type: ignore[attr-defined]
    server.set_status(app.settings.target_repo, gh_pull(app, number).head.sha, "success", context="ci")
    forge_approve(app, number, reviewer)
    return gh_pull(app, number)


def swap(app: App, **changes: Any) -> None:
    """Replace engine dependencies (drafter, reviser, pr_writer) for a test."""
    app.engine.deps = dataclasses.replace(app.engine.deps, **changes)


def fast_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings on the fake forge (a real bare repository) with render validation off: runs in seconds."""
    values: dict[str, object] = {"forge": "fake", "validate_render": False}
    values.update(overrides)
    return make_settings(tmp_path / "home", **values)


def service_for(tmp_path: Path, **overrides: object) -> CrewService:
    """A service over :func:`fast_settings`."""
    return CrewService(fast_settings(tmp_path, **overrides))
