"""The Discord bot: an entry point like the CLI and the server, calling only the service layer.

- :mod:`.identity` turns a Discord member into an :class:`~devops_automation.authz.Actor` (channel
  ``discord``, roles from the member's guild roles as the settings map them);
- :mod:`.actions` is what every command and button does, over a :class:`~.responders.Responder`;
- :mod:`.commands` holds the ``!team …`` prefix commands and the ``/team …`` slash commands;
- :mod:`.views` the persistent Approve / Reject buttons and the reason form;
- :mod:`.embeds` renders a request's SUMMARY as an embed;
- :mod:`.bot` is :class:`DiscordBot` (also :meth:`DiscordBot.post_notice` for notifications) and
  :func:`run_bot` (``devops-crew discord``); :mod:`.embedded` starts the bot inside ``serve``.
"""

from __future__ import annotations

from .bot import DiscordBot, run_bot

__all__ = ["DiscordBot", "run_bot"]
