"""Run a rendered team's own tests in a fresh child forked from a warm forkserver.

Importing crewai costs about 3 s, so the forkserver preloads crewai, pytest and pytest's plugins once;
every run is then a fork of that server: cheap, and a clean interpreter, so two teams' modules never
meet. The child runs ``pytest.main`` on the team's ``tests`` folder (importlib import mode, the team
folder as rootdir, no cache, no bytecode written into the render) and sends back its exit code and
output.

A fork of the server still pays CrewAI's first kickoff in that process (lazy imports, pydantic models
rebuilt on first use: about 60 ms of a generated team's 8 tests) and pytest's own start. So one child
is kept *spare*: forked ahead of time, it scrubs its environment, runs one generic warm-up (a two-agent
hierarchical crew on a scripted LLM; no team code, no network), and waits for a tests folder. A run
takes the spare if it is warm; the next spare is forked by :func:`warm_spare`, which the engine calls
when a request's run has ended (its push and pull request done; with several runs at once, one run's
warm-up can still overlap another's push, and a reviser's second render in one step starts a fresh
child). Each child serves exactly one run, so a team's tests share their process with that generic
kickoff only, never with another team. With no spare ready (the first run, or several runs at once)
the run forks a child that starts on the tests straight away.

Generated tests are untrusted code: children get no credentials (:func:`scrub_environment`), the
forkserver is started without them, and this process is made non-dumpable (its environment and memory
closed to same-user processes); results come back as JSON, never as a pickle.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "OTEL_SDK_DISABLED": "true",
}
# The A2A side of a generated team's tests (server.py, tests/test_a2a.py) is preloaded too, and
# pytest's own plugins (``_preload``), which ``pytest.main`` would otherwise import in every child.
PRELOAD = [
    "yaml",
    "pytest",
    "crewai",
    "httpx",
    "a2a.client",
    "a2a.server.apps",
    "a2a.server.tasks",
    __name__,
    "devops_automation.scaffold._preload",
]
log = logging.getLogger("devops_crew.scaffold")
OUTPUT_TAIL_CHARS = 20_000
#: Largest result a child may send (its output's tail is at most OUTPUT_TAIL_CHARS characters).
RESULT_MAX_BYTES = 1_000_000

_context_lock = threading.Lock()
_context: BaseContext | None = None


def forkserver_context() -> BaseContext:
    """The forkserver context, configured (offline env, preload) and its server started.

    The server imports crewai, which writes a settings folder and a credentials key under ``$HOME``:
    it is started with ``HOME`` (and the XDG directories) pointing at a private temporary folder, so
    nothing lands in the user's home. The forkserver is one per process: if other code started it
    earlier without this preload, runs stay correct but each child imports crewai itself.

    A forkserver that has died (killed, out of memory) is started again here the same way: left to
    multiprocessing, the next ``Process.start()`` would relaunch it silently with this process's own
    environment, credentials and ``HOME`` included. (A server that dies between this check and the start
    still gets that relaunch; the window is one fork long.)
    """
    global _context
    with _context_lock:
        if _context is None:
            os.environ.update(OFFLINE_ENV)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _start_server_away_from_home()
            _context = context
        elif _forkserver_exited():
            _start_server_away_from_home()
        return _context


def _forkserver_exited() -> bool:
    """Whether the forkserver this process started has exited (it is left for multiprocessing to reap:
    ``WNOWAIT``). Reads multiprocessing's private ``_forkserver_pid`` (CPython 3.11-3.13); False where it
    cannot tell."""
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if not isinstance(pid, int):
        return False
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already: it is gone
        return True
    except (AttributeError, OSError):  # no waitid here
        return False


_HOME_VARS = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")


def _start_server_away_from_home() -> None:
    """Start the forkserver with a private ``HOME`` and without credentials in its environment: a child
    running generated code can read its parent's ``/proc/<pid>/environ`` (the environment it was
    started with). This process, which holds them, is made non-dumpable, so its own ``/proc/<pid>/environ``
    and memory are closed to other processes of the same (non-root) user; root can read everything."""
    from multiprocessing import forkserver

    private = tempfile.mkdtemp(prefix="devops-crew-validation-home-")
    atexit.register(shutil.rmtree, private, True)
    secrets = secret_names(os.environ)
    saved = {name: os.environ.get(name) for name in (*_HOME_VARS, *secrets)}
    for name in secrets:
        del os.environ[name]
    os.environ.update(
        HOME=private,
        XDG_CONFIG_HOME=f"{private}/.config",
        XDG_DATA_HOME=f"{private}/.local/share",
        XDG_CACHE_HOME=f"{private}/.cache",
    )
    try:
        _not_dumpable()
        forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def _not_dumpable() -> None:
    """``prctl(PR_SET_DUMPABLE, 0)`` on Linux (best effort; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        return


def _noop() -> None:
    """Child body used to start the forkserver."""


def warm_up(timeout: float = 120.0) -> float:
    """Start the forkserver (it imports crewai and pytest once) and fork the first spare child; returns
    the seconds it took (the spare warms up in the background)."""
    started = time.perf_counter()
    context = forkserver_context()
    process = context.Process(target=_noop, name="scaffold-warm-up")
    process.start()
    process.join(timeout)
    _spares.replenish(context)
    return time.perf_counter() - started


def warm_spare() -> None:
    """Fork the next spare child (see the module's docstring) if this process has run a team's tests and
    has no spare; nothing otherwise. The engine calls it when a request's run ends: the spare's warm-up (a
    generic kickoff, about 100 ms of CPU) then does not share a 2-core machine with that run's push and
    pull request, which wait for the tests. A process that never calls it starts a fresh child per run.
    Never raises: a spare that cannot be forked (the forkserver gone, no processes left) only leaves the
    next run to start a child itself, which reports the same trouble as that run's validation error."""
    if _context is None:
        return
    try:
        _spares.replenish(forkserver_context())
    except (OSError, EOFError, ValueError) as exc:
        log.warning("no spare team-test child: %s", exc)


def spare_ready(timeout: float = 0.0) -> bool:
    """Whether this process has a warm spare child for the next run (waits up to ``timeout`` seconds)."""
    return _spares.ready(timeout)


def pytest_args(tests_dir: Path, *, plain_asserts: bool = False) -> list[str]:
    """The pytest command line for one team: isolated from any surrounding project's config. With
    ``plain_asserts``, pytest does not rewrite the tests' ``assert`` statements (faster, terser
    failures); only safe where the interpreter keeps asserts (``sys.flags.optimize == 0``)."""
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
        *(["--assert=plain"] if plain_asserts else []),
    ]


