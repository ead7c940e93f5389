"""The dashboard's web security: which paths are the dashboard's, CSRF on their forms, session cookies,
response headers, and safe redirects.

- **Sessions**: Starlette's ``SessionMiddleware``, a signed cookie holding only the user name and flash
  messages, keyed by ``DEVOPS_CREW_SESSION_SECRET`` (a random key per process if unset), ``HttpOnly``,
  ``SameSite=Lax``, ``Secure`` with ``DEVOPS_CREW_SECURE_COOKIES``, 12 hours.
- **CSRF**: asgi-csrf (a signed double-submit token: cookie plus form field ``csrftoken``) on every unsafe
  request to a dashboard path, the login form included. asgi-csrf lets a request without any cookie pass
  unless its path is in ``always_protect``: :class:`DashboardPaths` is that set, so a cookieless POST to a
  dashboard path is refused too. Every other path (the JSON API ``/api/``, A2A ``/a2a``, probes) goes
  straight past asgi-csrf (:class:`CsrfProtection`): they authenticate with bearer tokens, which a browser
  never sends on its own, so CSRF does not apply to them.
- **Headers** on dashboard responses: a Content-Security-Policy that allows only this origin's styles and
  forms and no script at all, ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: same-origin``,
  and ``Cache-Control: no-store`` on pages (a signed-in page is never cached).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgi_csrf import asgi_csrf

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "devops_crew_session"
CSRF_COOKIE = "devops_crew_csrf"
CSRF_FIELD = "csrftoken"
SESSION_MAX_AGE_SECONDS = 12 * 3600
STATIC_PREFIX = "/static"
#: Paths of the dashboard besides ``/``: a path is the dashboard's if it is one of these or under one.
#: Every dashboard page and form lives here (tests/test_intake_priority.py checks the router against it):
#: CSRF, the security headers and the form-type check apply to these paths only.
DASHBOARD_PREFIXES = ("/requests", "/new", "/notifications", "/login", "/logout", STATIC_PREFIX)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def is_dashboard_path(path: str) -> bool:
    """Whether ``path`` belongs to the dashboard (``/``, and :data:`DASHBOARD_PREFIXES` and below)."""
    return path == "/" or any(path == p or path.startswith(p + "/") for p in DASHBOARD_PREFIXES)


class DashboardPaths:
    """A container answering ``path in DashboardPaths()`` with :func:`is_dashboard_path`: asgi-csrf's
    ``always_protect`` takes exact paths, the dashboard's are a prefix family (``/requests/<id>/approve``)."""

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and is_dashboard_path(path)


def session_secret(configured: str | None) -> str:
    """The session key: the configured one, else a random one for this process."""
    return configured or secrets.token_urlsafe(48)


def csrf_secret(session_key: str) -> str:
    """The CSRF signing key, derived from the session key (one secret to configure; replicas agree)."""
    return hashlib.sha256(b"devops-crew csrf\0" + session_key.encode()).hexdigest()


def safe_next(target: str | None, default: str = "/") -> str:
    """A redirect target after login: a path on this site only (no scheme, host, ``//`` or backslash)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 0x20 for ch in target):
        return default
    return target


_CSRF_FAILED = (
    b"<!doctype html><html lang=en><head><meta charset=utf-8><title>Form expired</title>"
    b'<link rel=stylesheet href="/static/dashboard.css"></head><body><main class=narrow>'
    b"<h1>This form cannot be accepted</h1><p>It was not sent by a page of this dashboard, or it has "
    b'expired. <a href="/">Go back</a>, reload the page and try again.</p></main></body></html>'
)


async def _send_csrf_failed(_scope: Scope, send: Send, _reason: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(_CSRF_FAILED)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _CSRF_FAILED})


class CsrfProtection:
    """asgi-csrf as a class middleware (``app.add_middleware``), limited to dashboard paths. A form body
    that is not UTF-8 (asgi-csrf decodes it to find the token) is answered 400 instead of a 500."""

    def __init__(self, app: ASGIApp, *, secret: str, secure: bool) -> None:
        self._app = app
        self._inner = asgi_csrf(
            app,
            cookie_name=CSRF_COOKIE,
            signing_secret=secret,
            always_protect=DashboardPaths(),
            cookie_secure=secure,
            cookie_samesite="Lax",
            send_csrf_failed=_send_csrf_failed,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_dashboard_path(scope.get("path", "")):
            # Straight past asgi-csrf: it would mint and sign a token (16 calls of secrets.choice, each a
            # getrandom syscall) on every A2A and API call before it could skip the path.
            await self._app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if scope.get("method") not in SAFE_METHODS:
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/x-www-form-urlencoded":  # the dashboard's forms send nothing else
                await _plain(send, 415, "the dashboard's forms are application/x-www-form-urlencoded")
                return
        if b"authorization" in headers:  # asgi-csrf waves bearer requests through: not on cookie pages
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]}
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._inner(scope, receive, tracking_send)
        except (UnicodeDecodeError, ValueError, TypeError, IndexError):  # a body asgi-csrf cannot parse
            if started:
                raise
            await _plain(send, 400, "the form cannot be read")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds the dashboard's response headers (see the module docstring) to dashboard paths only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not is_dashboard_path(path):
            await self.app(scope, receive, send)
            return
        page = not path.startswith(STATIC_PREFIX + "/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control" or not page]
                headers += [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if page:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
