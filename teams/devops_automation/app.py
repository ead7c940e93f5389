"""Wiring: builds the store, auditor, forge connection, target repo, drafter and pipeline from one Settings.

Every entry point (CLI, and later A2A, Discord, the dashboard) goes through :func:`build_app`, so they
all share the same policy and the same audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from .audit import Auditor
from .drafting.base import Drafter
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


def make_drafter(settings: Settings) -> Drafter:
    if settings.llm:
        raise ConfigurationError(
            f"DEVOPS_CREW_LLM={settings.llm} is set, but LLM drafting is not part of this build yet; "
            "unset it to use the offline drafter"
        )
    from .drafting.offline import OfflineDrafter

    return OfflineDrafter()


def build_app(settings: Settings, progress: Progress | None = None, *, drafter: Drafter | None = None) -> App:
    silence_crewai()
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
        drafter = drafter or make_drafter(settings)
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
    )
    return App(settings, store, auditor, connection, target, drafter, pipeline)
