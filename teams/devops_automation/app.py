"""Wiring: builds the store, auditor, target repo, forge, drafter and pipeline from one Settings.

Every entry point (CLI, and later A2A, Discord, the dashboard) goes through :func:`build_app`, so they
all share the same policy and the same audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from .audit import Auditor
from .drafting.base import Drafter
from .forge.base import Forge
from .pipeline import Pipeline, Progress
from .quiet import silence_crewai
from .settings import Settings
from .store import Store, open_store
from .target import TargetRepo, bootstrap_embedded


class ConfigurationError(RuntimeError):
    pass


@dataclass
class App:
    settings: Settings
    store: Store
    auditor: Auditor
    target: TargetRepo
    forge: Forge
    drafter: Drafter
    pipeline: Pipeline

    def close(self) -> None:
        self.store.close()


def make_drafter(settings: Settings) -> Drafter:
    if settings.llm:
        raise ConfigurationError(
            f"DEVOPS_CREW_LLM={settings.llm} is set, but LLM drafting is not part of this build yet; "
            "unset it to use the offline drafter"
        )
    from .drafting.offline import OfflineDrafter

    return OfflineDrafter()


def make_forge(settings: Settings, store: Store) -> Forge:
    from .forge.store_forge import StoreForge

    return StoreForge(store, settings.target_repo, settings.home / "pulls")


def build_app(
    settings: Settings, progress: Progress | None = None, *, drafter: Drafter | None = None, forge: Forge | None = None
) -> App:
    silence_crewai()
    settings.home.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.effective_database_url)
    auditor = Auditor(store, settings.secret_values())
    if settings.embedded_target:
        bootstrap_embedded(settings, auditor)
    target = TargetRepo(settings, auditor)
    forge = forge or make_forge(settings, store)
    drafter = drafter or make_drafter(settings)
    pipeline = Pipeline(
        settings=settings, store=store, auditor=auditor, target=target, forge=forge, drafter=drafter, progress=progress
    )
    return App(settings, store, auditor, target, forge, drafter, pipeline)
