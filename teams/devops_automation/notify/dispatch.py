"""Sends the outbox: each due delivery claimed, sent, audited and recorded; a failing channel is retried
with exponential backoff and never fails a request, and the next event still goes out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ..audit import Auditor
from ..errors import ConfigurationError, Unavailable
from ..forge.links import PullLinks
from .channels import ChannelError, NotificationChannel
from .events import with_links
from .outbox import Delivery, Outbox


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between attempts of one delivery: ``base_seconds * 2**(attempt-1)``, at most
    ``max_seconds``, or what the channel asked for (Retry-After); after ``max_attempts`` it is
    ``dead`` (recorded and audited, never retried)."""

    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempts: int, asked: float | None = None) -> float:
        backoff = min(self.base_seconds * 2 ** max(attempts - 1, 0), self.max_seconds)
        return max(backoff, asked or 0.0)


@dataclass
class DispatchReport:
    """What one :meth:`Dispatcher.deliver_due` pass did: counts per outcome."""

    sent: int = 0
    retrying: int = 0
    dead: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


class Dispatcher:
    """Delivers due outbox rows to ``channels`` (by name). ``lease_seconds``: how long a claimed
    delivery is this process's before another may take it over (a sender that died)."""

    def __init__(
        self,
        outbox: Outbox,
        channels: dict[str, NotificationChannel],
        auditor: Auditor,
        *,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 120.0,
        links: PullLinks | None = None,
    ) -> None:
        """``links``: how pull request links are shown when sent (``forge.links``; default as stored)."""
        self.outbox, self.channels, self.auditor = outbox, channels, auditor
        self.links = links or PullLinks()
        self.retry = retry or RetryPolicy()
        self.lease_seconds = lease_seconds

    def deliver_due(self, *, budget_seconds: float = 30.0, limit: int = 100) -> DispatchReport:
        """One pass over what is due now, for at most about ``budget_seconds``. Never raises for a
        channel's failure."""
        report = DispatchReport()
        deadline = time.monotonic() + budget_seconds
        for delivery in self.outbox.due(datetime.now(UTC), limit):
            if time.monotonic() > deadline:
                break
            channel = self.channels.get(delivery.channel)
            if channel is None:  # configured when the event was made, not any more: keep it for later
                report.skipped += 1
                continue
            if not self.outbox.claim(delivery, datetime.now(UTC), self.lease_seconds):
                report.skipped += 1
                continue
            self._send(channel, delivery, report)
        return report

    def _send(self, channel: NotificationChannel, delivery: Delivery, report: DispatchReport) -> None:
        attempt = delivery.attempts + 1
        try:
            with self.auditor.action(
                "notify.send",
                f"{delivery.channel}:{delivery.kind}",
                request_id=delivery.request_id,
                notification=delivery.notification_id,
                attempt=attempt,
            ) as call:
                warning = channel.send(replace(delivery, payload=with_links(delivery.payload, self.links)))
                if warning:
                    call.result.update(warning=warning)
        except ChannelError as exc:
            self._failed(delivery, attempt, str(exc), exc.retry_after, exc.permanent, report)
        except ConfigurationError as exc:  # e.g. the bot's channel is not set or gone: retrying cannot help
            self._failed(delivery, attempt, str(exc), None, True, report)
        except Unavailable as exc:
            self._failed(delivery, attempt, str(exc), exc.retry_after, False, report)
        except Exception as exc:
            self._failed(delivery, attempt, f"{type(exc).__name__}: {exc}"[:300], None, False, report)
        else:
            self.outbox.finish(delivery, status="sent", error=warning)
            report.sent += 1

    def _failed(
        self,
        delivery: Delivery,
        attempt: int,
        error: str,
        asked: float | None,
        permanent: bool,
        report: DispatchReport,
    ) -> None:
        report.errors.append(f"{delivery.channel} {delivery.notification_id}: {error}")
        if permanent or attempt >= self.retry.max_attempts:
            self.outbox.finish(delivery, status="dead", error=error)
            self.auditor.event(
                "notify.gave_up", delivery.channel, request_id=delivery.request_id, attempts=attempt, error=error
            )
            report.dead += 1
            return
        retry_at = datetime.now(UTC) + timedelta(seconds=self.retry.delay(attempt, asked))
        self.outbox.finish(delivery, status="pending", error=error, retry_at=retry_at)
        report.retrying += 1
