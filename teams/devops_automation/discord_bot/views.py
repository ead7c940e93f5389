"""The Approve / Reject buttons on a request's message, and the form that asks a rejection's reason.

The buttons are :class:`discord.ui.DynamicItem` s: each ``custom_id`` carries the request id
(``devops-crew:approve:<id>``), and :meth:`DiscordBot.setup_hook` registers the two classes with
``add_dynamic_items``, so a button on a message sent before a restart still works after it (discord.py
rebuilds the item from the ``custom_id`` of the click; no view state lives in memory). A click is
answered by :mod:`.actions` as the clicking member, so four eyes is the service's to enforce.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from .responders import ComponentResponder

#: The request ids the engine makes (``req-`` + hex) and any the store might hold: at most 40 characters.
REQUEST_ID = r"[A-Za-z0-9_-]{1,40}"


def _actions(interaction: discord.Interaction) -> Any:
    return interaction.client.actions  # type: ignore[attr-defined]  # a DiscordBot


class ApproveButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"devops-crew:approve:(?P<id>{REQUEST_ID})"):
    """Approve (the cost ceiling or a rate limit) the request named in the ``custom_id``."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Approve", style=discord.ButtonStyle.success, custom_id=f"devops-crew:approve:{request_id}"
            )
        )
        self.request_id = request_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ApproveButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _actions(interaction).approve(interaction.user, self.request_id, ComponentResponder(interaction))


class RejectButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"devops-crew:reject:(?P<id>{REQUEST_ID})"):
    """Open the :class:`RejectModal` for the request named in the ``custom_id``."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Reject", style=discord.ButtonStyle.danger, custom_id=f"devops-crew:reject:{request_id}"
            )
        )
        self.request_id = request_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RejectButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(RejectModal(self.request_id))


class RejectModal(discord.ui.Modal):
    """Asks why (required, at most 2,000 characters, as the service allows), then rejects."""

    reason: discord.ui.TextInput[RejectModal] = discord.ui.TextInput(
        label="Why is this request rejected?", style=discord.TextStyle.paragraph, min_length=1, max_length=2000
    )

    def __init__(self, request_id: str) -> None:
        super().__init__(title=f"Reject {request_id}"[:45])
        self.request_id = request_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await _actions(interaction).reject(
            interaction.user, self.request_id, self.reason.value, ComponentResponder(interaction)
        )


def decision_view(request_id: str) -> discord.ui.View:
    """A persistent view (no timeout) with Approve and Reject for ``request_id``. Build it inside a
    running event loop (discord.py's rule for views)."""
    view = discord.ui.View(timeout=None)
    view.add_item(ApproveButton(request_id))
    view.add_item(RejectButton(request_id))
    return view
