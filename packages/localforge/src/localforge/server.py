"""HTTP front of the forge: parsing, authentication, rate-limit headers, faults, dispatch and observers.

:class:`ForgeApp` turns one request (method, target, headers, body) into one response and knows nothing
about sockets, so it is easy to reason about; :class:`ForgeHTTPServer` serves it with the standard
library's ``ThreadingHTTPServer`` over HTTP/1.1 keep-alive (PyGithub keeps one connection open).

Paths under the API prefix (``/api/v3``, where PyGithub expects a GitHub Enterprise Server) go to the REST
handlers; ``/{owner}/{repo}.git/...`` speaks git's smart HTTP; ``/{owner}/{repo}/raw/{ref}/{path}`` serves
file bytes for ``raw_url``/``download_url``. Every URL in a response is built from the ``Host`` the
client sent, so it has the scheme, host and port PyGithub insists on.

``POST /_localforge/push-check/{nonce}`` is the forge's own: the ``proc-receive`` hook of a push in
progress asks it which branch updates to refuse (see :mod:`.githttp`); each nonce is valid for one push.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import githttp
from .api import ForgeApi, raw_file
from .faults import DOC_RATE_LIMITS, FaultInjector
from .payloads import Urls, error
from .routing import ApiError, ApiRequest, ApiResponse
from .state import ForgeState, User
from .web import PAGE_HEADERS, pull_page, pull_text

log = logging.getLogger(__name__)

API_PREFIX = "/api/v3"
PUSH_CHECK_PREFIX = "/_localforge/push-check/"
JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Exchange:
    """One request and the response the forge gave, as handed to observers (the conformance tests).

    The ``Authorization`` header is redacted: observers may log what they see.
    """

    method: str
    path: str  # below the API prefix for API calls, as sent (percent-encoded)
    query: str
    route: str | None  # the OpenAPI path template that served it, e.g. /repos/{owner}/{repo}/pulls
    route_in_spec: bool
    path_params: dict[str, str]
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    seconds: float
    api: bool = True


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RateLimiter:
    """GitHub's primary rate limit for the core resource: ``limit`` requests per hour."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._reset = int(time.time()) + 3600
        self._used = 0

    def _roll(self) -> None:
        now = int(time.time())
        if now >= self._reset:
            self._reset = now + 3600
            self._used = 0

    def consume(self) -> bool:
        with self._lock:
            self._roll()
            if self._used >= self.limit:
                return False
            self._used += 1
            return True

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            self._roll()
            return {
                "limit": self.limit,
                "remaining": max(0, self.limit - self._used),
                "reset": self._reset,
                "used": self._used,
            }

    def headers(self) -> dict[str, str]:
        snap = self.snapshot()
        return {
            "X-RateLimit-Limit": str(snap["limit"]),
            "X-RateLimit-Remaining": str(snap["remaining"]),
            "X-RateLimit-Reset": str(snap["reset"]),
            "X-RateLimit-Used": str(snap["used"]),
            "X-RateLimit-Resource": "core",
        }


