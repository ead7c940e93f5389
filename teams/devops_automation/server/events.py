"""Progress and state events of this process's runs, fanned out to listeners on the event loop (the A2A
task updater, the dashboard's feed, server-sent events).

Runs publish from worker threads; listeners read :class:`asyncio.Queue` s on the loop. A slow listener
never blocks a run: its queue is bounded and drops its oldest events.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    """``kind`` is ``progress`` (``message`` set) or ``state`` (``summary`` set: the request's SUMMARY)."""

    kind: str
    request_id: str
    message: str = ""
    step: str = ""
    summary: dict[str, Any] | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class EventHub:
    """Thread-safe publish, loop-side subscribe. ``recent`` keeps the last ``keep`` events (the feed)."""

    def __init__(self, *, keep: int = 200, queue_size: int = 256) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        #: request id (None: every request) -> the queues listening to it; an event visits its own only.
        self._subscribers: dict[str | None, set[asyncio.Queue[Event]]] = {}
        self._lock = threading.Lock()
        self._queue_size = queue_size
        self.recent: deque[Event] = deque(maxlen=keep)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the server's loop (at startup)."""
        self._loop = loop

    def publish(self, event: Event) -> None:
        """From any thread."""
        with self._lock:
            self.recent.append(event)
            loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
                loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: Event) -> None:
        for key in (event.request_id, None):
            for queue in list(self._subscribers.get(key, ())):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(event)

    @contextmanager
    def subscribe(self, request_id: str | None = None) -> Iterator[asyncio.Queue[Event]]:
        """On the loop: a queue of the events of ``request_id`` (all requests when None)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=self._queue_size)
        self._subscribers.setdefault(request_id, set()).add(queue)
        try:
            yield queue
        finally:
            listening = self._subscribers.get(request_id)
            if listening is not None:
                listening.discard(queue)
                if not listening:
                    del self._subscribers[request_id]
