"""Gap-to-PR time on embedded defaults, in one process, beside its floor, and the CLI's --help time.

    .venv/bin/python bench/pipeline.py --gaps 20

For each gap, in turn and in the same process: the product (``engine.submit``: analyse, draft, gate,
render, validate, commit, push, pull request on the embedded forge), then the floor: the same template
rendered by bare cookiecutter with the same context, and the same files committed with GitPython and
pushed to a local bare repository. Prints medians (the first gap, which starts the validation worker,
apart), the ratio, the team-test time per gap, and the median wall time of `devops-crew --help`.
Targets (issues 2 and 12): median under 1.5 s per gap and at most 2x the floor; --help under 0.5 s.

This module's top level imports only the standard library, on purpose: the generated team's tests run
in forkserver children, and every child imports the parent's main module again as ``__mp_main__``. The
shipped entry point (the ``devops-crew`` script) is a few lines; a benchmark whose main module imported
the product at the top would make each child import it again and overstate the per-gap cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")

# Skills no seed team lists (data_engineering has dbt, python, sql, airflow, etl): each gap is a new team,
# never the matcher's triage of a possible reuse.
SKILLS = [
    "graphql",
    "kafka",
    "terraform",
    "pandas",
    "react",
    "rust",
    "spark",
    "kotlin",
    "swift",
    "redis",
    "elasticsearch",
    "figma",
    "tableau",
    "salesforce",
    "hubspot",
    "jira",
    "pytorch",
    "go",
    "scala",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Floor:
    """The same work by the bare libraries: cookiecutter render, GitPython commit, push to a local bare repo."""

    def __init__(self, root: Path, forge_url: str, forge_env: dict[str, str]) -> None:
        from git import Actor, Repo

        from devops_automation.forge.fake import FakeForge
        from devops_automation.registry import SEED_DIR

        self.root = root
        bare = root / "floor.git"
        FakeForge(bare, seed=SEED_DIR)  # a bare repo seeded like the product's target
        self.repo = Repo.clone_from(str(bare), root / "floor-clone")
        self.repo.create_remote("forge", forge_url)  # the product's own target, over HTTP
        self.forge_env = forge_env
        self.bot = Actor("floor", "floor@example.invalid")

    def push_over_http(self, branch: str) -> float:
        """Seconds to push the floor's last commit to the embedded forge over HTTP, as the product does."""
        start = time.perf_counter()
        with self.repo.git.custom_environment(**self.forge_env):
            self.repo.git.push("-q", "forge", f"{branch}:refs/heads/{branch}")
        return time.perf_counter() - start

    def once(self, spec: Any, gap: Any, owner: str, branch: str) -> tuple[float, int]:
        """Seconds for one render + commit + push, and the number of files."""
        from cookiecutter.main import cookiecutter

        from devops_automation.scaffold.render import TEMPLATE_DIR, build_context

        out = Path(tempfile.mkdtemp(dir=self.root))
        start = time.perf_counter()
        result = Path(
            cookiecutter(
                str(TEMPLATE_DIR),
                no_input=True,
                extra_context=build_context(spec, gap, owner),
                output_dir=str(out),
                default_config={"replay_dir": f"{out}/.replay", "cookiecutters_dir": f"{out}/.templates"},
            )
        )
        files = sorted(p.relative_to(result).as_posix() for p in result.rglob("*") if p.is_file())
        work = Path(str(self.repo.working_tree_dir))
        self.repo.git.checkout("-q", "-B", branch, "origin/main")
        for rel in files:
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result / rel, work / rel)
        self.repo.index.add(files)
        self.repo.index.commit(f"floor {branch}", author=self.bot, committer=self.bot)
        self.repo.git.push("-q", "origin", f"{branch}:{branch}")
        elapsed = time.perf_counter() - start
        shutil.rmtree(out, ignore_errors=True)
        return elapsed, len(files)