SECRET_NAMES = frozenset({"GITHUB_TOKEN", "OPENAI_API_KEY", "DATABASE_URL", "OPENAI_BASE_URL"})
SECRET_SUFFIXES = ("_TOKEN", "_API_KEY", "_PASSWORD", "_SECRET")


def secret_names(environ: Mapping[str, str]) -> list[str]:
    """The names in ``environ`` that hold credentials: ``SECRET_NAMES``, and any name ending in one of
    ``SECRET_SUFFIXES``."""
    return [name for name in environ if name.endswith(SECRET_SUFFIXES) or name in SECRET_NAMES]


def scrub_environment(environ: MutableMapping[str, str]) -> None:
    """Make ``environ`` fit for a child that runs a generated team's tests: those tests are code we just
    wrote from untrusted input, so they get no credentials (:func:`secret_names`), and no pytest plugin
    the installation happens to carry is loaded."""
    for name in secret_names(environ):
        del environ[name]
    environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"


def _start_child(data_dir: str) -> None:
    """What every child does first: no bytecode into the render, the server's heap out of the garbage
    collector's way, no credentials, crewai's storage (its task-output database) and the temporary
    directory in ``data_dir``."""
    sys.dont_write_bytecode = True  # nothing may be written into the rendered tree
    # multiprocessing ends a spare with SIGTERM when this process exits: remove the temporary folder and
    # leave at once. Not through SystemExit: caught inside a warm-up, it left the child waiting for
    # CrewAI's threads forever, holding the parent's stdout and stderr open (a captured one-shot CLI hung).
    global _child_data
    _child_data = data_dir
    signal.signal(signal.SIGTERM, _leave)
    # Everything inherited from the server (crewai's big heap) is long-lived: keep it out of the
    # collections pytest forces at exit, which would otherwise take ~0.3 s.
    gc.freeze()
    scrub_environment(os.environ)
    # CrewAI keeps a task-output database (and any memory) under CREWAI_STORAGE_DIR, an absolute path that
    # replaces the XDG data dir: the parent's (the product's state directory) would collect every team's
    # kickoffs, shared by all children at once. Each child keeps its own, removed with its folder.
    os.environ["XDG_DATA_HOME"] = os.environ["CREWAI_STORAGE_DIR"] = data_dir
    # And the temporary directory: CrewAI leaves a lock file there for each database it opens (named after
    # the database's path, so a new one for every child), and pytest its tmp_path folders.
    os.environ["TMPDIR"] = tempfile.tempdir = data_dir


