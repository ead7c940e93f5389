"""The ``team`` commands, twice: as prefix commands (``!team request …``, a :class:`TeamCog`) and as
slash commands (``/team request …``, :func:`slash_group`). Both parse their arguments and hand over to
:class:`~.actions.TeamActions`; a missing or malformed argument is answered with the usage line, not
with discord.py's error.
"""

from __future__ import annotations

import shlex
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from .actions import TeamActions
from .embeds import NO_MENTIONS
from .identity import UsageError
from .responders import ContextResponder, SlashResponder


def usage(prefix: str) -> str:
    """The usage lines of the prefix commands."""
    p = f"{prefix}team"
    return "\n".join(
        [
            "Usage:",
            f"`{p} request <what nobody can do yet> [--skill SKILL …]`",
            f"`{p} status [request id]` · `{p} pending`",
            f"`{p} approve <id>` · `{p} override <id> <reason>` · `{p} reject <id> <reason>`",
        ]
    )


def parse_request(text: str) -> tuple[str, list[str]]:
    """``needs d3 charts --skill d3.js --skill "data visualization"`` -> the description and the
    skills. Quotes group words (shell rules). Raises UsageError for unbalanced quotes, a ``--skill``
    without a value, or no description."""
    try:
        words = shlex.split(text)
    except ValueError:
        raise UsageError("unbalanced quotes in the request") from None
    description: list[str] = []
    skills: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--skill" or word.startswith("--skill="):
            value = word.partition("=")[2] if "=" in word else (words[index + 1] if index + 1 < len(words) else "")
            index += 1 if "=" in word else 2
            if not value.strip():
                raise UsageError("--skill needs a value: --skill SKILL")
            skills.append(value.strip())
            continue
        description.append(word)
        index += 1
    if not description:
        raise UsageError("say what nobody can do yet: request <text> [--skill SKILL]")
    return " ".join(description), skills


class TeamCog(commands.Cog):
    """``!team …``: every subcommand answers with an embed, or one usage line."""

    def __init__(self, actions: TeamActions, prefix: str) -> None:
        self.actions, self.prefix = actions, prefix

    async def _usage(self, ctx: commands.Context[Any], problem: str = "") -> None:
        text = (f"{problem}\n" if problem else "") + usage(self.prefix)
        await ctx.send(text, allowed_mentions=NO_MENTIONS)

    @commands.group(name="team", invoke_without_command=True)
    async def team(self, ctx: commands.Context[Any]) -> None:
        """Without a known subcommand: the usage lines."""
        await self._usage(ctx)

    @team.command(name="request")
    async def request(self, ctx: commands.Context[Any], *, text: str = "") -> None:
        try:
            description, skills = parse_request(text)
        except UsageError as exc:
            await self._usage(ctx, str(exc))
            return
        await self.actions.request(ctx.author, description, skills, ContextResponder(ctx))

    @team.command(name="status")
    async def status(self, ctx: commands.Context[Any], request_id: str = "") -> None:
        await self.actions.status(ctx.author, request_id or None, ContextResponder(ctx))

    @team.command(name="pending")
    async def pending(self, ctx: commands.Context[Any]) -> None:
        await self.actions.pending(ctx.author, ContextResponder(ctx))

    @team.command(name="approve")
    async def approve(self, ctx: commands.Context[Any], request_id: str = "", *, reason: str = "") -> None:
        if not request_id:
            await self._usage(ctx, "which request? approve <id>")
            return
        await self.actions.approve(ctx.author, request_id, ContextResponder(ctx), reason=reason)

    @team.command(name="override")
    async def override(self, ctx: commands.Context[Any], request_id: str = "", *, reason: str = "") -> None:
        if not request_id or not reason.strip():
            await self._usage(ctx, "an override needs a request id and a reason: override <id> <reason>")
            return
        await self.actions.override(ctx.author, request_id, reason, ContextResponder(ctx))

    @team.command(name="reject")
    async def reject(self, ctx: commands.Context[Any], request_id: str = "", *, reason: str = "") -> None:
        if not request_id or not reason.strip():
            await self._usage(ctx, "a rejection needs a request id and a reason: reject <id> <reason>")
            return
        await self.actions.reject(ctx.author, request_id, reason, ContextResponder(ctx))

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        """What discord.py refuses before a command runs (e.g. an unclosed quote): the usage lines."""
        if isinstance(error, commands.UserInputError):
            await self._usage(ctx, "could not read that command")


def slash_group(actions: TeamActions) -> app_commands.Group:
    """``/team request|status|pending|approve|override|reject``, guild only."""
    group = app_commands.Group(
        name="team", description="Ask devops-crew for a new team, or decide on one", guild_only=True
    )

    @group.command(name="request", description="Ask for a team for something nobody can do yet")
    @app_commands.describe(description="What nobody in the fleet can do yet", skills="Required skills, comma-separated")
    async def request(interaction: discord.Interaction, description: str, skills: str = "") -> None:
        wanted = [s.strip() for s in skills.split(",") if s.strip()]
        await actions.request(interaction.user, description, wanted, SlashResponder(interaction))

    @group.command(name="status", description="One request, or the latest ones")
    @app_commands.describe(request_id="A request id (req-…); empty for the latest requests")
    async def status(interaction: discord.Interaction, request_id: str = "") -> None:
        await actions.status(interaction.user, request_id or None, SlashResponder(interaction))

    @group.command(name="pending", description="Requests waiting for a human")
    async def pending(interaction: discord.Interaction) -> None:
        await actions.pending(interaction.user, SlashResponder(interaction))

    @group.command(name="approve", description="Approve a waiting request (not your own)")
    async def approve(interaction: discord.Interaction, request_id: str, reason: str = "") -> None:
        await actions.approve(interaction.user, request_id, SlashResponder(interaction), reason=reason)

    @group.command(name="override", description="Lift the rate limit and cooldown for one request")
    async def override(interaction: discord.Interaction, request_id: str, reason: str) -> None:
        await actions.override(interaction.user, request_id, reason, SlashResponder(interaction))

    @group.command(name="reject", description="Reject a request")
    async def reject(interaction: discord.Interaction, request_id: str, reason: str) -> None:
        await actions.reject(interaction.user, request_id, reason, SlashResponder(interaction))

    return group
