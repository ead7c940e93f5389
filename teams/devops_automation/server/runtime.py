"""What every route of one server shares: settings, the service, credentials, the worker pool, the event
hub, metrics and the drain flag. Built by the application's lifespan (:mod:`.asgi`), reached from a route
as ``request.app.state.runtime``."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request

from ..authz import Actor, Channel, Role
from ..errors import DevopsCrewError
from ..models import RequestState
from ..service import CrewService, Hooks, ProgressEvent, View
from ..settings import Settings
from .auth import Authenticator, LoginThrottle
from .events import Event, EventHub
from .intake import IntakeGate
from .metrics import Metrics
from .worker import WorkerPool

log = logging.getLogger("devops_crew.server")
T = TypeVar("T")

SERVER_ACTOR = Actor(
    id="devops-crew-server", channel=Channel.scheduler, display_name="devops-crew server", roles={Role.operator}
)


@dataclass
class Runtime:
    """One server's shared parts. Use :meth:`create`; close with :meth:`shutdown`."""

    settings: Settings
    service: CrewService
    auth: Authenticator
    pool: WorkerPool
    hub: EventHub
    metrics: Metrics
    draining: threading.Event
    started_at: float = field(default_factory=time.monotonic)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    #: Acknowledgements before runs (:mod:`.intake`): the engine's ``before_step`` waits on it.
    gate: IntakeGate = field(default_factory=lambda: IntakeGate(0.0))
    #: The Discord bot when DISCORD_TOKEN is set (a ``discord_bot.DiscordBot``: ``post_notice``), else None.
    discord: Any = None
    #: After :meth:`shutdown`: whether every run reached a saved state within the grace period.
    stopped_clean: bool | None = None
    #: Short blocking calls (session lookups, password checks, probes, metrics): their own threads, so
    #: neither a busy engine pool nor anonymous probes can starve a sign-in, and the loop never blocks.
    io: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="devops-crew-io")
    )

    @classmethod
    def create(cls, settings: Settings, *, service: CrewService | None = None) -> Runtime:
        """Raises ConfigurationError for unusable credentials tables. ``service`` (tests) must have been
        built with this runtime's hooks to drain; without one, a service is built here."""
        auth = Authenticator(settings)
        draining = threading.Event()
        hub = EventHub()
        holder: dict[str, Any] = {}
        metrics = Metrics(
            counts=lambda: holder["service"].store.count_by_state(),
            jobs=lambda: (holder["pool"].running, holder["pool"].queued),
        )
        gate = IntakeGate(settings.server_intake_priority_seconds, stop=draining)
        if service is None:
            hooks = Hooks(draining=draining, on_step=metrics.on_step, before_step=gate.hold_back)
            service = CrewService(settings, hooks=hooks)
        pool = WorkerPool(settings.server_workers, draining)
        holder.update(service=service, pool=pool)
        return cls(settings, service, auth, pool, hub, metrics, draining, gate=gate)

    async def quick(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run a short blocking call on the ``io`` threads and await it."""
        return await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)

    # -- work ---------------------------------------------------------------------------------
    def progress(self, event: ProgressEvent) -> None:
        """The engine's progress callback: into the hub (from a worker thread)."""
        self.hub.publish(Event("progress", event.request_id, message=event.message, step=event.step))

    def published(self, view: View) -> View:
        """Announce a request's new SUMMARY to the hub; returns it."""
        self.hub.publish(Event("state", view["id"], summary=view))
        return view

    def drive(self, actor: Actor, request_id: str) -> View:
        """On a worker: run a request as far as it goes and announce the result."""
        return self.published(self.service.advance(actor, request_id, progress=self.progress))

    async def accept_and_drive(self, actor: Actor, gap: dict[str, Any], *, wait: bool) -> View:
        """Record the gap's request and queue its run; with ``wait``, await the run's end. Raises what
        :meth:`CrewService.accept` raises, and Unavailable when the server takes no work."""
        self.pool.check_capacity(2)  # the accept and its run: refuse before recording anything
        # Recording is a short call: on the io threads, so acknowledgements never queue behind runs, and
        # runs hold back meanwhile (the intake gate).
        with self.gate.intake():
            view = self.published(await self.quick(self.service.accept, actor, gap))
        if view["state"] != RequestState.received.value:
            return view
        # A new request, or a duplicate still in `received` (its run was refused, or a crash cut it off):
        # drive it. A run already driving it holds its lock; this one then finds nothing left to do.
        future = self.pool.submit(self.drive, actor, view["id"])
        if not wait:
            return view
        final = await asyncio.wrap_future(future)
        return {**final, "duplicate": view["duplicate"]}

    def resume_interrupted(self) -> list[str]:
        """At start: queue every request a crash or shutdown left mid-way (ids queued). A request another
        replica is driving waits on its lock and then finds nothing to do."""
        try:
            waiting = self.service.interrupted(SERVER_ACTOR)
        except DevopsCrewError as exc:
            log.warning("could not list interrupted requests: %s", exc)
            return []
        queued = []
        for request_id in waiting:
            try:
                self.pool.submit(self.resume_one, request_id)
            except DevopsCrewError:
                break
            queued.append(request_id)
        return queued

    def resume_one(self, request_id: str) -> View:
        """On a worker: continue one request as the server (scheduler actor); never raises."""
        try:
            return self.published(self.service.resume(SERVER_ACTOR, request_id, progress=self.progress))
        except DevopsCrewError as exc:
            log.warning("resuming %s: %s", request_id, exc)
            return {}

    def shutdown(self, grace_seconds: float) -> bool:
        """Stop intake, let runs reach their next saved state within ``grace_seconds``, close the service.
        Returns True when nothing was cut off."""
        clean = self.pool.shutdown(grace_seconds)
        self.stopped_clean = clean
        self.io.shutdown(wait=False, cancel_futures=True)
        if clean:
            self.service.close()
        return clean


def runtime_of(request: Request) -> Runtime:
    """The server's runtime, from any route (also a FastAPI dependency)."""
    return request.app.state.runtime
