"""The ASGI application of ``devops-crew serve``: routes, error shapes, and the lifespan that builds and
drains the :class:`~.runtime.Runtime`.

Start-up (before the first request is answered): the engine is built (store migrated, forge reached,
checkout cloned), the validation worker (the forkserver that preloads CrewAI) is started, and requests a
crash or shutdown left between steps are queued again. Shutdown: intake stops, runs stop at their next
saved state within ``DEVOPS_CREW_SHUTDOWN_GRACE_SECONDS``, then the service closes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import DevopsCrewError, PermissionDenied, Unavailable, http_status
from ..service import CrewService
from ..settings import Settings
from . import a2a, api, api_fleet, dashboard, health, schedule
from .limits import BodyLimit
from .runtime import Runtime

log = logging.getLogger("devops_crew.server")
Hook = Callable[[Runtime], Awaitable[None]]


def error_type(exc: Exception) -> str:
    """``NotFound`` -> ``not_found``: the ``error.type`` of an API error body."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def error_body(exc: DevopsCrewError) -> dict[str, Any]:
    """``{"error": {"type", "message", "rule"?}}``: the JSON API's one error shape."""
    error: dict[str, Any] = {"type": error_type(exc), "message": str(exc)}
    rule = getattr(exc, "rule", None)
    if rule:
        error["rule"] = rule
    return {"error": error}


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DevopsCrewError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
    if isinstance(exc, PermissionDenied) or http_status(exc) < 500:
        log.info("refused: %s", exc)
    return JSONResponse(error_body(exc), status_code=http_status(exc), headers=headers)


async def _store_error(_request: Request, exc: Exception) -> JSONResponse:
    """The state store did not answer (locked, down, out of connections): 503, one line, retry later."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
    log.warning("state store error: %s", reason)
    body = {"error": {"type": "unavailable", "message": f"the state store did not answer: {reason}"}}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (404 no route, 405, a body that is not JSON) in the one error shape."""
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_input")
    body = {"error": {"type": kind, "message": " ".join(str(exc.detail).split())[:300]}}
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    """A bug: the caller gets one line (the traceback goes to the server's log), never a stack trace."""
    log.error("unexpected error: %s: %s", type(exc).__name__, exc, exc_info=exc)
    body = {"error": {"type": "internal", "message": "internal error; the server log has the details"}}
    return JSONResponse(body, status_code=500)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse(
        {"error": {"type": "invalid_input", "message": "invalid input: " + "; ".join(problems)}}, status_code=422
    )


def start_runtime(settings: Settings, *, service: CrewService | None = None) -> Runtime:
    """Build what the server shares and reach everything it needs: the store (migrated), the forge, the
    checkout, and the validation worker. ``service`` replaces the one built here (tests). Raises
    ConfigurationError, ForgeError, GitError: a server that cannot work does not start."""
    rt = Runtime.create(settings, service=service)
    try:
        rt.service.warm_up()
    except BaseException:
        rt.service.close()
        raise
    return rt


def create_app(
    settings: Settings, *, service: CrewService | None = None, runtime: Runtime | None = None
) -> FastAPI:
    """The application for ``settings``. ``runtime`` is one :func:`start_runtime` built (``serve`` does,
    to report a start-up failure in one line); without it the lifespan builds one, with ``service``
    (tests) if given."""
    startup: list[Hook] = []
    shutdown: list[Hook] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or await asyncio.to_thread(lambda: start_runtime(settings, service=service))
        app.state.runtime = rt
        rt.hub.bind(asyncio.get_running_loop())
        for hook in startup:
            await hook(rt)
        queued = rt.resume_interrupted()
        if queued:
            log.info("continuing %d interrupted request(s): %s", len(queued), ", ".join(queued))
        try:
            yield
        finally:
            started = time.monotonic()
            rt.draining.set()
            for hook in shutdown:
                await hook(rt)
            remaining = max(0.0, settings.shutdown_grace_seconds - (time.monotonic() - started))
            clean = await asyncio.to_thread(rt.shutdown, remaining)
            if not clean:
                log.warning("shutdown grace of %gs ran out with work still running", settings.shutdown_grace_seconds)

    app = FastAPI(
        docs_url=None,  # the Swagger and ReDoc pages load script from a CDN: nothing loads from elsewhere
        redoc_url=None,
        title="devops-crew",
        summary="Turns capability gaps into reviewed pull requests that add new teams.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.startup_hooks, app.state.shutdown_hooks = startup, shutdown
    if settings.discord_token is not None:  # the Discord bot runs on this server's loop (discord_bot.embedded)
        from ..discord_bot.embedded import install as install_discord

        install_discord(settings, startup, shutdown)
    app.add_exception_handler(DevopsCrewError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(api_fleet.router)
    a2a.install(app, settings)
    dashboard.install(app, settings)
    schedule.install(app, settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, jsonrpc_paths=a2a.JSONRPC_PATHS)
    return app
