"""The dashboard: server-rendered pages (FastAPI + Jinja2, no front-end build, no script) for the humans
who review and decide what the crew proposes.

Pages (all but the login page and ``/static/`` need a signed-in web user from ``DEVOPS_CREW_WEB_USERS``):

=================================  =========================================================================
``GET /``                          requests, newest first: state, gap, proposed team, cost, risk, policy
                                   finding, pull request; filters ``state`` (repeatable) and ``team``; keyset
                                   pages (``cursor``); what waits for a decision on top
``GET /requests/{id}``             one request's review: the pull request body (Markdown, escaped), each
                                   file's diff with syntax colours (the pushed commit, or a preview of the
                                   stored spec), LLM use, audit trail (auditors), and the decision forms
``POST /requests/{id}/approve``    approve the cost (reason optional); ``override`` and ``reject`` need a
``.../override|reject|merge``      reason; ``merge`` exists for the embedded forge. Each redirects back with
                                   a flash message: the outcome or the service's one-line refusal
``GET|POST /new``                  submit a capability gap (requesters)
``GET|POST /login``, ``POST /logout``
``GET /static/...``                the style sheets
=================================  =========================================================================

Who may do what is decided by the service (:mod:`devops_automation.authz`): viewers see, approvers decide,
the requester never approves (four eyes); the pages show each verdict's reason next to a disabled form.
Session, CSRF and header rules: :mod:`.security`. Untrusted text to HTML: :mod:`.render`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from ...settings import Settings
from . import pages, security

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"


def install(app: FastAPI, settings: Settings) -> None:
    """Add the dashboard's routes, static files and middleware (sessions, CSRF, security headers) to
    ``app``. The session key is ``settings.session_secret``, or a random one for this process."""
    key = security.session_secret(settings.session_secret.get_secret_value() if settings.session_secret else None)
    app.state.dashboard_templates = pages.make_templates(str(TEMPLATES_DIR))
    app.include_router(pages.router)
    app.mount(security.STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.add_exception_handler(pages.LoginRequired, pages.login_required)
    # Added innermost first: a request meets the headers, then CSRF, then the session.
    app.add_middleware(
        SessionMiddleware,
        secret_key=key,
        session_cookie=security.SESSION_COOKIE,
        max_age=security.SESSION_MAX_AGE_SECONDS,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(security.CsrfProtection, secret=security.csrf_secret(key), secure=settings.secure_cookies)
    app.add_middleware(security.SecurityHeaders)
