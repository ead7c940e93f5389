"""Fixtures for the local forge's tests: GitHub's OpenAPI description, a running forge, PyGithub, git.

Every forge made by the ``forge`` fixture reports each request and response to the session's
:class:`SpecChecker`; when the test ends, every API response it gave is checked against GitHub's schema,
and any violation outside the allow-list fails the test (as an error in teardown).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from github import Auth, Github
from spec_check import SpecChecker, ensure_spec

from localforge import Exchange, LocalForge

TOKEN = "lf-test-token-0123456789"
REPO = "acme/teams"

# Filled by the timing tests, printed at the end of the run.
TIMINGS: dict[str, float] = {}
ALLOWED_HITS: list[str] = []


@pytest.fixture(scope="session")
def github_spec() -> dict[str, Any]:
    """GitHub's REST description, installed with npm on first use and parsed once per session."""
    try:
        path = ensure_spec()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def spec_checker(github_spec: dict[str, Any]) -> SpecChecker:
    return SpecChecker(github_spec)


def write_seed(directory: Path) -> Path:
    """The target monorepo's starting content: CODEOWNERS, one team, a README."""
    (directory / "teams" / "platform").mkdir(parents=True)
    (directory / "CODEOWNERS").write_text("* @acme/platform\nteams/ @alice\n")
    (directory / "README.md").write_text("# Teams monorepo\n")
    (directory / "teams" / "platform" / "team.yaml").write_text("name: platform\nowner: alice\n")
    return directory


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    return write_seed(tmp_path / "seed")


class ForgeUnderTest:
    """A started forge plus everything it answered during the test."""

    def __init__(self, forge: LocalForge) -> None:
        self.forge = forge
        self.exchanges: list[Exchange] = []
        forge.add_observer(self.exchanges.append)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.forge, name)


@pytest.fixture
def forge(tmp_path: Path, seed_dir: Path, spec_checker: SpecChecker) -> Iterator[ForgeUnderTest]:
    lf = LocalForge(tmp_path / "forge-data", token=TOKEN)
    lf.add_user("alice", name="Alice", email="alice@example.com")
    lf.add_user("bob")
    lf.add_team("acme", "platform", "Platform")
    lf.create_repo(REPO, seed_from=seed_dir, description="All the teams")
    lf.start()
    under_test = ForgeUnderTest(lf)
    yield under_test
    lf.close()
    problems = [p for ex in under_test.exchanges for p in spec_checker.check(ex)]
    ALLOWED_HITS.extend(spec_checker.allowed_hits)
    spec_checker.allowed_hits.clear()
    if problems:
        pytest.fail(f"{len(problems)} response(s) do not match GitHub's schema:\n" + "\n".join(problems[:60]))


def make_github(forge: ForgeUnderTest | LocalForge, token: str = TOKEN, **kwargs: Any) -> Github:
    """PyGithub without its client-side throttle (0.25 s per request, 1 s per write by default)."""
    kwargs.setdefault("seconds_between_requests", 0)
    kwargs.setdefault("seconds_between_writes", 0)
    return Github(base_url=forge.base_url, auth=Auth.Token(token), **kwargs)


@pytest.fixture
def gh(forge: ForgeUnderTest) -> Github:
    return make_github(forge)


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Crew Bot",
    "GIT_AUTHOR_EMAIL": "bot@example.com",
    "GIT_COMMITTER_NAME": "Crew Bot",
    "GIT_COMMITTER_EMAIL": "bot@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV}, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


Pusher = Callable[..., str]


@pytest.fixture
def push(forge: ForgeUnderTest, tmp_path: Path) -> Pusher:
    """``push(branch, files, base="main", message=...)``: commit files on top of ``base`` and
    ``git push`` the commit to the bare repository by its path (file transport); returns the sha."""
    counter = iter(range(10_000))

    def _push(
        branch: str, files: dict[str, str | None], base: str = "main", message: str = "change", full_name: str = REPO
    ) -> str:
        work = tmp_path / f"work-{next(counter)}"
        remote = str(forge.repo_path(full_name))
        git("clone", "--quiet", "--branch", base, remote, str(work))
        for name, content in files.items():
            target = work / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "-m", message, cwd=work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    return _push


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("local forge timings (PyGithub, throttle off)")
        for name, value in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {value * 1000:.1f} ms")
    if ALLOWED_HITS:
        terminalreporter.section("local forge: allow-listed schema differences seen")
        for line in sorted(set(ALLOWED_HITS))[:20]:
            terminalreporter.write_line(line)
