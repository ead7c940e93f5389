"""What ``serve`` does on its own, on an interval: send the notifications that are due (retries after a
channel failed), and, when DEVOPS_CREW_REVIEW_INTERVAL_SECONDS is set, run the gap review. The review
runs under the store's lease, so with several replicas only one runs it at a time; the requests it
records are driven on this server's workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from fastapi import FastAPI

from ..errors import DevopsCrewError
from ..settings import Settings
from .runtime import SERVER_ACTOR, Runtime

log = logging.getLogger("devops_crew.server")
NOTIFY_EVERY_SECONDS = 15.0


def install(app: FastAPI, settings: Settings) -> None:
    """Start the interval jobs after start-up, stop them first at shutdown."""
    jobs: list[asyncio.Task[None]] = []
    holder = f"server-{secrets.token_hex(4)}"

    async def start(rt: Runtime) -> None:
        if rt.discord is not None and settings.discord_channel_id is not None:
            await asyncio.to_thread(rt.service.add_notification_channel, BotChannel.name, BotChannel(rt.discord))
        jobs.append(asyncio.create_task(_every(NOTIFY_EVERY_SECONDS, lambda: _notify(rt), rt)))
        if settings.review_interval_seconds > 0:
            jobs.append(asyncio.create_task(_every(settings.review_interval_seconds, lambda: _review(rt, holder), rt)))

    async def stop(_rt: Runtime) -> None:
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)


async def _every(seconds: float, work: object, rt: Runtime) -> None:
    while not rt.draining.is_set():
        await asyncio.sleep(seconds)
        if rt.draining.is_set():
            return
        try:
            await asyncio.to_thread(work)  # type: ignore[arg-type]
        except DevopsCrewError as exc:
            log.warning("interval job: %s", exc)
        except Exception:  # an interval job must never take the server down
            log.exception("interval job failed")


class BotChannel:
    """Notifications through the Discord bot running inside ``serve`` (its ``post_notice`` to
    DEVOPS_CREW_DISCORD_CHANNEL_ID), beside or instead of a webhook. Raises what ``post_notice`` raises:
    Unavailable (retried) and ConfigurationError (given up)."""

    name = "discord-bot"

    def __init__(self, bot: object) -> None:
        self.bot = bot

    def send(self, delivery: object) -> str | None:
        p = delivery.payload  # type: ignore[attr-defined]
        cost = p.get("monthly_cost_usd")
        lines = [
            ("State", p.get("state")),
            ("Cost", None if cost is None else f"${cost:,.2f}/month"),
            ("Risk", p.get("risk_level")),
            ("Why", p.get("reason")),
        ]
        text = "\n".join(f"{k}: {v}" for k, v in lines if v)
        title = f"{p['title']}: {p.get('team') or p['request_id']}"
        self.bot.post_notice_threadsafe(title, text, url=p.get("pr_url"))  # type: ignore[attr-defined]
        return None


def _notify(rt: Runtime) -> None:
    done = rt.service.deliver_notifications(SERVER_ACTOR, budget_seconds=NOTIFY_EVERY_SECONDS * 2)
    if done["errors"]:
        log.warning("notifications: %d retrying, %d given up", done["retrying"], done["dead"])


def _review(rt: Runtime, holder: str) -> None:
    view = rt.service.review_gaps(SERVER_ACTOR, drive=False, holder=holder)
    if "skipped" in view:
        return
    for request_id in view["submitted"]:
        try:
            rt.pool.submit(rt.resume_one, request_id)
        except DevopsCrewError:  # draining or full: the next start (or resume --pending) continues it
            break
    log.info("gap review: %s", view["outcomes"])
