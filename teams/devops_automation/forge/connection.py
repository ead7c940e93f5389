"""Which forge a process talks to, and how git reaches the target repository.

With ``GITHUB_TOKEN`` set: GitHub (or GitHub Enterprise, or any server at ``GITHUB_API_URL`` speaking its
REST shape). Without it: the embedded local forge under ``$DEVOPS_CREW_HOME/forge`` — the one started by
``devops-crew forge serve`` if it is running, else one started inside this process for its lifetime.
Either way the same :class:`GitHubForge` (PyGithub) code opens the pull requests.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import Settings
from .github import DEFAULT_API_URL, GitHubForge

if TYPE_CHECKING:
    from ..audit import Auditor
    from ..localforge import LocalForge

EMBEDDED_LABEL = "embedded local forge"
REVIEW_TEAM = "platform-team"


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


def local_forge(settings: Settings, token: str, auditor: Auditor | None) -> LocalForge:
    """The embedded forge (not yet serving), with the target repository seeded with example teams."""
    from ..localforge import LocalForge
    from ..target import SEED_DIR

    forge = LocalForge(forge_dir(settings), token=token)
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
    """`devops-crew forge serve`: serve in the foreground and advertise the URL to other processes."""
    token = embedded_token(settings)
    forge = local_forge(settings, token, None)

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


@dataclass
class ForgeConnection:
    forge: GitHubForge
    git_url: str
    git_token: str
    local: LocalForge | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.forge.label.startswith(EMBEDDED_LABEL)

    def close(self) -> None:
        self.forge.close()
        if self.local is not None:
            self.local.close()


def open_forge(settings: Settings, auditor: Auditor | None = None) -> ForgeConnection:
    if settings.github_token is not None:
        token = settings.github_token.get_secret_value()
        api_url = settings.github_api_url or DEFAULT_API_URL
        forge = GitHubForge(
            api_url,
            token,
            settings.target_repo,
            label=f"GitHub ({api_url})",
            max_wait_seconds=settings.retry_max_wait_seconds,
        )
        git_url = settings.target_repo_url or forge.repo.clone_url
        return ForgeConnection(forge, git_url, token)
    token = embedded_token(settings)
    api_url = _running_endpoint(settings, token)
    local = None
    if api_url is None:
        local = local_forge(settings, token, auditor)
        try:  # the usual port keeps printed PR links valid for a later `forge serve`
            api_url = local.start(port=settings.forge_port)
        except OSError:
            api_url = local.start(port=0)
    forge = GitHubForge(
        api_url,
        token,
        settings.target_repo,
        label=f"{EMBEDDED_LABEL} ({api_url})",
        throttle=False,
        max_wait_seconds=settings.retry_max_wait_seconds,
    )
    web_url = api_url.removesuffix("/api/v3")
    return ForgeConnection(forge, f"{web_url}/{settings.target_repo}.git", token, local)
