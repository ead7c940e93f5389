"""Switches off CrewAI's telemetry, tracing and version check for this process and its children.

Called by every entry point before CrewAI can be imported: without it a kickoff stalls on network
calls that never answer here and may prompt on a terminal. Forced, not defaulted: this product
never phones home, whatever the environment says.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    # a2a-sdk wraps every handler, queue and store call in an OpenTelemetry span (a no-op tracer here, but
    # a fifth of the event loop's time under 20 A2A clients, bench/intake.py); read when a2a is imported.
    "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false",
}


def silence_crewai(state_dir: Path | None = None) -> None:
    """Switch CrewAI's network features off; with ``state_dir``, keep its storage there too."""
    os.environ.update(OFFLINE_ENV)
    if state_dir is not None:
        os.environ["CREWAI_STORAGE_DIR"] = str(Path(state_dir) / "crewai" / "storage")


def isolate_crewai(state_dir: Path) -> Path:
    """Keep what CrewAI writes on disk inside ``state_dir/crewai`` instead of the user's home.

    CrewAI keeps task outputs (and any memory) under ``CREWAI_STORAGE_DIR``, which is used as a
    directory name below the platform data dir: an absolute path replaces that dir entirely. On import
    it also creates a credentials key under ``~/.local/share/crewai`` and a settings folder under
    ``~/.config/crewai``: when CrewAI is not imported yet, it is imported here with ``HOME`` pointing
    into the state directory for the length of the import. Returns the directory used.
    """
    silence_crewai()
    root = Path(state_dir) / "crewai"
    storage, home = root / "storage", root / "home"
    storage.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["CREWAI_STORAGE_DIR"] = str(storage)
    if "crewai" not in sys.modules:
        real_home = os.environ.get("HOME")
        os.environ["HOME"] = str(home)
        try:
            import crewai  # noqa: F401
        finally:
            if real_home is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = real_home
    return root


#: Loggers whose records only repeat what the product reports itself (the failed step and its reason).
LIBRARY_LOGGERS = ("crewai", "crewai_core", "langchain", "langchain_core", "langchain_openai", "openai", "httpx")


def quiet_library_logs() -> None:
    """``-q``: CrewAI's own error lines ("Error executing listener call_llm_native_tools: ...") and the other
    libraries' log records stay off stderr. They reach stderr through logging's last-resort handler, as no
    handler is configured: a ``NullHandler`` on each library's logger ends that. The request's state and
    error, and the audit trail, still say what failed (issue 15)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
        logger.propagate = False
