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

Access and CI, for tests that play the other side of GitHub::

    forge.add_user("alice", token="alice-token")           # a collaborator: push, no admin
    forge.protect_branch("acme/teams", "main", ["ci"])      # PRs only; merges wait for "ci"
    forge.set_status("acme/teams", "feature", "success")    # CI reports on the branch's head

The forge's ``owner_login`` (and any ``add_user(..., admin=True)``) administers every repository; a
repository's owner administers it. Admins may bypass a protection unless ``enforce_admins=True``, as on
GitHub. Protection holds for the REST API and for pushes over smart HTTP; a push by file transport to
:meth:`repo_path` is a push onto the server's disk and is not checked.
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
from .ci import CHECK_CONCLUSIONS, CHECK_STATUSES, STATUS_STATES, CiStore
from .faults import FaultInjector
from .githttp import install_push_hook
from .gitrepo import ISOLATED_GIT_ENV, BareRepo, Signature
from .server import API_PREFIX, Exchange, ForgeApp, ForgeHTTPServer, RateLimiter
from .state import ForgeState, Repo, now_iso

NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
REPO_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class LocalForge:
    """Bare repositories plus a GitHub-shaped REST server; see the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        token: str,
        owner_login: str = "devops-crew-bot",
        *,
        rate_limit: int = 5000,
        public_url: str | None = None,
        page_links: Callable[[str, str], list[tuple[str, str]]] | None = None,
    ) -> None:
        """``public_url`` (``http://host:port``, no path): the stable base of the web links in answers
        (``html_url``, ``diff_url``, ...) whatever port the server is bound to; unset, links follow the
        address each client used. ``page_links(body, head_ref)`` adds ``(text, url)`` links to a pull
        request's page (the host application's own pages for it). Raises ValueError for an empty token, a
        bad login or a ``public_url`` that is not ``http(s)://host[:port]``."""
        if not token:
            raise ValueError("the forge needs a token")
        if not NAME_RE.match(owner_login):
            raise ValueError(f"invalid login: {owner_login!r}")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = ForgeState(self.data_dir / "forge.sqlite3")
        self.faults = FaultInjector()
        self.owner_login = owner_login
        self.token = token
        self._tokens: dict[str, str] = {token: owner_login}
        self._git_cache: dict[Path, BareRepo] = {}
        self._git_lock = threading.Lock()
        self.ci = CiStore(self.state)
        with self.state.transaction():
            owner = self.state.ensure_user(owner_login, email=f"{owner_login}@users.noreply.localforge.invalid")
            self.ci.set_forge_admin(owner.id, True)
        self.rate = RateLimiter(rate_limit)
        self.api = ForgeApi(self.state, self._git_for, self.rate.snapshot, self.ci)
        self.app = ForgeApp(
            self.api,
            self.state,
            self._tokens,
            self.faults,
            self.rate,
            self._git_path,
            hooks_dir=install_push_hook(self.data_dir / "hooks"),
        )
        if public_url is not None and not re.fullmatch(r"https?://[A-Za-z0-9.\[\]:-]+", public_url.rstrip("/")):
            raise ValueError(f"public_url must be http(s)://host[:port], not {public_url!r}")
        self.app.public_url = public_url.rstrip("/") if public_url else None
        self.app.page_links = page_links
        self._server: ForgeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._foreground = False  # serve_forever is (about to be) looping in the calling thread

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

    def add_user(
        self,
        login: str,
        name: str | None = None,
        email: str | None = None,
        token: str | None = None,
        admin: bool = False,
    ) -> None:
        """Make ``login`` a user: a collaborator of every repository (push, triage, pull), or with ``admin`` an
        admin of every repository; with ``token`` it can call the API and push over smart HTTP. Each call
        sets the role again (the forge's ``owner_login`` always stays an admin)."""
        if not NAME_RE.match(login):
            raise ValueError(f"invalid login: {login!r}")
        with self.state.transaction():
            user = self.state.ensure_user(login, name=name, email=email)
            if user.login.lower() != self.owner_login.lower():  # the forge's owner stays an admin
                self.ci.set_forge_admin(user.id, admin)
        if token:
            self._tokens[token] = login

    def add_team(self, org: str, slug: str, name: str | None = None, description: str | None = None) -> None:
        """Create team ``org/slug`` so it can be requested as a reviewer on ``org``'s repositories."""
        with self.state.transaction():
            owner = self.state.user_by_login(org) or self.state.ensure_user(org, "Organization")
            self.state.ensure_team(owner, slug, name, description)

    # CI and branch protection ----------------------------------------------------------------------------

    def _repo_and_commit(self, full_name: str, sha_or_ref: str) -> tuple[Repo, str]:
        owner, name = self._split(full_name)
        repo = self.state.repo_by_name(owner, name)
        if repo is None:
            raise KeyError(f"no repository {full_name!r} on this forge")
        sha = self._git_for(repo).resolve_commitish(sha_or_ref)
        if sha is None:
            raise ValueError(f"no commit {sha_or_ref!r} in {full_name}")
        return repo, sha

    def set_status(
        self,
        full_name: str,
        sha_or_ref: str,
        state: str,
        context: str = "ci",
        description: str | None = None,
        target_url: str | None = None,
    ) -> str:
        """Report a commit status as CI would (``error``, ``failure``, ``pending`` or ``success``), credited to
        the forge's owner; ``sha_or_ref`` may be a sha, a branch or a tag. Returns the commit's sha."""
        if state not in STATUS_STATES:
            raise ValueError(f"state must be one of {', '.join(STATUS_STATES)}, not {state!r}")
        if not context:
            raise ValueError("a status needs a context")
        with self.state.transaction():
            repo, sha = self._repo_and_commit(full_name, sha_or_ref)
            creator = self.state.user_by_login(self.owner_login)
            assert creator is not None
            self.ci.insert_status(repo.id, sha, state, context, description, target_url, creator.id)
        return sha

    def set_check_run(
        self,
        full_name: str,
        sha_or_ref: str,
        name: str,
        conclusion: str | None = "success",
        status: str | None = None,
        summary: str | None = None,
    ) -> int:
        """Record a check run (from the forge's CI app) on a commit; a ``conclusion`` completes it, without one
        it is ``in_progress`` unless ``status`` says otherwise. Returns the run's id."""
        if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
            raise ValueError(f"conclusion must be one of {', '.join(CHECK_CONCLUSIONS)}, not {conclusion!r}")
        status = "completed" if conclusion is not None else (status or "in_progress")
        if status not in CHECK_STATUSES or (status == "completed" and conclusion is None):
            raise ValueError(f"invalid check run status {status!r} (a completed run needs a conclusion)")
        ts = now_iso()
        with self.state.transaction():
            repo, sha = self._repo_and_commit(full_name, sha_or_ref)
            run = self.ci.insert_check_run(
                repo.id,
                sha,
                name,
                status=status,
                conclusion=conclusion,
                started_at=ts,
                completed_at=ts if status == "completed" else None,
                summary=summary,
            )
        return run.id

    def protect_branch(
        self,
        full_name: str,
        branch: str,
        required_contexts: list[str] | None = None,
        *,
        enforce_admins: bool = False,
        required_approving_review_count: int = 0,
        dismiss_stale_reviews: bool = False,
    ) -> None:
        """Protect ``branch``: no deletion or force push by anyone; other changes only through pull requests,
        which merge once every context of ``required_contexts`` has succeeded on their head (a status or a
        check run of that name) and ``required_approving_review_count`` users other than the author have
        approved it (only approvals of the current head with ``dismiss_stale_reviews``). Admins may bypass
        all but the first rule unless ``enforce_admins``. Calling it again replaces the rules; the REST API's
        ``PUT /branches/{branch}/protection`` does the same for an admin's token."""
        if not 0 <= required_approving_review_count <= 6:
            raise ValueError("required_approving_review_count must be between 0 and 6 (GitHub's range)")
        owner, name = self._split(full_name)
        with self.state.transaction():
            repo = self.state.repo_by_name(owner, name)
            if repo is None:
                raise KeyError(f"no repository {full_name!r} on this forge")
            self.ci.protect(
                repo.id,
                branch,
                list(required_contexts or []),
                enforce_admins,
                required_approving_review_count=required_approving_review_count,
                dismiss_stale_reviews=dismiss_stale_reviews,
            )

    def unprotect_branch(self, full_name: str, branch: str) -> bool:
        """Remove ``branch``'s protection; False if it had none."""
        owner, name = self._split(full_name)
        with self.state.transaction():
            repo = self.state.repo_by_name(owner, name)
            return repo is not None and self.ci.unprotect(repo.id, branch)

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
        try:  # ``ready`` inside: an interrupt while it runs (SIGTERM right after the URL is printed) ends here too
            if ready is not None:
                ready(self.base_url)
            self._foreground = True
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self._foreground = False
            server.server_close()
            self._server = None

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        if thread is not None or self._foreground:  # shutdown() waits for a loop: only one that runs, or will
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
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next ``times`` requests matching ``method`` (or ``"*"``) and ``path_regex`` (searched in
        the path below ``/api/v3``) fail with ``status``; ``retry_after`` adds a ``Retry-After`` header and
        ``headers`` any others (``x-ratelimit-remaining``/``x-ratelimit-reset`` for a primary limit)."""
        self.faults.add(method, path_regex, status, times, retry_after, body, headers)

    def add_observer(self, observer: Callable[[Exchange], None]) -> None:
        """Call ``observer`` with every request and response (after the response is built)."""
        self.app.observers.append(observer)

    def remove_observer(self, observer: Callable[[Exchange], None]) -> None:
        self.app.observers.remove(observer)

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        """The latest requests as ``(method, path below /api/v3, status)``, oldest first."""
        return list(self.app.request_log)
