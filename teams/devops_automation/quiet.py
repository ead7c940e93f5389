"""Switches off CrewAI's telemetry, tracing and version check for this process and its children.

Called by every entry point before CrewAI can be imported: without it a kickoff stalls on network
calls that never answer here and may prompt on a terminal. Forced, not defaulted: this product
never phones home, whatever the environment says.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_DISABLE_TRACKING": "true",
}


def silence_crewai() -> None:
    os.environ.update(OFFLINE_ENV)
