"""Fault injection: make the next N matching requests fail the way GitHub sometimes does.

A fault matches on the HTTP method (``"*"`` for any) and a regular expression searched in the request path
(below the API prefix for API requests, without the query string). It answers before authentication and
before any state changes, like a failing proxy or GitHub's rate limiter, so a retried request still does
its work exactly once.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

SECONDARY_RATE_LIMIT = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach "
    "out to GitHub Support for help, please include the request ID."
)
DOC_RATE_LIMITS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    retry_after: int | None
    body: dict[str, Any] | None
    headers: dict[str, str] | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in ("*", method) and self.pattern.search(path) is not None

    def response(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        headers.update(self.headers or {})
        if self.body is not None:
            return self.status, self.body, headers
        if self.status == 429 or (self.status == 403 and self.retry_after is not None):
            message = SECONDARY_RATE_LIMIT
            doc = f"{DOC_RATE_LIMITS}#about-secondary-rate-limits"
        else:
            try:
                message = HTTPStatus(self.status).phrase
            except ValueError:
                message = "Error"
            doc = "https://docs.github.com/rest"
        return self.status, {"message": message, "documentation_url": doc, "status": str(self.status)}, headers


class FaultInjector:
    """Thread-safe list of pending faults; each matching request consumes one use of the first match."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        if not 400 <= status <= 599:
            raise ValueError("a fault's status must be 4xx or 5xx")
        fault = Fault(method.upper(), re.compile(path_regex), status, times, retry_after, body, headers)
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
