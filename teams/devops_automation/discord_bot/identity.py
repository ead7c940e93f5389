"""Who is asking on Discord: a guild member becomes an :class:`~devops_automation.authz.Actor`.

The actor is ``discord:<user id>`` (a snowflake: display names change and can be copied, ids cannot),
with the member's display name for people to read. Roles come from the member's guild roles, named in
the settings (:meth:`~devops_automation.settings.Settings.discord_role_names`):

- everyone the bot answers is a ``viewer``;
- ``requester`` when DEVOPS_CREW_DISCORD_REQUESTER_ROLES is empty or the member holds one of its roles;
- ``approver`` (approve, override, reject) when the member holds one of DEVOPS_CREW_DISCORD_APPROVER_ROLES.

Direct messages carry no guild roles, so the bot refuses them; with DEVOPS_CREW_DISCORD_GUILD_ID set it
answers in that guild only. Four eyes is the service's (authz): the requester's actor key is
``discord:<id>``, so the same person clicking Approve is refused there.
"""

from __future__ import annotations

import re
from typing import Any

from ..authz import Actor, Channel, Role
from ..settings import Settings

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


class UsageError(Exception):
    """A command the bot will not run as given; the message is one short line for the user."""


def actor_for(user: Any, settings: Settings) -> Actor:
    """The actor of a Discord ``user`` (a ``discord.Member``: ``id``, ``display_name``, ``guild``,
    ``roles`` with ``.name``). Raises UsageError for a direct message (no guild) or another guild than
    DEVOPS_CREW_DISCORD_GUILD_ID."""
    guild = getattr(user, "guild", None)
    if guild is None or not hasattr(user, "roles"):
        raise UsageError("use the team commands in the server, not in direct messages")
    if settings.discord_guild_id is not None and guild.id != settings.discord_guild_id:
        raise UsageError("this bot does not take commands in this server")
    held = {str(role.name).casefold() for role in user.roles}
    roles = {Role.viewer}
    requesters = settings.discord_role_names("requester")
    if not requesters or held & requesters:
        roles.add(Role.requester)
    if held & settings.discord_role_names("approver"):
        roles.add(Role.approver)
    name = _UNPRINTABLE.sub("", str(getattr(user, "display_name", "") or ""))[:200]
    return Actor(id=str(user.id), channel=Channel.discord, display_name=name, roles=frozenset(roles))