class ForgeApp:
    """Dispatch one HTTP request to faults, auth, the REST router, git smart HTTP or raw files."""

    def __init__(
        self,
        api: ForgeApi,
        state: ForgeState,
        tokens: dict[str, str],
        faults: FaultInjector,
        rate: RateLimiter,
        git_path_for: Callable[[str, str], Any],
        hooks_dir: Path | None = None,
    ) -> None:
        self.api = api
        self.state = state
        self.tokens = tokens
        self.faults = faults
        self.rate = rate
        self.git_path_for = git_path_for
        self.hooks_dir = hooks_dir
        self.observers: list[Callable[[Exchange], None]] = []
        self.public_url: str | None = None  # see Urls.public
        # links from a pull request's page to the app that opened it: (pull body, head ref) -> [(text, url)]
        self.page_links: Callable[[str, str], list[tuple[str, str]]] | None = None
        self.request_log: deque[tuple[str, str, int]] = deque(maxlen=2000)
        self._pushes: dict[str, tuple[str, str, str]] = {}  # nonce -> (owner, repo, login) of pushes running
        self._pushes_lock = threading.Lock()

    # authentication -----------------------------------------------------------------------------------

    def _token(self, headers: dict[str, str]) -> str | None:
        value = headers.get("authorization", "")
        scheme, _, credential = value.partition(" ")
        scheme = scheme.lower()
        if scheme in ("token", "bearer"):
            return credential.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credential.strip()).decode()
            except (ValueError, UnicodeDecodeError):
                return ""
            return decoded.partition(":")[2]
        return None

    def _user_for(self, token: str | None) -> User | None:
        if not token:
            return None
        for known, login in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                with self.state.transaction():
                    return self.state.user_by_login(login)
        return None

    # dispatch -------------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, default_host: str) -> RawResponse:
        started = time.perf_counter()
        parts = urlsplit(target)
        raw_path, query = parts.path, parts.query
        urls = Urls(f"http://{headers.get('host') or default_host}", API_PREFIX, self.public_url)
        route_info: dict[str, Any] = {"route": None, "in_spec": False, "params": {}}
        is_api = raw_path == API_PREFIX or raw_path.startswith(API_PREFIX + "/")
        path = (raw_path[len(API_PREFIX) :] or "/") if is_api else raw_path
        try:
            response = self._dispatch(method, path, query, headers, body, urls, is_api, route_info, default_host)
        except Exception:  # a bug must still answer like GitHub's 500, and be visible in the log
            log.exception("localforge: %s %s failed", method, target)
            response = self._json(500, error("Server Error", 500))
        self.request_log.append((method, path, response.status))
        if self.observers:
            exchange = Exchange(
                method=method,
                path=path,
                query=query,
                route=route_info["route"],
                route_in_spec=route_info["in_spec"],
                path_params=route_info["params"],
                request_headers={k: ("<redacted>" if k == "authorization" else v) for k, v in headers.items()},
                request_body=body,
                status=response.status,
                response_headers=dict(response.headers),
                response_body=response.body,
                seconds=time.perf_counter() - started,
                api=is_api,
            )
            for observer in list(self.observers):
                try:
                    observer(exchange)
                except Exception:
                    log.exception("localforge: observer failed")
        return response

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> RawResponse:
        out = {
            "Content-Type": JSON_TYPE,
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-OAuth-Scopes": "repo, workflow",
            "X-Accepted-OAuth-Scopes": "",
            "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
            **self.rate.headers(),
        }
        for name, value in (headers or {}).items():  # a given header replaces a default, whatever its case
            for existing in [k for k in out if k.lower() == name.lower()]:
                del out[existing]
            out[name] = value
        if body is None:
            out.pop("Content-Type")
            return RawResponse(status, out, b"")
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return RawResponse(status, out, data)

    def _dispatch(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        urls: Urls,
        is_api: bool,
        route_info: dict[str, Any],
        default_host: str,
    ) -> RawResponse:
        if method == "POST" and path.startswith(PUSH_CHECK_PREFIX):  # the forge's own hook, never faulted
            return self._push_check(path[len(PUSH_CHECK_PREFIX) :], body)
        fault = self.faults.take(method, path)
        if fault is not None:
            status, fault_body, fault_headers = fault.response()
            return self._json(status, fault_body, fault_headers)
        if not is_api:
            return self._web(method, path, query, headers, body, default_host)
        token = self._token(headers)
        user = self._user_for(token)
        if user is None:  # GitHub's two answers: no credentials at all, or wrong ones
            return self._json(401, error("Requires authentication" if token is None else "Bad credentials", 401))
        if path != "/rate_limit" and not self.rate.consume():
            message = f"API rate limit exceeded for user ID {user.id}."
            return self._json(403, error(message, 403, f"{DOC_RATE_LIMITS}#about-primary-rate-limits"))
        found = self.api.router.match("GET" if method == "HEAD" else method, path)  # HEAD: GET without a body
        if found is None:
            return self._json(404, error("Not Found", 404))
        route, params = found
        route_info.update(route=route.spec_path, in_spec=route.in_spec, params=params)
        try:
            parsed = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            return self._json(400, error("Problems parsing JSON", 400))
        request = ApiRequest(method, path, params, parse_qs(query, keep_blank_values=True), parsed, user, urls, headers)
        try:
            with self.state.transaction():
                response: ApiResponse = route.handler(request)
        except ApiError as exc:
            return self._json(exc.status, exc.body, exc.headers)
        if response.raw is not None:
            kept = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
            out = self._json(response.status, None, kept)
            out.headers["Content-Type"] = response.headers.get("Content-Type", "text/plain; charset=utf-8")
            kind = out.headers["Content-Type"].split(";")[0].rsplit(".", 1)[-1]
            out.headers["X-GitHub-Media-Type"] = f"github.v3; format={kind}"
            out.body = response.raw
        else:
            out = self._json(response.status, response.body, response.headers)
        if method in ("GET", "HEAD") and response.status == 200:
            etag = 'W/"' + hashlib.sha256(out.body).hexdigest()[:40] + '"'
            out.headers["ETag"] = etag
            if headers.get("if-none-match") == etag:
                return RawResponse(304, {k: v for k, v in out.headers.items() if k != "Content-Type"}, b"")
        return out

    # non-API paths ---------------------------------------------------------------------------------------

    def _web(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, default_host: str
    ) -> RawResponse:
        git_match = githttp.GIT_PATH_RE.match(path)
        if git_match:
            return self._git(method, git_match, query, headers, body, default_host)
        parts = path.strip("/").split("/", 3)
        method = "GET" if method == "HEAD" else method  # the handler drops the body of a HEAD answer
        if method == "GET" and len(parts) == 4 and parts[2] == "pull":
            urls = Urls(f"http://{headers.get('host') or default_host}", API_PREFIX, self.public_url)
            number, dot, suffix = parts[3].partition(".")
            with self.state.transaction():
                if dot and suffix in ("diff", "patch"):  # diff_url and patch_url
                    text = pull_text(self.api, self.state, parts[0], parts[1], number, suffix, urls)
                    if text is not None:
                        return RawResponse(200, {"Content-Type": "text/plain; charset=utf-8"}, text)
                    return self._json(404, error("Not Found", 404))
                page = pull_page(self.api, self.state, parts[0], parts[1], parts[3], urls, self.page_links)
            if page is not None:
                return RawResponse(200, {"Content-Type": "text/html; charset=utf-8", **PAGE_HEADERS}, page)
        if method == "GET" and len(parts) == 4 and parts[2] == "raw":
            from urllib.parse import unquote

            with self.state.transaction():
                data = raw_file(self.state, self.api.git_for, parts[0], parts[1], unquote(parts[3]))
            if data is not None:
                return RawResponse(200, {"Content-Type": "text/plain; charset=utf-8"}, data)
        return self._json(404, error("Not Found", 404))

    def _push_check(self, nonce: str, body: bytes) -> RawResponse:
        with self._pushes_lock:
            push = self._pushes.get(nonce)
        if push is None:
            return self._json(404, error("Not Found", 404))
        try:
            commands = [[str(c[0]), str(c[1]), str(c[2])] for c in json.loads(body)["commands"]]
        except (ValueError, KeyError, IndexError, TypeError):
            return self._json(400, error("Problems parsing JSON", 400))
        with self.state.transaction():
            verdict = self.api.push_check(*push, commands)
        return self._json(200, {"refs": verdict})

    def _guard_env(self, match: Any, login: str, default_host: str) -> tuple[str | None, dict[str, str]]:
        """A nonce and the hook's environment when the push goes to a repository with protected branches."""
        if self.hooks_dir is None or match["rest"] != "/git-receive-pack":
            return None, {}
        with self.state.transaction():
            guarded = self.api.protected_branches(match["owner"], match["repo"])
        if not guarded:
            return None, {}
        nonce = secrets.token_urlsafe(24)
        with self._pushes_lock:
            self._pushes[nonce] = (match["owner"], match["repo"], login)
        host, _, port = default_host.rpartition(":")
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host  # noqa: S104 - not a bind address
        return nonce, githttp.push_guard_env(
            self.hooks_dir, f"http://{host}:{port}{PUSH_CHECK_PREFIX}{nonce}", protected=guarded
        )

    def _git(
        self, method: str, match: Any, query: str, headers: dict[str, str], body: bytes, default_host: str
    ) -> RawResponse:
        repo_path = self.git_path_for(match["owner"], match["repo"])
        if repo_path is None:
            return RawResponse(404, {"Content-Type": "text/plain"}, b"Repository not found.\n")
        remote_user = None
        if githttp.wants_push(match["rest"], query):
            user = self._user_for(self._token(headers))
            if user is None:
                return RawResponse(
                    401,
                    {"WWW-Authenticate": 'Basic realm="LocalForge"', "Content-Type": "text/plain"},
                    b"Authentication required to push.\n",
                )
            remote_user = user.login
        nonce, extra_env = self._guard_env(match, remote_user, default_host) if remote_user else (None, {})
        try:
            result = githttp.run_backend(
                repo_path,
                match["rest"],
                method,
                query,
                headers.get("content-type", ""),
                body,
                headers,
                remote_user,
                extra_env,
            )
        finally:
            if nonce is not None:
                with self._pushes_lock:
                    self._pushes.pop(nonce, None)
        return RawResponse(result.status, dict(result.headers), result.body)


class ForgeRequestHandler(BaseHTTPRequestHandler):
    """Reads one request, asks :class:`ForgeApp`, writes the answer in one piece."""

    protocol_version = "HTTP/1.1"
    server_version = "LocalForge/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: ForgeHTTPServer

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        host, port = self.server.server_address[:2]
        response = self.server.app.handle(self.command, self.path, headers, body, f"{host}:{port}")
        head = [f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}\r\n"]
        out_headers = {"Server": self.server_version, "Date": formatdate(usegmt=True), **response.headers}
        out_headers["Content-Length"] = str(len(response.body))
        for name, value in out_headers.items():
            head.append(f"{name}: {value}\r\n")
        head.append("\r\n")
        payload = b"" if self.command == "HEAD" else response.body
        self.wfile.write("".join(head).encode("latin-1") + payload)
        self.wfile.flush()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("localforge: " + format, *args)


class ForgeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ForgeApp) -> None:
        self.app = app
        super().__init__(address, ForgeRequestHandler)
