"""The dashboard. Placeholder until the dashboard lands."""

from __future__ import annotations

from fastapi import FastAPI

from ..settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Add the dashboard's routes and middleware to ``app``."""
