"""The Discord bot inside ``devops-crew serve``: started by the application's lifespan when DISCORD_TOKEN
is set, on the server's event loop, sharing the server's service and threads.

Engine runs go to the server's worker pool (``Runtime.pool.run``: refused while draining), short calls
to its io threads (``Runtime.quick``), and every SUMMARY a command produced to the event hub (the
dashboard's live feed). The bot is reachable as ``Runtime.discord`` (for
:meth:`~.bot.DiscordBot.post_notice`). A bot that cannot log in (a refused token, Discord out of reach)
is logged in one line and the server keeps serving without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from ..settings import Settings
from .bot import DiscordBot

if TYPE_CHECKING:
    from ..server.runtime import Runtime

log = logging.getLogger("devops_crew.discord")
Hook = Callable[["Runtime"], Awaitable[None]]


async def _connect(bot: DiscordBot, token: str) -> None:
    try:
        await bot.start(token)
    except discord.LoginFailure:
        log.error("discord: DISCORD_TOKEN was refused by Discord; the server runs without the bot")
    except discord.PrivilegedIntentsRequired:
        log.error("discord: enable the message content and server members intents for the bot; running without it")
    except (discord.HTTPException, discord.GatewayNotFound, OSError) as exc:
        log.error("discord: cannot reach Discord (%s); the server runs without the bot", " ".join(str(exc).split()))


def install(settings: Settings, startup: list[Hook], shutdown: list[Hook]) -> None:
    """Add the bot's start and stop to a server's lifespan hooks. Needs ``settings.discord_token``."""
    assert settings.discord_token is not None
    token = settings.discord_token.get_secret_value()
    running: dict[str, Any] = {}

    async def start(rt: Runtime) -> None:
        bot = DiscordBot(
            settings,
            rt.service,
            engine=rt.pool.run,
            quick=rt.quick,
            on_view=rt.published,
            admit=rt.pool.check_capacity,
        )
        rt.discord = bot
        running["task"] = asyncio.create_task(_connect(bot, token), name="devops-crew discord bot")
        running["bot"] = bot

    async def stop(rt: Runtime) -> None:
        bot, task = running.get("bot"), running.get("task")
        if bot is not None:
            await bot.close()
        if task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=5)

    startup.append(start)
    shutdown.append(stop)
