"""Shared fixtures: isolated settings, a store on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_automation.app import App, build_app
from devops_automation.quiet import silence_crewai
from devops_automation.settings import Settings
from devops_automation.store import Store, open_store

silence_crewai()

PG_ADMIN_URL = os.environ.get("DEVOPS_CREW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_CONFIG_VARS = ("DEVOPS_CREW_", "DATABASE_URL", "GITHUB_", "OPENAI_", "TARGET_REPO", "DISCORD_")


@pytest.fixture(autouse=True, scope="session")
def _crewai_locks_in_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """CrewAI's file locks (``crewai_core.lock_store``: one ``crewai:<md5>.lock`` per storage path) go to the
    system temp dir and stay there; every test's own state home made one more, ~800 a run. In this process
    they go to the session's own folder (pytest's, rotated)."""
    import hashlib

    import portalocker
    from crewai_core import lock_store

    folder = tmp_path_factory.mktemp("crewai-locks")

    def backend(name: str, *, timeout: float) -> portalocker.Lock:
        digest = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
        return portalocker.Lock(str(folder / f"{digest}.lock"), timeout=timeout)

    lock_store.set_lock_backend(backend)
    yield
    lock_store.set_lock_backend(None)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never inherit the developer's configuration, nor read a stray .env file."""
    for name in list(os.environ):
        if name.startswith(_CONFIG_VARS):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_settings(home: Path, **overrides: object) -> Settings:
    # forge_port 0: an in-process embedded forge takes a free port, and its links follow it (3131, the
    # default, may be held by another run's forge, whose pages the links would then reach)
    values: dict[str, object] = {"home": home, "cooldown_seconds": 0, "rate_limit_per_day": 1000, "forge_port": 0}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    """The whole application on embedded defaults: its own store, local forge and checkout."""
    built = build_app(settings)
    yield built
    built.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty database on the local PostgreSQL server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"devops_crew_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # environment problem, made loud rather than skipped
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({exc}); .ci/run starts it")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()
