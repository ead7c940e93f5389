"""The worker pool: engine work (render, validate, push) runs here, off the event loop.

A request that renders and validates holds a thread for seconds; the loop must keep answering health
checks, A2A polls and the dashboard meanwhile. ``concurrent.futures.ThreadPoolExecutor`` is the pool; this
module adds intake control (refuse new work while draining or when the queue is full) and a bounded
shutdown.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from ..errors import Unavailable

T = TypeVar("T")


class WorkerPool:
    """``workers`` threads; at most ``max_queued`` jobs waiting beyond them. ``draining`` is the process's
    shutdown flag (shared with the engine's :class:`~devops_automation.engine.Hooks`)."""

    def __init__(self, workers: int, draining: threading.Event, *, max_queued: int = 1000) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devops-crew-worker")
        self._draining = draining
        self._max_queued = max_queued
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self._running = 0
        self.workers = workers

    @property
    def queued(self) -> int:
        """Jobs accepted and not finished (running ones included)."""
        with self._lock:
            return len(self._pending)

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def check_capacity(self, jobs: int = 1) -> None:
        """Raise Unavailable unless ``jobs`` more could be queued now (draining, or the queue full)."""
        with self._lock:
            self._refuse_unless_room(jobs)

    def _refuse_unless_room(self, jobs: int) -> None:
        """Under ``self._lock``: Unavailable while draining or when ``jobs`` more would overfill the queue."""
        if self._draining.is_set():
            raise Unavailable("the server is shutting down; retry against another replica or after restart")
        if len(self._pending) + jobs > self._max_queued + self.workers:
            raise Unavailable(f"the server's work queue is full ({len(self._pending)} jobs); retry later")

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Queue ``fn(*args, **kwargs)``. Raises Unavailable while draining or when the queue is full."""
        with self._lock:
            self._refuse_unless_room(1)

            def job() -> T:
                with self._lock:
                    self._running += 1
                try:
                    return fn(*args, **kwargs)
                finally:
                    with self._lock:
                        self._running -= 1

            future = self._executor.submit(job)
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the pool and await its result (exceptions propagate). Raises Unavailable."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def shutdown(self, grace_seconds: float) -> bool:
        """Stop intake, drop jobs that have not started (their requests stay saved; the next start
        resumes them), and wait up to ``grace_seconds`` for running ones, which stop at their next saved
        state. Returns True when every running job finished in time."""
        self._draining.set()
        deadline = time.monotonic() + grace_seconds
        with self._lock:
            pending = set(self._pending)
        for future in pending:
            future.cancel()  # only jobs that have not started can be cancelled
        _done, not_done = wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        self._executor.shutdown(wait=False, cancel_futures=True)
        return not not_done
