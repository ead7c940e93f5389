"""Wiring: builds the store, auditor, forge, target repo, drafter and engine from one Settings.

Only the service layer (:mod:`devops_automation.service`) builds an :class:`App`; tests of the engine
build one directly. Every entry point goes through the service, so all share one policy, one
authorisation layer and one audit trail.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .audit import Auditor
from .drafting.base import Drafter, PRWriter, SpecReviser
from .engine import Deps, Engine, Hooks, Lifecycle
from .errors import DevopsCrewError
from .forge import Forge, open_forge
from .forge.links import PullLinks
from .notify.channels import configured_channels
from .notify.dispatch import Dispatcher, RetryPolicy
from .notify.outbox import Outbox
from .quiet import silence_crewai
from .registry import RegistryCache
from .settings import Settings
from .store import Store, open_store
from .target import TargetRepo


@dataclass
class App:
    """One process's engine and everything it is built from."""

    settings: Settings
    store: Store
    auditor: Auditor
    forge: Forge
    target: TargetRepo
    drafter: Drafter
    engine: Engine
    dispatcher: Dispatcher

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.engine.deps)

    def close(self) -> None:
        self.forge.close()
        self.store.close()


def make_crew(settings: Settings, auditor: Auditor, target: TargetRepo) -> tuple[Drafter, SpecReviser, PRWriter]:
    """The LLM crew's drafter, reviser and PR writer (CrewAI is imported only here).
    Raises ConfigurationError for an unusable DEVOPS_CREW_LLM."""
    from .crew import build_crew_components

    return build_crew_components(settings, auditor, target)


def build_app(
    settings: Settings, *, drafter: Drafter | None = None, store: Store | None = None, hooks: Hooks | None = None
) -> App:
    """The engine for ``settings`` (``hooks``: a server's drain flag and step observer).
    Raises ConfigurationError (and BroadTokenError) for settings that
    cannot work, ForgeError when the forge does not answer."""
    silence_crewai(settings.home)
    settings.ensure_home()
    owned = store is None
    store = store or open_store(settings.effective_database_url)
    auditor = Auditor(store, settings.secret_values())
    try:
        forge = open_forge(settings, auditor)
    except DevopsCrewError:
        if owned:
            store.close()
        raise
    auditor.secrets.extend(s for s in forge.secrets() if s)
    try:
        if not forge.embedded and not settings.allow_broad_token:
            forge.check_token_scope(settings.base_branch)
        target = TargetRepo(settings, auditor, forge.git_remote(), forge.git_env())
        reviser: SpecReviser | None = None
        pr_writer: PRWriter | None = None
        triage_reader = None
        if drafter is None and settings.llm:
            drafter, reviser, pr_writer = make_crew(settings, auditor, target)
            from .crew import build_triage_reader

            triage_reader = build_triage_reader(settings, auditor, target)
        if drafter is None:
            from .drafting.offline import OfflineDrafter

            drafter = OfflineDrafter(prices=settings.llm_prices)
    except DevopsCrewError:
        forge.close()
        if owned:
            store.close()
        raise
    registries = RegistryCache(settings)
    deps = Deps(settings, store, auditor, target, forge, drafter, reviser, pr_writer, hooks or Hooks())
    deps = dataclasses.replace(deps, registries=registries, triage_reader=triage_reader)
    return App(
        settings, store, auditor, forge, target, drafter, Engine(deps), make_dispatcher(settings, store, auditor)
    )


def make_dispatcher(settings: Settings, store: Store, auditor: Auditor) -> Dispatcher:
    """The notification dispatcher for the channels ``settings`` configure; tells ``store`` which
    channels each new event gets a delivery row for."""
    channels = configured_channels(settings)
    store.notification_channels = tuple(channels)
    retry = RetryPolicy(base_seconds=settings.notify_backoff_seconds, max_attempts=settings.notify_max_attempts)
    return Dispatcher(Outbox(store), channels, auditor, retry=retry, links=PullLinks.of(settings))