_child_data: str | None = None  # in a child: its temporary folder


def _leave(_signum: int, _frame: object) -> None:
    if _child_data is not None:
        _remove_folder(_child_data)
    os._exit(0)


def _run_pytest(tests_dir: str) -> tuple[int, str]:
    """``pytest.main`` on ``tests_dir`` with fd 1/2 captured: ``(exit code, the output's tail)``; -1 when
    pytest itself crashed. Asserts stay plain (about 15 ms less) unless the interpreter strips them
    (``python -O``): then pytest rewrites them, or a failing assert would pass. The errors reported are
    the same either way (pytest's ``FAILED`` lines name the test; the summary has no room for the
    assertion's message)."""
    plain_asserts = sys.flags.optimize == 0
    with tempfile.TemporaryFile() as out:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            import pytest

            code = int(pytest.main(pytest_args(Path(tests_dir), plain_asserts=plain_asserts)))
        except BaseException as exc:  # report anything, including SystemExit, to the parent
            print(f"pytest crashed: {exc!r}")
            code = -1
        sys.stdout.flush()
        sys.stderr.flush()
        out.seek(0)
        output = out.read().decode(errors="replace")
    return code, output[-OUTPUT_TAIL_CHARS:]


def _send_result(conn: Connection, result: tuple[int, str]) -> None:
    """``(exit code, output)`` as JSON bytes: the parent never unpickles what a child running generated
    code sends."""
    conn.send_bytes(json.dumps(list(result)).encode())
    conn.close()


#: RAM-backed folders a child's temporary folder may live in, first usable one wins (:func:`scratch_root`).
RAM_DIRS = ("/dev/shm",)  # noqa: S108 - only ever a parent of mkdtemp()'s private folders
#: Free space a RAM-backed folder must have to be used, in bytes.
SCRATCH_MIN_FREE = 16 * 1024 * 1024


