"""The ``local`` adapter: the embedded forge (distribution ``devops-crew-localforge``) as the target.

The embedded forge speaks GitHub's REST shape, so this adapter is the GitHub adapter pointed at it, plus
the server's life cycle: the one ``devops-crew forge serve`` runs for this state directory if it
answers, else one started inside this process for its lifetime (on ``DEVOPS_CREW_FORGE_PORT``, so printed
links stay valid for a later ``forge serve``; a free port if that one is taken). The product reaches the
embedded forge only through here.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..registry import SEED_DIR
from ..settings import Settings
from .github import GitHubForge

if TYPE_CHECKING:
    from ..audit import Auditor

EMBEDDED_LABEL = "embedded local forge"
REVIEW_TEAM = "platform-team"
MISSING = (
    "DEVOPS_CREW_FORGE=local needs the embedded forge, which is not installed: "
    "pip install ./packages/localforge (from a devops-crew checkout), or set GITHUB_TOKEN and TARGET_REPO"
)


def _localforge() -> Any:
    try:
        import localforge
    except ImportError as exc:
        raise ConfigurationError(MISSING) from exc
    return localforge


def forge_dir(settings: Settings) -> Path:
    return settings.home / "forge"


def embedded_token(settings: Settings) -> str:
    """The embedded forge's token: made once, kept readable by this user only."""
    path = forge_dir(settings) / "token"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "lf_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def endpoint_file(settings: Settings) -> Path:
    return forge_dir(settings) / "endpoint.json"


def _running_endpoint(settings: Settings, token: str) -> str | None:
    """The API URL of a `devops-crew forge serve` for this state directory, if it answers."""
    try:
        api_url = json.loads(endpoint_file(settings).read_text())["api_url"]
        request = urllib.request.Request(f"{api_url}/user", headers={"Authorization": f"token {token}"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310 - a loopback URL we wrote
            return api_url if response.status == 200 else None
    except (OSError, ValueError, KeyError):
        return None


def embedded_server(settings: Settings, token: str, auditor: Auditor | None) -> Any:
    """The embedded forge (not yet serving), with the target repository seeded with example teams."""
    forge = _localforge().LocalForge(forge_dir(settings), token=token)
    owner = settings.target_repo.split("/", 1)[0]
    try:
        forge.repo_path(settings.target_repo)
    except KeyError:
        if auditor is None:
            forge.create_repo(settings.target_repo, settings.base_branch, seed_from=SEED_DIR)
        else:
            with auditor.action("forge.create_repo", settings.target_repo, seed=str(SEED_DIR)):
                forge.create_repo(settings.target_repo, settings.base_branch, seed_from=SEED_DIR)
    forge.add_team(owner, REVIEW_TEAM)
    return forge


def serve_local_forge(settings: Settings, port: int, ready: Callable[[str], None]) -> None:
    """`devops-crew forge serve`: serve in the foreground and advertise the URL to other processes.
    Raises ConfigurationError without the embedded forge, OSError when the port cannot be bound."""
    token = embedded_token(settings)
    forge = embedded_server(settings, token, None)

    def advertise(api_url: str) -> None:
        endpoint_file(settings).write_text(json.dumps({"api_url": api_url, "pid": os.getpid()}))
        ready(api_url)

    try:
        forge.serve_forever(port=port, ready=advertise)
    finally:
        _withdraw(settings)
        forge.close()


def _withdraw(settings: Settings) -> None:
    """Remove the endpoint file, but only if this process wrote it (not another running server's)."""
    try:
        if json.loads(endpoint_file(settings).read_text()).get("pid") == os.getpid():
            endpoint_file(settings).unlink()
    except (OSError, ValueError):
        pass


class EmbeddedForge(GitHubForge):
    """The GitHub adapter against the embedded forge. ``server`` is the ``localforge.LocalForge`` this
    process started (None when it uses a running ``forge serve``): tests play GitHub's other side with it."""

    def __init__(self, api_url: str, token: str, settings: Settings, server: Any = None) -> None:
        web_url = api_url.removesuffix("/api/v3")
        super().__init__(
            api_url,
            token,
            settings.target_repo,
            label=f"{EMBEDDED_LABEL} ({api_url})",
            throttle=False,
            max_wait_seconds=settings.retry_max_wait_seconds,
            git_url=f"{web_url}/{settings.target_repo}.git",
            embedded=True,
        )
        self.server = server

    def close(self) -> None:
        super().close()
        if self.server is not None:
            self.server.close()


def open_embedded(settings: Settings, auditor: Auditor | None = None) -> EmbeddedForge:
    """Connect to (or start) the embedded forge for ``settings.home``."""
    token = embedded_token(settings)
    api_url = _running_endpoint(settings, token)
    server = None
    if api_url is None:
        server = embedded_server(settings, token, auditor)
        try:  # the usual port keeps printed PR links valid for a later `forge serve`
            api_url = server.start(port=settings.forge_port)
        except OSError:
            api_url = server.start(port=0)
    return EmbeddedForge(api_url, token, settings, server)
