"""The ``local`` adapter: the embedded forge (distribution ``devops-crew-localforge``) as the target.

The embedded forge speaks GitHub's REST shape, so this adapter is the GitHub adapter pointed at it, plus
the server's life cycle: the one ``devops-crew forge serve`` runs for this state directory if it
answers, else one started inside this process for its lifetime (on ``DEVOPS_CREW_FORGE_PORT``; a free port
if that one is taken). Its web links are built from ``forge_public_url`` (default
``http://127.0.0.1:<forge_port>``), so a printed pull request link keeps working for a later
``forge serve`` whatever port this process got. Whenever it opens, the target's base branch gets the
protection the settings give (:func:`protect_target`), and the reviewers the settings name get tokens
(:func:`reviewer_token`). The product reaches the embedded forge only through here.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..registry import SEED_DIR
from ..settings import Settings
from .github import GitHubForge
from .links import public_base

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


def _secret_file(path: Path) -> str:
    """The token in ``path``, made once (``lf_`` + 32 random bytes) and readable by this user only."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "lf_" + secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def embedded_token(settings: Settings) -> str:
    """The embedded forge's token: made once, kept readable by this user only."""
    return _secret_file(forge_dir(settings) / "token")


LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


def reviewers(settings: Settings) -> list[str]:
    """The logins of ``forge_reviewers``; ConfigurationError for one GitHub would not accept."""
    logins = [login.strip() for login in settings.forge_reviewers.split(",") if login.strip()]
    bad = [login for login in logins if not LOGIN_RE.match(login)]
    if bad:
        raise ConfigurationError(f"DEVOPS_CREW_FORGE_REVIEWERS: not a valid login: {bad[0]!r}")
    return logins


def reviewer_token(settings: Settings, login: str) -> str:
    """The embedded forge's token for reviewer ``login`` (``<home>/forge/tokens/<login>``, mode 0600)."""
    if login not in reviewers(settings):
        raise ConfigurationError(f"{login!r} is not one of DEVOPS_CREW_FORGE_REVIEWERS")
    return _secret_file(forge_dir(settings) / "tokens" / login)


def required_checks(settings: Settings) -> list[str]:
    return [c.strip() for c in settings.forge_required_checks.split(",") if c.strip()]


def protect_target(forge: Any, settings: Settings) -> None:
    """Give the target's base branch the protection of the settings (or none, with forge_protect_base
    off), replacing what it had: the settings are the source of truth each time the forge opens."""
    if not settings.forge_protect_base:
        forge.unprotect_branch(settings.target_repo, settings.base_branch)
        return
    forge.protect_branch(
        settings.target_repo,
        settings.base_branch,
        required_checks(settings),
        enforce_admins=settings.forge_enforce_admins,
        required_approving_review_count=settings.forge_required_approvals,
        dismiss_stale_reviews=True,
    )


TRACKING_RE = re.compile(r"Tracking id: `([A-Za-z0-9._-]{1,200})`")


def dashboard_links(settings: Settings) -> Any:
    """``page_links`` for the forge's pull request page: the dashboard's page of the request a pull request
    body names by its tracking id (``pr_text.body``), at ``DEVOPS_CREW_PUBLIC_URL`` or the server's
    configured address."""
    host = "127.0.0.1" if settings.server_host in ("0.0.0.0", "::", "") else settings.server_host  # noqa: S104
    base = (settings.public_url or f"http://{host}:{settings.server_port}").rstrip("/")

    def links(body: str, head_ref: str) -> list[tuple[str, str]]:
        found = TRACKING_RE.search(body)
        return [(f"devops-crew request {found.group(1)}", f"{base}/requests/{found.group(1)}")] if found else []

    return links


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
    """The embedded forge (not yet serving), with the target repository seeded with example teams, its
    base branch protected (:func:`protect_target`) and the reviewers of the settings added."""
    forge = _localforge().LocalForge(
        forge_dir(settings), token=token, public_url=public_base(settings), page_links=dashboard_links(settings)
    )
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
    protect_target(forge, settings)
    for login in reviewers(settings):
        forge.add_user(login, token=reviewer_token(settings, login))
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
        self.settings = settings

    def approve_pull_request(self, number: int, sha: str, reviewer: str, body: str) -> bool:
        """Approve as ``reviewer`` with their forge token when they are one of ``forge_reviewers`` (an
        approver who merges from the dashboard has passed four eyes there; the forge's protection then sees
        their review, as it would see them approve on GitHub); False for anyone else."""
        if reviewer not in reviewers(self.settings):
            return False
        self.review_as(reviewer_token(self.settings, reviewer), number, sha, body)
        return True

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