def scratch_root(
    candidates: tuple[str, ...] = RAM_DIRS,
    mounts: str = "/proc/self/mounts",
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """Where children's temporary folders go: None (the temporary directory) when ``TMPDIR`` is set in
    ``environ`` (the operator chose the place); else the first of ``candidates`` whose mount (its last
    line in ``mounts``: a later mount covers an earlier one) is a RAM-backed filesystem (``tmpfs``) not
    mounted ``noexec`` (as Docker's own /dev/shm is: a team's tests behave alike everywhere), writable by
    this process and with at least ``SCRATCH_MIN_FREE`` bytes free; None when none is, or where ``mounts``
    cannot be read (not Linux).

    Why: CrewAI keeps a SQLite task-output database in the child's folder and syncs it about 20 times a
    kickoff; on this machine's disk that is about 18 ms of a 170 ms run, on tmpfs nothing (issue 12). The
    folder holds only what one run of a team's tests writes (that database, pytest's captured output and
    ``tmp_path``) and is removed after it; a run that fills the mount anyway fails its validation as any
    failed run does (``failed``, resumable). The pod mounts a 64Mi memory ``emptyDir`` at /dev/shm,
    counted against its memory limit."""
    if (os.environ if environ is None else environ).get("TMPDIR"):
        return None
    try:
        with open(mounts, encoding="utf-8", errors="replace") as table:
            lines = [line.split() for line in table]
    except OSError:
        return None
    kinds = {fields[1]: (fields[2], fields[3].split(",")) for fields in lines if len(fields) > 3}
    for folder in candidates:
        kind, options = kinds.get(folder, ("", []))
        if kind != "tmpfs" or "noexec" in options:
            continue
        try:
            usage = os.statvfs(folder)
        except OSError:
            continue
        if usage.f_bavail * usage.f_frsize >= SCRATCH_MIN_FREE and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return None


def _new_folder() -> str:
    """A child's temporary folder (``team-tests-*``, mode 0700, in :func:`scratch_root` or else the
    temporary directory), made by the parent: the parent removes it when the child is done with
    (:func:`_remove_folder`), a child it had to kill (a timeout) included, which could not remove its
    own. Raises OSError."""
    return tempfile.mkdtemp(prefix="team-tests-", dir=scratch_root())


def _remove_folder(path: str) -> None:
    """Remove a child's folder whatever the generated tests left in it: folders they made read-only (or
    unreadable) are opened up to their owner and removed again, as ``TemporaryDirectory`` does (each
    folder once, and only folders inside ``path``). A folder that is gone already is no error. Never
    raises; follows no symbolic link."""
    root = os.path.abspath(path)
    opened: set[str] = set()

    def inside(target: str) -> bool:
        return target == root or target.startswith(root + os.sep)

    def open_up(_func: object, target: str, exc_info: Any) -> None:
        target = os.path.abspath(target)
        if isinstance(exc_info[1], FileNotFoundError) or not inside(target):
            return
        try:
            if target != root:
                os.chmod(os.path.dirname(target), 0o700)
            if os.path.isdir(target) and not os.path.islink(target):
                if target in opened:
                    return
                opened.add(target)
                os.chmod(target, 0o700)
                shutil.rmtree(target, onerror=open_up)
            else:
                os.unlink(target)
        except OSError:
            pass

    shutil.rmtree(root, onerror=open_up)


def _child(tests_dir: str, data_dir: str, conn: Connection) -> None:
    """Forkserver child, started for one run: run the tests, send ``(exit code, output)`` once its
    temporary folder ``data_dir`` is removed (the parent may kill it as soon as the result is in)."""
    try:
        _start_child(data_dir)
        result = _run_pytest(tests_dir)
    finally:
        _remove_folder(data_dir)
    _send_result(conn, result)


READY = b"ready"


def _spare(conn: Connection, data_dir: str) -> None:
    """Forkserver child kept spare: warm up, send ``READY``, wait for one tests folder, run it, send
    ``(exit code, output)``; exits when the parent closes the pipe instead."""
    try:
        _start_child(data_dir)
        _quietly(warm_up_crewai)
        gc.freeze()  # what the warm-up built is as long-lived as the server's heap
        try:
            conn.send_bytes(READY)
            tests_dir = conn.recv_bytes().decode()
        except (EOFError, OSError):  # the parent is gone or closed the pool
            return
        result = _run_pytest(tests_dir)
    finally:
        _remove_folder(data_dir)
    _send_result(conn, result)


def _quietly(work: Callable[[], object]) -> None:
    """Run ``work`` with fd 1/2 on /dev/null; its exceptions are swallowed (a warm-up that fails only
    leaves the child cold)."""
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            work()
        except Exception:  # noqa: S110 - best effort by definition
            pass
        finally:
            sys.stdout.flush()
            sys.stderr.flush()


def warm_up_crewai() -> None:
    """One kickoff of a generic two-agent hierarchical crew on a scripted LLM (no team code, no
    network), so CrewAI's lazy imports and the pydantic models it completes on first use are ready
    before a team's tests run (a generated team's A2A test: about 130 ms cold, 70 ms warm)."""
    from crewai import Agent, BaseLLM, Crew, Process, Task

    class ScriptedLLM(BaseLLM):
        def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
            return "Thought: I can answer now.\nFinal Answer: warm"

        def supports_function_calling(self) -> bool:
            return False

    llm = ScriptedLLM(model="scripted-warm-up")
    agents = [
        Agent(role=f"warm-up {i}", goal="warm up", backstory="none", llm=llm, allow_delegation=False) for i in range(2)
    ]
    task = Task(description="warm up", expected_output="one word", agent=agents[0])
    Crew(agents=agents, tasks=[task], process=Process.hierarchical, manager_llm=llm).kickoff()


class _Spares:
    """At most one spare child of this process, ready or warming up (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: tuple[BaseProcess, Connection, str] | None = None
        atexit.register(self._forget)  # runs before multiprocessing ends the spare (atexit is last in, first out)

    def replenish(self, context: BaseContext) -> None:
        """Fork a spare if there is none."""
        with self._lock:
            if self._spare is not None and not self._spare[0].is_alive():
                self._spare[1].close()  # it died waiting
                _remove_folder(self._spare[2])
                self._spare = None
            if self._spare is None:
                data = _new_folder()
                try:
                    ours, theirs = context.Pipe(duplex=True)
                except BaseException:
                    _remove_folder(data)
                    raise
                process = context.Process(
                    target=_spare, args=(theirs, data), name="scaffold-team-tests-spare", daemon=True
                )
                try:
                    process.start()
                except BaseException:
                    ours.close()
                    _remove_folder(data)
                    raise
                finally:
                    theirs.close()
                self._spare = (process, ours, data)

    def _forget(self) -> None:
        """At exit: the waiting spare's folder (multiprocessing then ends the spare itself)."""
        with self._lock:
            if self._spare is not None:
                _remove_folder(self._spare[2])

    def ready(self, timeout: float) -> bool:
        """Whether a spare is warm (waits up to ``timeout`` seconds for it)."""
        with self._lock:
            spare = self._spare
        try:
            return spare is not None and spare[1].poll(timeout)
        except (OSError, ValueError):  # taken (and closed) meanwhile
            return False

    def take(self, tests_dir: str) -> tuple[BaseProcess, Connection, str] | None:
        """The spare (process, pipe, its folder), given ``tests_dir``, if it is warm; None when there is
        none or it is still warming up (it stays for the next run)."""
        with self._lock:
            if self._spare is None:
                return None
            process, conn, data = self._spare
            try:
                if not conn.poll(0):
                    return None
                if conn.recv_bytes() != READY:
                    raise EOFError("not ready")
                conn.send_bytes(tests_dir.encode())
            except (EOFError, OSError):  # it died: fork another one later
                conn.close()
                process.kill()
                process.join(5)
                _remove_folder(data)
                self._spare = None
                return None
            self._spare = None
            return process, conn, data


_spares = _Spares()


def summarise(label: str, code: int, output: str) -> list[str]:
    """One error line per failed test (pytest's ``FAILED``/``ERROR`` lines), or one for the run."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    tail = lines[-1] if lines else "no output"
    if failures:
        return [f"team_tests: {label}: {' '.join(line.split())[:400]}" for line in failures]
    return [f"team_tests: {label}: pytest exit code {code}: {tail[:400]}"]


class TeamTestRun:
    """One team's tests running in a forkserver child (the warm spare when one is ready); :meth:`wait`
    collects the result."""

    def __init__(self, tests_dir: Path, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()
        self.elapsed = 0.0
        self.output = ""
        self.spare = False
        self._received = False
        self._tests_dir = str(tests_dir.resolve())
        self._process: BaseProcess | None = None
        self._start_error: str | None = None
        try:
            self._context = forkserver_context()
            taken = _spares.take(self._tests_dir)
            if taken is not None:
                self._process, self._recv, self._data = taken
                self.spare = True
            else:
                self._start_cold()
        except (OSError, EOFError, ValueError) as exc:  # no forkserver, no folder or no process to be had
            self._process = None
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            self._start_error = f"team_tests: {label}: the test process could not be started: {reason}"

    def _start_cold(self) -> None:
        """Fork a child that starts on the tests at once; leaves nothing open or on disk if it cannot."""
        self._data = _new_folder()
        try:
            self._recv, send = self._context.Pipe(duplex=False)
        except BaseException:
            _remove_folder(self._data)
            raise
        process = self._context.Process(
            target=_child, args=(self._tests_dir, self._data, send), name="scaffold-team-tests", daemon=True
        )
        try:
            process.start()
        except BaseException:
            self._recv.close()
            _remove_folder(self._data)
            raise
        finally:
            send.close()
        self._process = process

    def wait(self, timeout: float = 120.0) -> list[str]:
        """Errors (empty when every test passed); kills the child after ``timeout`` seconds. A child that
        could not be started is one error, as a failed run is (the step then ends failed, resumable)."""
        if self._start_error is not None:
            self.elapsed = time.perf_counter() - self.started
            return [self._start_error]
        try:
            return self._collect(timeout)
        finally:
            self._finish()
            self.elapsed = time.perf_counter() - self.started

    def _finish(self) -> None:
        """The child is done with: killed if it still runs (it removed its temporary folder before it sent a
        result, so nothing is lost); not waited for after a result (its exit is the forkserver's to reap:
        about 10 ms this run need not wait for), reaped here otherwise, and then its folder removed here
        (a killed child leaves it behind)."""
        assert self._process is not None
        if self._process.is_alive():
            self._process.kill()
        if not self._received:
            self._process.join(5)
            _remove_folder(self._data)
        self._recv.close()

    def _collect(self, timeout: float) -> list[str]:
        assert self._process is not None
        if not self._recv.poll(timeout):
            return [f"team_tests: {self.label}: timed out after {timeout:.0f}s"]
        try:
            code, self.output = json.loads(self._recv.recv_bytes(RESULT_MAX_BYTES))
            code, self.output = int(code), str(self.output)
            self._received = True
        except (EOFError, OSError, ValueError, TypeError):  # died, or sent something that is not a result
            self._process.join(5)
            return [f"team_tests: {self.label}: the test process died (exit {self._process.exitcode})"]
        if code == 0:
            return []
        return summarise(self.label, code, self.output)
