"""The A2A endpoint (a2a-sdk 0.3.x). Placeholder until the A2A server lands."""

from __future__ import annotations

from fastapi import FastAPI

from ..settings import Settings

JSONRPC_PATHS: frozenset[str] = frozenset({"/a2a"})


def install(app: FastAPI, settings: Settings) -> None:
    """Add the A2A routes to ``app``."""
