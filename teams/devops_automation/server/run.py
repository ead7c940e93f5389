"""Serve the application with uvicorn until SIGTERM or SIGINT.

On the signal, the drain flag is set at once (runs stop at their next saved state, intake answers 503,
``/readyz`` turns 503), then uvicorn stops accepting connections and waits for open ones up to the grace
period, then the lifespan's shutdown waits for the runs with what remains of it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from ..settings import Settings
from .asgi import create_app, start_runtime


class _Server(uvicorn.Server):
    """uvicorn's server, telling the application the moment a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, on_signal: Callable[[], None], ready: Callable[[str], None]) -> None:
        super().__init__(config)
        self._on_signal, self._ready = on_signal, ready

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._on_signal()
        super().handle_exit(sig, frame)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._ready(f"http://{host}:{port}")


def serve(settings: Settings, *, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Run until a signal; ``ready(url)`` once the port is bound and start-up finished. Raises
    ConfigurationError when start-up fails on the settings, OSError when the port cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, reuse_port=False)  # OSError: port taken
    try:
        runtime = start_runtime(settings)
    except BaseException:
        sock.close()
        raise
    app = create_app(settings, runtime=runtime)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds)),
        lifespan="on",
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = _Server(config, runtime.draining.set, ready)
    # uvicorn re-raises the signal that stopped it once it has shut down, under the handlers it found:
    # handlers that do nothing make a finished graceful stop exit 0 instead of dying by the signal.
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        server.run(sockets=[sock])
    finally:
        runtime.draining.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if runtime.stopped_clean is False:
        # A run is still inside a step after the grace period (e.g. waiting on a lock): exit now, as the
        # grace promises. The step it was in is redone by the next start; every saved state stays.
        logging.getLogger("devops_crew.server").warning("grace period over with a run still working: exiting")
        logging.shutdown()
        os._exit(1)


def _stopped(_sig: int, _frame: Any) -> None:
    """The signal already did its work (a graceful stop)."""
