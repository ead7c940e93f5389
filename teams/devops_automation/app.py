"""Wiring: builds the store, auditor, forge connection, target repo, drafter and pipeline from one Settings.

Every entry point (CLI, and later A2A, Discord, the dashboard) goes through :func:`build_app`, so they
all share the same policy and the same audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from .audit import Auditor
from .drafting.base import Drafter, PRWriter, SpecReviser
from .forge.connection import ForgeConnection, embedded_token, open_forge
from .forge.github import BroadTokenError, GitHubForge
from .lifecycle import Lifecycle
from .pipeline import Pipeline, Progress
from .quiet import silence_crewai
from .settings import Settings
from .store import Store, open_store
from .target import TargetRepo


class ConfigurationError(RuntimeError):
    pass


@dataclass
class App:
    settings: Settings
    store: Store
    auditor: Auditor
    connection: ForgeConnection
    target: TargetRepo
    drafter: Drafter
    pipeline: Pipeline

    @property
    def forge(self) -> GitHubForge:
        return self.connection.forge

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(
            settings=self.settings,
            store=self.store,
            auditor=self.auditor,
            forge=self.forge,
            target=self.target,
            progress=self.pipeline.progress,
        )

    def close(self) -> None:
        self.connection.close()
        self.store.close()


def make_crew(settings: Settings, auditor: Auditor, target: TargetRepo) -> tuple[Drafter, SpecReviser, PRWriter]:
    """The LLM crew's drafter, reviser and PR writer (CrewAI is imported only here)."""
    from .crew import build_crew_components

    try:
        return build_crew_components(settings, auditor, target)
    except ValueError as exc:  # an unusable DEVOPS_CREW_LLM, or a missing key
        raise ConfigurationError(str(exc)) from exc


def build_app(settings: Settings, progress: Progress | None = None, *, drafter: Drafter | None = None) -> App:
    silence_crewai(settings.home)
    settings.home.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.effective_database_url)
    secrets = settings.secret_values()
    if settings.github_token is None:
        secrets.append(embedded_token(settings))
    auditor = Auditor(store, secrets)
    connection = open_forge(settings, auditor)
    try:
        if not connection.embedded and not settings.allow_broad_token:
            connection.forge.check_token_scope(settings.base_branch)
        target = TargetRepo(settings, auditor, connection.git_url, connection.git_token)
        reviser: SpecReviser | None = None
        pr_writer: PRWriter | None = None
        if drafter is None and settings.llm:
            drafter, reviser, pr_writer = make_crew(settings, auditor, target)
        if drafter is None:
            from .drafting.offline import OfflineDrafter

            drafter = OfflineDrafter(prices=settings.llm_prices)
    except (BroadTokenError, ConfigurationError):
        connection.close()
        store.close()
        raise
    pipeline = Pipeline(
        settings=settings,
        store=store,
        auditor=auditor,
        target=target,
        forge=connection.forge,
        drafter=drafter,
        progress=progress,
        reviser=reviser,
        pr_writer=pr_writer,
    )
    return App(settings, store, auditor, connection, target, drafter, pipeline)
