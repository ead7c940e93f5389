"""Where an action's answer goes: a prefix command's channel, a slash command's interaction, or the
message a button sits on. :mod:`.actions` speaks only to :class:`Responder`, so every command and
button shares one behaviour, and tests drive it through the real discord.py objects or test doubles.

Each responder sends with ``AllowedMentions.none()``.
"""

from __future__ import annotations

from typing import Any, Protocol

import discord

from .embeds import NO_MENTIONS


class Responder(Protocol):
    """One answer, shown and then updated in place while engine work runs."""

    async def begin(self, text: str | None) -> None:
        """Acknowledge at once (Discord wants an interaction answered within 3 s); ``text`` is shown
        where a channel message is the only way to say "working"."""

    async def show(self, embed: discord.Embed, view: discord.ui.View | None) -> None:
        """Show ``embed`` (and buttons), replacing what this responder showed before."""

    async def refuse(self, text: str) -> None:
        """A short refusal or usage message (one line, escaped by the caller)."""


class ContextResponder:
    """A prefix command: the first answer is a reply in the channel, later ones edit it."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.message: discord.Message | None = None

    async def _put(self, **fields: Any) -> None:
        if self.message is None:
            self.message = await self.ctx.send(allowed_mentions=NO_MENTIONS, **fields)
        else:
            await self.message.edit(allowed_mentions=NO_MENTIONS, **fields)

    async def begin(self, text: str | None) -> None:
        if text:
            await self._put(content=text)

    async def show(self, embed: discord.Embed, view: discord.ui.View | None) -> None:
        if self.message is None:
            await self._put(embed=embed, **({"view": view} if view is not None else {}))
        else:
            await self._put(content=None, embed=embed, view=view)

    async def refuse(self, text: str) -> None:
        if self.message is None:
            await self._put(content=text)
        else:
            await self._put(content=text, embed=None, view=None)


class SlashResponder:
    """A slash command: deferred ("thinking"), then the original response is edited."""

    def __init__(self, interaction: Any) -> None:
        self.interaction = interaction

    async def begin(self, text: str | None) -> None:
        if not self.interaction.response.is_done():
            await self.interaction.response.defer(thinking=True)

    async def show(self, embed: discord.Embed, view: discord.ui.View | None) -> None:
        fields: dict[str, Any] = {"content": None, "embed": embed, "allowed_mentions": NO_MENTIONS}
        if view is not None:
            fields["view"] = view
        await self.interaction.edit_original_response(**fields)

    async def refuse(self, text: str) -> None:
        if not self.interaction.response.is_done():
            await self.interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await self.interaction.edit_original_response(content=text, embed=None, view=None, allowed_mentions=NO_MENTIONS)


class ComponentResponder:
    """A button or the reason form behind one: the request's message is edited in place; a refusal
    goes only to the person who clicked (ephemeral)."""

    def __init__(self, interaction: Any) -> None:
        self.interaction = interaction

    async def begin(self, text: str | None) -> None:
        if not self.interaction.response.is_done():
            await self.interaction.response.defer()

    async def show(self, embed: discord.Embed, view: discord.ui.View | None) -> None:
        await self.interaction.edit_original_response(embed=embed, view=view, allowed_mentions=NO_MENTIONS)

    async def refuse(self, text: str) -> None:
        if not self.interaction.response.is_done():
            await self.interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await self.interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
