"""Run a rendered team's own tests in a fresh child forked from a warm forkserver.

Importing crewai costs about 3 s, so the forkserver preloads crewai and pytest once; every run is
then a fork of that server: cheap, and a clean interpreter, so two teams' modules never meet. The
child runs ``pytest.main`` on the team's ``tests`` folder (importlib import mode, the team folder as
rootdir, no cache, no bytecode written into the render) and sends back its exit code and output.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "OTEL_SDK_DISABLED": "true",
}
# The A2A side of a generated team's tests (server.py, tests/test_a2a.py) is preloaded too.
PRELOAD = ["yaml", "pytest", "crewai", "httpx", "a2a.client", "a2a.server.apps", "a2a.server.tasks", __name__]
OUTPUT_TAIL_CHARS = 20_000

_context_lock = threading.Lock()
_context: BaseContext | None = None


def forkserver_context() -> BaseContext:
    """The forkserver context, configured (offline env, preload) and its server started.

    The server imports crewai, which writes a settings folder and a credentials key under ``$HOME``:
    it is started with ``HOME`` (and the XDG directories) pointing at a private temporary folder, so
    nothing lands in the user's home. The forkserver is one per process: if other code started it
    earlier without this preload, runs stay correct but each child imports crewai itself.
    """
    global _context
    with _context_lock:
        if _context is None:
            os.environ.update(OFFLINE_ENV)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _start_server_away_from_home()
            _context = context
        return _context


_HOME_VARS = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")


def _start_server_away_from_home() -> None:
    from multiprocessing import forkserver

    private = tempfile.mkdtemp(prefix="devops-crew-validation-home-")
    atexit.register(shutil.rmtree, private, True)
    saved = {name: os.environ.get(name) for name in _HOME_VARS}
    os.environ.update(
        HOME=private,
        XDG_CONFIG_HOME=f"{private}/.config",
        XDG_DATA_HOME=f"{private}/.local/share",
        XDG_CACHE_HOME=f"{private}/.cache",
    )
    try:
        forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _noop() -> None:
    """Child body used to start the forkserver."""


def warm_up(timeout: float = 120.0) -> float:
    """Start the forkserver (it imports crewai and pytest once); returns the seconds it took."""
    started = time.perf_counter()
    process = forkserver_context().Process(target=_noop, name="scaffold-warm-up")
    process.start()
    process.join(timeout)
    return time.perf_counter() - started


def pytest_args(tests_dir: Path) -> list[str]:
    """The pytest command line for one team: isolated from any surrounding project's config."""
    team_dir = tests_dir.parent
    return [
        str(tests_dir),
        "-q",
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",
        f"--rootdir={team_dir}",
        f"--confcutdir={team_dir}",
        "-c",
        os.devnull,
        "--color=no",
        "-W",
        "ignore::DeprecationWarning",
    ]


SECRET_NAMES = frozenset({"GITHUB_TOKEN", "OPENAI_API_KEY", "DATABASE_URL", "OPENAI_BASE_URL"})
SECRET_SUFFIXES = ("_TOKEN", "_API_KEY", "_PASSWORD", "_SECRET")


def _child(tests_dir: str, conn: Connection) -> None:
    """Forkserver child: run pytest on ``tests_dir`` with fd 1/2 captured, send ``(exit code, output)``."""
    sys.dont_write_bytecode = True  # nothing may be written into the rendered tree
    # Everything inherited from the server (crewai's big heap) is long-lived: keep it out of the
    # collections pytest forces at exit, which would otherwise take ~0.3 s.
    gc.freeze()
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # A generated team's tests are code we just wrote from untrusted input: they get no credentials.
    for name in [n for n in os.environ if n.endswith(SECRET_SUFFIXES) or n in SECRET_NAMES]:
        del os.environ[name]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryDirectory(prefix="team-tests-") as data:
        os.environ["XDG_DATA_HOME"] = data  # crewai keeps a task-output database under it
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            import pytest

            code = int(pytest.main(pytest_args(Path(tests_dir))))
        except BaseException as exc:  # report anything, including SystemExit, to the parent
            print(f"pytest crashed: {exc!r}")
            code = -1
        sys.stdout.flush()
        sys.stderr.flush()
        out.seek(0)
        output = out.read().decode(errors="replace")
    conn.send((code, output[-OUTPUT_TAIL_CHARS:]))
    conn.close()


def summarise(label: str, code: int, output: str) -> list[str]:
    """One error line per failed test (pytest's ``FAILED``/``ERROR`` lines), or one for the run."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    tail = lines[-1] if lines else "no output"
    if failures:
        return [f"team_tests: {label}: {' '.join(line.split())[:400]}" for line in failures]
    return [f"team_tests: {label}: pytest exit code {code}: {tail[:400]}"]


class TeamTestRun:
    """One team's tests running in a forkserver child; :meth:`wait` collects the result."""

    def __init__(self, tests_dir: Path, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()
        self.elapsed = 0.0
        self.output = ""
        context = forkserver_context()
        self._recv, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child, args=(str(tests_dir.resolve()), send), name="scaffold-team-tests", daemon=True
        )
        self._process.start()
        send.close()

    def wait(self, timeout: float = 120.0) -> list[str]:
        """Errors (empty when every test passed); kills the child after ``timeout`` seconds."""
        try:
            return self._collect(timeout)
        finally:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
            self._recv.close()
            self.elapsed = time.perf_counter() - self.started

    def _collect(self, timeout: float) -> list[str]:
        if not self._recv.poll(timeout):
            return [f"team_tests: {self.label}: timed out after {timeout:.0f}s"]
        try:
            code, self.output = self._recv.recv()
        except EOFError:
            self._process.join(5)
            return [f"team_tests: {self.label}: the test process died (exit {self._process.exitcode})"]
        if code == 0:
            return []
        return summarise(self.label, code, self.output)
