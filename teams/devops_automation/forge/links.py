"""Web links to the embedded forge's pull requests, built when they are shown, not frozen when stored.

Issue "The embedded forge keeps GitHub's guarantees…", *links that keep working*: a pull request the
embedded forge opened carries the base URL the forge had at that moment (``http://127.0.0.1:3131``, or a
random port when 3131 was busy). Every view of a request (CLI ``status``, the JSON API, the dashboard, A2A
answers, Discord embeds, notifications) passes its stored link through :meth:`PullLinks.url`, which puts
the embedded forge's *current* public base (``DEVOPS_CREW_FORGE_PUBLIC_URL``, else
``http://127.0.0.1:<forge_port>``) in front of the link's ``/<owner>/<repo>/pull/<n>`` path. GitHub's links
(github.com or GitHub Enterprise) are stable and are shown as stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..settings import Settings

# The tail of a pull request's web link on GitHub and on the embedded forge (``html_url``).
PULL_PATH = re.compile(r"(/[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}/pull/[0-9]{1,12})/?")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def public_base(settings: Settings) -> str | None:
    """The embedded forge's public base URL: ``DEVOPS_CREW_FORGE_PUBLIC_URL``, else
    ``http://127.0.0.1:<forge_port>``; None when the port is 0 (chosen at start, so links follow the
    address each client used)."""
    if settings.forge_public_url:
        return settings.forge_public_url.rstrip("/")
    return f"http://127.0.0.1:{settings.forge_port}" if settings.forge_port else None


@dataclass(frozen=True)
class PullLinks:
    """Rebuilds stored pull request links against the embedded forge's current public base.

    ``base``: ``http(s)://host[:port]`` (no trailing slash), or None when the embedded forge is not the
    configured forge or its port is chosen at start (``forge_port`` 0): then every link is shown as stored.
    """

    base: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> PullLinks:
        """The links of ``settings``: rebuilt only when the configured forge is the embedded one."""
        from . import forge_kind

        return cls(public_base(settings) if forge_kind(settings) == "local" else None)

    def url(self, stored: str | None, forge: str | None = None) -> str | None:
        """``stored`` with the current base when the pull request is the embedded forge's: ``forge`` is the
        kind recorded when it was opened (``"local"``); for rows from before that was recorded (None), a
        link to a loopback host is taken to be the embedded forge's. Anything else comes back unchanged
        (including a link whose path is not ``/<owner>/<repo>/pull/<n>``)."""
        if stored is None or self.base is None or forge not in ("local", None):
            return stored
        parts = urlsplit(stored)
        if forge is None and (parts.hostname or "") not in LOOPBACK_HOSTS:
            return stored
        path = PULL_PATH.fullmatch(parts.path)
        if parts.scheme not in ("http", "https") or path is None:
            return stored
        return self.base + path.group(1)
