"""Acknowledgements before runs: while a caller waits for its request to be recorded, runs hold back.

A server process runs the engine on worker threads beside the event loop, and Python runs one thread at a
time. Under a burst of A2A messages the loop gets a small share of the interpreter while runs render,
gate and push, and every acknowledgement waits behind them (bench/intake.py, 20 concurrent clients:
acknowledgement p50 about 450 ms, p99 about 1 s, with the loop's thread on 15 % of one core). The gate
gives intake priority: while an intake call is in flight, a run waits before it starts and at its next
step boundary (a saved state) until intake is quiet, at most ``max_wait`` seconds a time, so runs are
slowed during a burst, never starved, and a request's state is never held half-written. An A2A
acknowledgement holds the gate from recording the request until its task's first save (the caller's
answer). Under a steady stream of callers intake is seldom quiet, and every step of a run then waits the
whole ``max_wait``: runs go on, slower, while the stream lasts.

``max_wait`` is ``DEVOPS_CREW_SERVER_INTAKE_PRIORITY_SECONDS``; 0 switches the gate off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: How often a run holding back looks at the drain flag (seconds).
STOP_POLL_SECONDS = 0.05


class IntakeGate:
    """Counts intake calls in flight; runs wait on it. Safe from any thread and from the event loop (its
    lock is held only to count)."""

    def __init__(self, max_wait: float, stop: threading.Event | None = None) -> None:
        self.max_wait = max_wait
        self._stop = stop  # the process's drain flag: once set, runs no longer hold back
        self._quiet = threading.Condition()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        with self._quiet:
            return self._in_flight

    @contextmanager
    def intake(self) -> Iterator[None]:
        """Within the block, runs hold back (see the module)."""
        with self._quiet:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._quiet:
                self._in_flight -= 1
                if not self._in_flight:
                    self._quiet.notify_all()

    def hold_back(self) -> float:
        """On a worker, at a saved state: wait until no intake call is in flight, at most ``max_wait``
        seconds, and not at all once the drain flag is set (a shutdown's grace is for runs to reach
        their next saved state, not to wait here). Returns the seconds waited. Never call it on the
        event loop."""
        if self.max_wait <= 0:
            return 0.0
        started = time.monotonic()
        deadline = started + self.max_wait
        with self._quiet:
            while self._in_flight and not (self._stop is not None and self._stop.is_set()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._quiet.wait(min(left, STOP_POLL_SECONDS))
        return time.monotonic() - started
