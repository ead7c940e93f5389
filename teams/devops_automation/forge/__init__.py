"""The forge interface (:mod:`.base`) and its adapters: ``github`` (PyGithub), ``local`` (the embedded
forge, through the same client) and ``fake`` (in memory, for fast tests).

:func:`open_forge` picks one from ``DEVOPS_CREW_FORGE`` (default: ``github`` when ``GITHUB_TOKEN`` is
set, else ``local``). Adapters are imported only when chosen, so a GitHub-only install never needs the
embedded forge and nothing outside :mod:`.github` imports ``github``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .base import DEFAULT_API_URL, Forge, PRContent, PullRequest, http_token_env

if TYPE_CHECKING:
    from ..audit import Auditor
    from ..settings import Settings

__all__ = ["Forge", "PRContent", "PullRequest", "forge_kind", "http_token_env", "open_forge"]


def forge_kind(settings: Settings) -> str:
    """``github``, ``local`` or ``fake``: the setting, else ``github`` exactly when a token is configured."""
    return settings.forge or ("github" if settings.github_token is not None else "local")


def open_forge(settings: Settings, auditor: Auditor | None = None) -> Forge:
    """The forge ``settings`` name. Raises ConfigurationError (GitHub without a token, the embedded forge
    not installed) and ForgeError (the forge does not answer, or has no such repository)."""
    kind = forge_kind(settings)
    if kind == "github":
        from .github import GitHubForge

        if settings.github_token is None:
            raise ConfigurationError("DEVOPS_CREW_FORGE=github needs GITHUB_TOKEN (and TARGET_REPO=owner/name)")
        api_url = settings.github_api_url or DEFAULT_API_URL
        return GitHubForge(
            api_url,
            settings.github_token.get_secret_value(),
            settings.target_repo,
            label=f"GitHub ({api_url})",
            max_wait_seconds=settings.retry_max_wait_seconds,
            git_url=settings.target_repo_url,
        )
    if kind == "local":
        from .local import open_embedded

        return open_embedded(settings, auditor)
    from ..registry import SEED_DIR
    from .fake import FakeForge

    return FakeForge(settings.home / "fake-forge" / "teams.git", seed=SEED_DIR, base_branch=settings.base_branch)
