"""``LocalForge``: the embedded stand-in for GitHub that tests, demos and ``devops-crew forge serve`` run.

It keeps bare git repositories under ``<data_dir>/repos/<owner>/<name>.git`` and its own SQLite file
(``<data_dir>/forge.sqlite3``), and serves GitHub's REST shapes on 127.0.0.1 under ``/api/v3`` so that
PyGithub talks to it as to a GitHub Enterprise Server::

    with LocalForge(tmp_path / "forge", token="t0ken") as forge:
        forge.create_repo("acme/teams", seed_from=seed_dir)
        gh = Github(base_url=forge.base_url, auth=Auth.Token("t0ken"))
        repo = gh.get_repo("acme/teams")

Push with git to ``forge.repo_path(full_name)`` (file transport) or to ``forge.clone_url(full_name)``
(smart HTTP, token as the password). State survives a restart on the same ``data_dir``; tokens do not
(they are secrets and are only held in memory).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from .api import ForgeApi
from .faults import FaultInjector
from .gitrepo import ISOLATED_GIT_ENV, BareRepo, Signature
from .server import API_PREFIX, Exchange, ForgeApp, ForgeHTTPServer, RateLimiter
from .state import ForgeState, Repo

NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
REPO_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class LocalForge:
    """Bare repositories plus a GitHub-shaped REST server; see the module docstring."""

    def __init__(
        self, data_dir: Path, token: str, owner_login: str = "devops-crew-bot", *, rate_limit: int = 5000
    ) -> None:
        if not token:
            raise ValueError("the forge needs a token")
        if not NAME_RE.match(owner_login):
            raise ValueError(f"invalid login: {owner_login!r}")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = ForgeState(self.data_dir / "forge.sqlite3")
        self.faults = FaultInjector()
        self.owner_login = owner_login
        self._tokens: dict[str, str] = {token: owner_login}
        self._git_cache: dict[Path, BareRepo] = {}
        self._git_lock = threading.Lock()
        with self.state.transaction():
            self.state.ensure_user(owner_login, email=f"{owner_login}@users.noreply.localforge.invalid")
        self.rate = RateLimiter(rate_limit)
        self.api = ForgeApi(self.state, self._git_for, self.rate.snapshot)
        self.app = ForgeApp(self.api, self.state, self._tokens, self.faults, self.rate, self._git_path)
        self._server: ForgeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # repositories, users and teams --------------------------------------------------------------------

    def _git_for(self, repo: Repo) -> BareRepo:
        with self._git_lock:
            git = self._git_cache.get(repo.path)
            if git is None:
                git = self._git_cache[repo.path] = BareRepo(repo.path)
            return git

    def _git_path(self, owner: str, name: str) -> Path | None:
        with self.state.transaction():
            repo = self.state.repo_by_name(owner, name)
        return repo.path if repo else None

    def _split(self, full_name: str) -> tuple[str, str]:
        owner, sep, name = full_name.partition("/")
        if not sep or not NAME_RE.match(owner) or not REPO_RE.match(name) or name in (".", ".."):
            raise ValueError(f"invalid repository name: {full_name!r} (expected owner/name)")
        return owner, name

    def create_repo(
        self,
        full_name: str,
        default_branch: str = "main",
        seed_from: Path | None = None,
        description: str | None = None,
    ) -> Path:
        """Create ``owner/name`` and return its bare repository's path (idempotent: an existing repo is kept).

        ``seed_from`` may be a bare repository (adopted where it is, not copied), a git work tree (cloned
        bare with all its branches) or a plain directory (its files become the first commit on
        ``default_branch``). Without it the repository starts empty, as on GitHub without ``auto_init``.
        An owner other than the token's user is created as an organisation.
        """
        owner_login, name = self._split(full_name)
        with self.state.transaction():
            existing = self.state.repo_by_name(owner_login, name)
            if existing is not None:
                return existing.path
            owner = self.state.user_by_login(owner_login) or self.state.ensure_user(owner_login, "Organization")
            path = self.data_dir / "repos" / owner.login / f"{name}.git"
            seed = Path(seed_from) if seed_from is not None else None
            if seed is not None and not seed.is_dir():
                raise ValueError(f"seed_from is not a directory: {seed}")
            if seed is not None and BareRepo(seed).is_bare_repo():
                path = seed.resolve()
                git = BareRepo(path)
                git.git("config", "http.receivepack", "true")
                if git.resolve(f"refs/heads/{default_branch}") is None:
                    head = git.git("symbolic-ref", "--short", "HEAD", check=False).stdout.decode().strip()
                    if head and git.resolve(f"refs/heads/{head}"):
                        default_branch = head
            elif seed is not None and (seed / ".git").exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    ["git", "clone", "--quiet", "--bare", "--no-hardlinks", str(seed), str(path)],
                    check=True,
                    capture_output=True,
                    env={**os.environ, **ISOLATED_GIT_ENV},
                )
                git = BareRepo(path)
                git.git("remote", "remove", "origin", check=False)
                git.git("config", "http.receivepack", "true")
            else:
                if path.exists():
                    raise ValueError(f"{path} already exists but is not a known repository")
                git = BareRepo.init(path, default_branch)
                if seed is not None:
                    ident = Signature(owner.login, f"{owner.login}@users.noreply.localforge.invalid", "")
                    git.commit_directory(seed, default_branch, "Initial commit\n", ident)
            git.git("symbolic-ref", "HEAD", f"refs/heads/{default_branch}")
            self.state.insert_repo(owner, name, path, default_branch, description)
            return path

    def repo_path(self, full_name: str) -> Path:
        """The bare repository of ``owner/name``; use it as a git remote (file transport)."""
        owner, name = self._split(full_name)
        with self.state.transaction():
            repo = self.state.repo_by_name(owner, name)
        if repo is None:
            raise KeyError(f"no repository {full_name!r} on this forge")
        return repo.path

    def add_user(self, login: str, name: str | None = None, email: str | None = None, token: str | None = None) -> None:
        """Make ``login`` a user (a collaborator of every repository); with ``token`` it can call the API."""
        if not NAME_RE.match(login):
            raise ValueError(f"invalid login: {login!r}")
        with self.state.transaction():
            self.state.ensure_user(login, name=name, email=email)
        if token:
            self._tokens[token] = login

    def add_team(self, org: str, slug: str, name: str | None = None, description: str | None = None) -> None:
        """Create team ``org/slug`` so it can be requested as a reviewer on ``org``'s repositories."""
        with self.state.transaction():
            owner = self.state.user_by_login(org) or self.state.ensure_user(org, "Organization")
            self.state.ensure_team(owner, slug, name, description)

    # server ---------------------------------------------------------------------------------------------

    @property
    def web_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the forge is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The REST base for ``Github(base_url=...)``: ``http://127.0.0.1:PORT/api/v3``."""
        return self.web_url + API_PREFIX

    def clone_url(self, full_name: str) -> str:
        self._split(full_name)
        return f"{self.web_url}/{full_name}.git"

    def _bind(self, host: str, port: int) -> ForgeHTTPServer:
        if self._server is not None:
            raise RuntimeError("the forge is already running")
        self._server = ForgeHTTPServer((host, port), self.app)
        return self._server

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; returns :attr:`base_url`."""
        server = self._bind(host, port)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="localforge", daemon=True
        )
        self._thread.start()
        return self.base_url

    def serve_forever(self, host: str = "127.0.0.1", port: int = 0, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (for ``devops-crew forge serve``)."""
        server = self._bind(host, port)
        if ready is not None:
            ready(self.base_url)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            self._server = None

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def close(self) -> None:
        self.stop()
        self.state.close()

    def __enter__(self) -> LocalForge:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # testing aids ---------------------------------------------------------------------------------------

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Make the next ``times`` requests matching ``method`` (or ``"*"``) and ``path_regex`` (searched in
        the path below ``/api/v3``) fail with ``status``; ``retry_after`` adds a ``Retry-After`` header."""
        self.faults.add(method, path_regex, status, times, retry_after, body)

    def add_observer(self, observer: Callable[[Exchange], None]) -> None:
        """Call ``observer`` with every request and response (after the response is built)."""
        self.app.observers.append(observer)

    def remove_observer(self, observer: Callable[[Exchange], None]) -> None:
        self.app.observers.remove(observer)

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        """The latest requests as ``(method, path below /api/v3, status)``, oldest first."""
        return list(self.app.request_log)