def bench_pipeline(gaps: int) -> None:
    from devops_automation.app import build_app
    from devops_automation.engine import Hooks
    from devops_automation.models import CapabilityGap
    from devops_automation.scaffold import validate
    from devops_automation.scaffold.team_tests import spare_ready
    from devops_automation.settings import Settings

    team_tests: list[float] = []
    checks: dict[str, list[float]] = {}
    steps: dict[str, list[float]] = {}

    def on_step(step: str, seconds: float, *_: Any) -> None:
        steps.setdefault(step, []).append(seconds)

    original = validate.validate_render

    def timed_validate(*args: Any, **kwargs: Any) -> Any:
        report = original(*args, **kwargs)
        team_tests.append(report.timings.get("team_tests", 0.0))
        for name, seconds in report.timings.items():
            checks.setdefault(name, []).append(seconds)
        return report

    validate.validate_render = timed_validate  # type: ignore[assignment]  # read-only spy: the timings
    home = Path(tempfile.mkdtemp(prefix="devops-crew-bench-"))
    try:
        settings = Settings(_env_file=None, home=home, cooldown_seconds=0, rate_limit_per_day=10_000)
        app = build_app(settings, hooks=Hooks(on_step=on_step))
        if not app.forge.embedded:  # GITHUB_TOKEN in the environment: never publish benchmark teams there
            app.close()
            raise SystemExit("bench/pipeline.py runs against the embedded forge only: unset GITHUB_TOKEN")
        # The same product with render validation off (DEVOPS_CREW_VALIDATE_RENDER=false): what the pipeline
        # pays apart from running the generated team's checks and tests, which the floor does not do.
        unvalidated = build_app(
            Settings(
                _env_file=None, home=home / "unvalidated", cooldown_seconds=0, rate_limit_per_day=10_000,
                validate_render=False,
            )
        )
        floor = Floor(home, app.forge.git_remote(), app.forge.git_env())
        times, floors, files, floor_files, http_pushes, bare_times = [], [], [], [], [], []
        for i in range(gaps):
            a, b = SKILLS[i % len(SKILLS)], SKILLS[(i * 7 + 3) % len(SKILLS)]
            gap = CapabilityGap(
                description=f"Bench gap {i}: tasks need {a} and {b} expertise",
                required_skills=[a, b, f"bench skill {i}"],
                proposed_name=f"bench_team_{i}",
            )
            start = time.perf_counter()
            request = app.engine.submit(gap).request
            times.append(time.perf_counter() - start)
            if request.state.value != "published":
                raise SystemExit(f"gap {i} ended {request.state.value}: {request.error or request.decision}")
            files.append(len(request.files))
            owner = request.gap.requesting_team or "platform-team"
            # The next run's spare child warms up after the team tests (about 100 ms of CPU): let it finish
            # before the floor is timed, so the floor never shares the machine with the product's work.
            spare_ready(30)
            seconds, count = floor.once(request.spec, request.gap, owner, f"floor/{request.spec.name}")
            floors.append(seconds)
            floor_files.append(count)
            http_pushes.append(floor.push_over_http(f"floor/{request.spec.name}"))
            start = time.perf_counter()
            other = unvalidated.engine.submit(gap.model_copy(update={"proposed_name": f"bench_nv_team_{i}"})).request
            bare_times.append(time.perf_counter() - start)
            if other.state.value != "published":
                raise SystemExit(f"gap {i} (unvalidated) ended {other.state.value}: {other.error}")
        app.close()
        unvalidated.close()
    finally:
        validate.validate_render = original  # type: ignore[assignment]
        shutil.rmtree(home, ignore_errors=True)
    warm, warm_floor = times[1:] or times, floors[1:] or floors
    median, floor_median = statistics.median(warm), statistics.median(warm_floor)
    print(f"pipeline: {gaps} gaps, first gap {times[0]:.3f} s (starts the validation worker)")
    print(
        f"pipeline: median {median:.3f} s per gap, p95 {percentile(warm, 0.95):.3f} s "
        f"(target: median < 1.5 s and <= 2x the floor)"
    )
    print(
        f"floor:    median {floor_median:.3f} s per gap, p95 {percentile(warm_floor, 0.95):.3f} s "
        f"(bare cookiecutter render + GitPython commit + push to a local bare repo, same files)"
    )
    print(f"ratio:    pipeline / floor = {median / floor_median:.2f}x")
    unchecked = statistics.median(bare_times[1:] or bare_times)
    print(
        f"pipeline: with render validation off, median {unchecked:.3f} s per gap = {unchecked / floor_median:.2f}x"
        f" the floor (validation: the generated team's checks and its own tests, which the floor does not run)"
    )
    http = statistics.median(http_pushes[1:] or http_pushes)
    print(
        f"floor:    the same commit pushed over HTTP to the embedded forge instead: {http * 1000:.0f} ms per push"
        f" (the product's transport; the floor's local push is part of its median above)"
    )
    print(
        f"pipeline: files per gap: {statistics.median(files):.0f} (floor: {statistics.median(floor_files):.0f}); "
        f"team tests median {statistics.median(team_tests[1:] or team_tests) * 1000:.0f} ms per gap"
    )
    per_step = ", ".join(f"{step} {statistics.median(t[1:] or t) * 1000:.0f}" for step, t in steps.items())
    print(f"pipeline: step medians in ms, named by the state each step starts from: {per_step}")
    by_check = ", ".join(
        f"{name} {statistics.median(t[1:] or t) * 1000:.0f}"
        for name, t in sorted(checks.items(), key=lambda item: -statistics.median(item[1]))
    )
    print(f"pipeline: validation checks in ms (team_tests and hadolint run beside the others): {by_check}")


def bench_help(runs: int) -> None:
    exe = Path(sys.executable).with_name("devops-crew")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(exe), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"cli: `devops-crew --help` median {statistics.median(times):.3f} s over {runs} runs (target < 0.5 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaps", type=int, default=20)
    parser.add_argument("--help-runs", type=int, default=10)
    args = parser.parse_args()
    bench_help(args.help_runs)
    bench_pipeline(args.gaps)


if __name__ == "__main__":
    main()
