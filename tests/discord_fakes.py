"""Test doubles for Discord: a guild with members and roles through dpytest (prefix commands), and an
:class:`Interaction` double for what dpytest cannot feed (slash commands, buttons, modals).

Discord's servers are the external boundary: dpytest replaces the HTTP client and gateway; everything
behind the bot (service, engine, store, forge) is real.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import discord
import discord.ext.test as dpytest
from discord.ext.test import backend

from devops_automation.discord_bot import DiscordBot
from devops_automation.service import CrewService


@dataclass
class Guild:
    """A configured dpytest guild: the bot, three members, and what the bot sent (payloads as sent)."""

    bot: DiscordBot
    alice: discord.Member  # requester and approver
    bob: discord.Member  # approver
    carol: discord.Member  # neither role
    channel: discord.TextChannel
    sent: list[dict[str, Any]] = field(default_factory=list)  # every send and edit's JSON payload

    async def say(self, text: str, member: discord.Member) -> None:
        """``member`` writes ``text`` in the channel; returns when the bot's handlers are done."""
        await dpytest.message(text, channel=self.channel, member=member)

    def replies(self) -> list[dict[str, Any]]:
        """The payloads the bot sent or edited, oldest first, then forgets them."""
        out, self.sent[:] = list(self.sent), []
        return out


@asynccontextmanager
async def discord_guild(service: CrewService, *, approver_role: str = "Reviewers") -> AsyncIterator[Guild]:
    """A bot over ``service`` in a dpytest guild whose ``approver_role`` members may approve."""
    bot = DiscordBot(service.settings, service, sync_commands=False)
    await bot._async_setup_hook()  # dpytest needs the loop-bound setup before configure
    dpytest.configure(bot, members=["alice", "bob", "carol"])
    bot._connection._command_tree = bot.tree
    await bot.setup_hook()  # as login() would: commands, slash group, persistent buttons
    config = dpytest.get_config()
    guild = config.guilds[0]
    reviewers = backend.make_role(approver_role, guild)
    alice, bob, carol = config.members
    await dpytest.add_role(alice, reviewers)
    await dpytest.add_role(bob, reviewers)
    found = Guild(
        bot, guild.get_member(alice.id), guild.get_member(bob.id), guild.get_member(carol.id), config.channels[0]
    )
    http = bot.http
    original_send, original_edit = http.send_message, http.edit_message

    # dpytest's fake HTTP finds the channel (or message) in its caller's locals: keep them in ours.
    async def send_message(channel_id: int, *, params: Any) -> Any:
        channel = sys._getframe(1).f_locals.get("channel")  # noqa: F841 - read by dpytest
        found.sent.append({"op": "send", **(params.payload or {})})
        return await original_send(channel_id, params=params)

    async def edit_message(channel_id: int, message_id: int, **fields: Any) -> Any:
        self = sys._getframe(1).f_locals.get("self")  # noqa: F841 - read by dpytest
        params = fields.get("params")
        found.sent.append({"op": "edit", **((params.payload if params is not None else fields) or {})})
        return await original_edit(channel_id, message_id, **fields)

    http.send_message, http.edit_message = send_message, edit_message  # type: ignore[method-assign]
    try:
        yield found
    finally:
        await dpytest.empty_queue()
        bot.ws = None  # dpytest's fake gateway has no socket to close
        await bot.close()


class FakeResponse:
    """``Interaction.response``: records defer, send_message and send_modal."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.modal: discord.ui.Modal | None = None

    def is_done(self) -> bool:
        return bool(self.calls)

    async def defer(self, **kwargs: Any) -> None:
        assert not self.calls, "an interaction is answered once"
        self.calls.append(("defer", kwargs))

    async def send_message(self, content: str | None = None, **kwargs: Any) -> None:
        assert not self.calls, "an interaction is answered once"
        self.calls.append(("send_message", {"content": content, **kwargs}))

    async def send_modal(self, modal: discord.ui.Modal) -> None:
        assert not self.calls, "an interaction is answered once"
        self.calls.append(("send_modal", {}))
        self.modal = modal


class FakeFollowup:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, content: str | None = None, **kwargs: Any) -> None:
        self.sent.append({"content": content, **kwargs})


class FakeInteraction:
    """What the bot's slash commands, buttons and modals use of a ``discord.Interaction``."""

    def __init__(self, client: DiscordBot, user: Any) -> None:
        self.client, self.user = client, user
        self.guild = getattr(user, "guild", None)
        self.response = FakeResponse()
        self.followup = FakeFollowup()
        self.edits: list[dict[str, Any]] = []

    async def edit_original_response(self, **kwargs: Any) -> None:
        assert self.response.is_done(), "the original response is edited only after it was deferred"
        self.edits.append(kwargs)

    def last_text(self) -> str:
        """The last thing the user saw: a followup, an edit's content, or a direct answer."""
        if self.followup.sent:
            return str(self.followup.sent[-1]["content"])
        if self.edits and self.edits[-1].get("content"):
            return str(self.edits[-1]["content"])
        return str(self.response.calls[-1][1].get("content"))


@dataclass
class FakeRole:
    name: str


@dataclass
class FakeGuild:
    id: int


@dataclass
class FakeMember:
    """What the bot reads of a ``discord.Member`` (for tests without a dpytest guild)."""

    id: int
    display_name: str
    guild: FakeGuild | None = field(default_factory=lambda: FakeGuild(1))
    roles: list[FakeRole] = field(default_factory=list)


class RecordingResponder:
    """A :class:`~devops_automation.discord_bot.responders.Responder` that keeps what it was given."""

    def __init__(self) -> None:
        self.shown: list[discord.Embed] = []
        self.refused: list[str] = []
        self.began = 0

    async def begin(self, text: str | None) -> None:
        self.began += 1

    async def show(self, embed: discord.Embed, view: Any) -> None:
        self.shown.append(embed)

    async def refuse(self, text: str) -> None:
        self.refused.append(text)
