""":class:`DiscordBot` (a ``discord.ext.commands.Bot``) and :func:`run_bot` for ``devops-crew discord``.

The bot needs the privileged intents ``message_content`` (prefix commands read the message) and
``members`` (roles of the member who asks); enable both for the application in Discord's developer
portal. It mentions nobody: ``AllowedMentions.none()`` is its default and every send repeats it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from ..errors import ConfigurationError, Unavailable
from ..service import CrewService, Hooks, View
from ..settings import Settings
from .actions import Runner, TeamActions
from .commands import TeamCog, slash_group
from .embeds import NO_MENTIONS, notice_embed
from .views import ApproveButton, RejectButton, decision_view

log = logging.getLogger("devops_crew.discord")
#: States whose notices carry the Approve / Reject buttons.
NOTICE_BUTTON_STATES = frozenset({"awaiting_approval", "refused"})


def bot_intents() -> discord.Intents:
    """Default intents plus ``message_content`` and ``members``."""
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    return intents


class DiscordBot(commands.Bot):
    """The devops-crew bot over ``service``.

    ``engine`` and ``quick`` run blocking calls on threads (``await runner(fn, *args)``): inside
    ``serve`` the server's worker pool and io threads; without them the bot keeps its own pool of
    DEVOPS_CREW_SERVER_WORKERS threads. ``on_view`` sees each SUMMARY a command produced; ``admit`` is
    the server pool's capacity check (a request is refused before it is recorded when the pool is full).
    ``sync_commands`` (default DEVOPS_CREW_DISCORD_SYNC_COMMANDS) registers the slash commands with
    Discord at start; tests pass False (that call would reach Discord)."""

    def __init__(
        self,
        settings: Settings,
        service: CrewService,
        *,
        engine: Runner | None = None,
        quick: Runner | None = None,
        on_view: Callable[[View], Any] | None = None,
        admit: Callable[[int], None] | None = None,
        sync_commands: bool | None = None,
    ) -> None:
        super().__init__(
            command_prefix=settings.discord_prefix,
            intents=bot_intents(),
            allowed_mentions=NO_MENTIONS,
            help_command=None,
        )
        self.settings = settings
        self._pool: ThreadPoolExecutor | None = None
        if engine is None or quick is None:
            self._pool = ThreadPoolExecutor(settings.server_workers, thread_name_prefix="devops-crew-discord")
        self.actions = TeamActions(
            settings,
            service,
            engine=engine or self._on_pool,
            quick=quick or self._on_pool,
            on_view=on_view,
            admit=admit,
        )
        self._sync = settings.discord_sync_commands if sync_commands is None else sync_commands

    async def _on_pool(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def setup_hook(self) -> None:
        """Register the prefix commands, the slash commands and the persistent buttons (so buttons sent
        before a restart work after it); sync the slash commands when asked to."""
        await self.add_cog(TeamCog(self.actions, self.settings.discord_prefix))
        self.tree.add_command(slash_group(self.actions))
        self.tree.on_error = self._on_app_command_error  # type: ignore[method-assign]
        self.add_dynamic_items(ApproveButton, RejectButton)
        if self._sync:
            guild = discord.Object(id=self.settings.discord_guild_id) if self.settings.discord_guild_id else None
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def on_command_error(self, ctx: commands.Context[Any], error: commands.CommandError) -> None:  # type: ignore[override]
        """Unknown commands (another bot's ``!foo``) are ignored; what the cog answered is done; anything
        else is logged and answered in one line."""
        if isinstance(error, commands.CommandNotFound):
            return
        if isinstance(error, commands.UserInputError) and ctx.cog is not None:
            return  # TeamCog.cog_command_error answered with the usage lines
        log.error("discord command %s failed: %s", ctx.command, error, exc_info=error)
        await ctx.send("internal error; the bot's log has the details", allowed_mentions=NO_MENTIONS)

    async def _on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error("discord slash command failed: %s", error, exc_info=error)
        text = "internal error; the bot's log has the details"
        if isinstance(error, app_commands.NoPrivateMessage):
            text = "use the team commands in the server, not in direct messages"
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def close(self) -> None:
        await super().close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- notifications ------------------------------------------------------------------------
    async def post_notice(
        self, title: str, text: str = "", *, url: str | None = None, summary: View | None = None
    ) -> int:
        """Post an embed to DEVOPS_CREW_DISCORD_CHANNEL_ID: ``title`` and ``text`` (both escaped: they may
        quote untrusted text), an optional ``url`` (the PR), and the request's fields when ``summary`` (a
        SUMMARY) is given; a notice of a request in ``awaiting_approval`` or ``refused`` carries the
        Approve / Reject buttons. Mentions nobody. Returns the Discord message id.
        Raises ConfigurationError (no channel configured, or not a text channel) and Unavailable (Discord
        refused or could not be reached; retry later)."""
        channel_id = self.settings.discord_channel_id
        if channel_id is None:
            raise ConfigurationError("DEVOPS_CREW_DISCORD_CHANNEL_ID is not set: the bot has no channel for notices")
        embed = notice_embed(title, text, url=url, summary=summary)
        fields: dict[str, Any] = {"embed": embed, "allowed_mentions": NO_MENTIONS}
        if summary is not None and summary.get("state") in NOTICE_BUTTON_STATES:
            fields["view"] = decision_view(summary["id"])
        try:
            channel = self.get_channel(channel_id) or await self.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise ConfigurationError(f"DEVOPS_CREW_DISCORD_CHANNEL_ID {channel_id} is not a text channel")
            message = await channel.send(**fields)
        except discord.NotFound:
            raise ConfigurationError(f"DEVOPS_CREW_DISCORD_CHANNEL_ID {channel_id}: no such channel") from None
        except (discord.HTTPException, OSError) as exc:
            raise Unavailable(f"discord did not take the notice: {' '.join(str(exc).split())[:200]}") from None
        return message.id

    def post_notice_threadsafe(
        self,
        title: str,
        text: str = "",
        *,
        url: str | None = None,
        summary: View | None = None,
        timeout: float = 10.0,
    ) -> int:
        """:meth:`post_notice` from a thread that is not the bot's (a notification worker): waits up to
        ``timeout`` seconds. Raises what :meth:`post_notice` raises, and Unavailable when the bot is not
        running or the time ran out."""
        loop = self.loop
        if not isinstance(loop, asyncio.AbstractEventLoop) or loop.is_closed() or self.is_closed():
            raise Unavailable("the Discord bot is not running")
        future = asyncio.run_coroutine_threadsafe(self.post_notice(title, text, url=url, summary=summary), loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise Unavailable(f"discord did not take the notice within {timeout:g} s") from None


def run_bot(settings: Settings, *, ready: Callable[[str], None] | None = None) -> None:
    """``devops-crew discord``: build the service and its engine, connect with DISCORD_TOKEN and answer
    until SIGTERM or SIGINT; then runs stop at their next saved state (the next start resumes them).
    ``ready(name)`` once logged in. Raises ConfigurationError (no token, Discord refused it, or the
    engine cannot be built) and Unavailable (Discord cannot be reached)."""
    if settings.discord_token is None:
        raise ConfigurationError("DISCORD_TOKEN is not set: the bot needs a bot token from Discord's developer portal")
    draining = threading.Event()
    service = CrewService(settings, hooks=Hooks(draining=draining))
    try:
        service.warm_up()
        asyncio.run(_serve(settings, service, draining, ready))
    finally:
        service.close()


async def _serve(
    settings: Settings, service: CrewService, draining: threading.Event, ready: Callable[[str], None] | None
) -> None:
    assert settings.discord_token is not None
    bot = DiscordBot(settings, service)
    loop = asyncio.get_running_loop()

    closing: list[asyncio.Task[None]] = []

    def stop() -> None:
        draining.set()
        closing.append(loop.create_task(bot.close()))

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)

    @bot.event
    async def on_ready() -> None:
        if ready is not None:
            ready(str(bot.user))

    try:
        async with bot:
            await bot.start(settings.discord_token.get_secret_value())
    except discord.LoginFailure:
        raise ConfigurationError("DISCORD_TOKEN was refused by Discord") from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigurationError(
            "enable the message content and server members intents for the bot in Discord's developer portal"
        ) from None
    except (discord.HTTPException, discord.GatewayNotFound, OSError) as exc:
        raise Unavailable(f"cannot reach Discord: {' '.join(str(exc).split())[:200]}") from None
