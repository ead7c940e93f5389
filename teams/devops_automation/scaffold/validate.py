"""Validate a rendered team: all checks must pass before it may become a pull request.

The two checks that run outside this process start first and run while the in-process ones do:
``team_tests`` (the team's own pytest suite, in a forkserver child) and ``hadolint``. Then come
``layout``, ``python_compile``, ``registry``, ``config``, ``kubernetes_schema`` (strict, for the given
Kubernetes version), ``kubernetes_policy``, ``kustomization`` and ``dockerfile_policy``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel

from devops_automation.models import TeamSpec
from devops_automation.scaffold.checks import IN_PROCESS_CHECKS, check_kubernetes_schema
from devops_automation.scaffold.dockerfile import HadolintRun, check_dockerfile_policy
from devops_automation.scaffold.render import RenderedTeam
from devops_automation.scaffold.team_tests import TeamTestRun, warm_up

__all__ = ["ValidationReport", "validate_render", "warm_up"]


class ValidationReport(BaseModel):
    """The verdict on one render: ``ok`` only when ``errors`` is empty."""

    ok: bool
    errors: list[str]
    timings: dict[str, float]


def _timed(name: str, check: Callable[[], list[str]], timings: dict[str, float]) -> list[str]:
    started = time.perf_counter()
    try:
        return check()
    except Exception as exc:  # a crashing check is a failed check, never a pass
        return [f"{name}: crashed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"]
    finally:
        timings[name] = time.perf_counter() - started


def validate_render(
    rendered: RenderedTeam,
    spec: TeamSpec,
    kubernetes_version: str = "1.31",
    *,
    test_timeout: float = 120.0,
    beside: Callable[[], object] | None = None,
) -> ValidationReport:
    """Run every check over ``rendered`` (rendered from ``spec``) and report all failures at once.

    ``beside`` is the caller's own work to do while the out-of-process checks run, after the in-process
    ones and only if those all passed (the engine stages the commit there); what it raises is the
    caller's, raised after every check has ended (a child is never left running)."""
    root = rendered.root
    team = f"teams/{spec.name}"
    dockerfile = root / team / "Dockerfile"
    timings: dict[str, float] = {}
    errors: list[str] = []
    tests = TeamTestRun(root / team / "tests", f"{team}/tests")
    lint = HadolintRun(dockerfile, f"{team}/Dockerfile")
    try:
        for name, check in IN_PROCESS_CHECKS.items():
            errors += _timed(name, lambda check=check: check(root, spec), timings)
        errors += _timed("kubernetes_schema", lambda: check_kubernetes_schema(root, spec, kubernetes_version), timings)
        errors += _timed(
            "dockerfile_policy", lambda: check_dockerfile_policy(dockerfile, f"{team}/Dockerfile"), timings
        )
        if beside is not None and not errors:  # nothing is staged for a render already known invalid
            beside()
    finally:
        errors += lint.wait()
        timings["hadolint"] = lint.elapsed
        errors += tests.wait(test_timeout)
        timings["team_tests"] = tests.elapsed
    return ValidationReport(ok=not errors, errors=errors, timings=timings)
