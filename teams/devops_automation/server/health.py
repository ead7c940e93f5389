"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (it can do work: store reachable,
migrations current, forge reachable, not draining) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..errors import DevopsCrewError
from .metrics import CONTENT_TYPE
from .runtime import Runtime, runtime_of

router = APIRouter(tags=["probes"])
PROBE_TIMEOUT_SECONDS = 5.0
#: A forge answer is reused this long: probes are anonymous, and each forge call spends the crew's
#: token's rate limit (5,000 an hour on GitHub).
FORGE_CHECK_TTL_SECONDS = 30.0


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """Liveness: 200 while the event loop answers (also while draining)."""
    rt = runtime_of(request)
    return JSONResponse({"status": "ok", "uptime_seconds": round(time.monotonic() - rt.started_at, 3)})


def _check_store(rt: Runtime) -> dict[str, Any]:
    ok, detail = rt.service.schema_status()
    return {"ok": ok, "detail": detail}


def _check_forge(rt: Runtime) -> dict[str, Any]:
    return {"ok": True, "detail": rt.service.ping_forge()}


class ForgeCheck:
    """The forge's last readiness answer, refreshed at most every :data:`FORGE_CHECK_TTL_SECONDS`, one
    call in flight at a time whatever the number of probes."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._at = -FORGE_CHECK_TTL_SECONDS
        self._result: dict[str, Any] = {}

    async def result(self, rt: Runtime) -> dict[str, Any]:
        async with self._lock:
            if time.monotonic() - self._at >= FORGE_CHECK_TTL_SECONDS or not self._result.get("ok"):
                self._result = await _probe(_check_forge, rt)
                self._at = time.monotonic()
            return self._result


async def _probe(check: Any, rt: Runtime) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(rt.quick(check, rt), PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        return {"ok": False, "detail": f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"}
    except DevopsCrewError as exc:
        return {"ok": False, "detail": str(exc)[:300]}
    except Exception as exc:  # a driver error (connection refused, ...): not ready, never a 500
        return {"ok": False, "detail": f"{type(exc).__name__}: {str(exc)[:300]}"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the store answers at the current schema and the forge answers; 503 otherwise
    and while draining (so the Service stops routing here before the pod stops)."""
    rt = runtime_of(request)
    store = await _probe(_check_store, rt)
    checker = getattr(request.app.state, "forge_check", None)
    if checker is None:
        checker = request.app.state.forge_check = ForgeCheck()
    forge = await checker.result(rt) if store["ok"] else {"ok": False, "detail": "store not ready"}
    checks = {"store": store, "forge": forge, "intake": {"ok": not rt.draining.is_set(), "detail": ""}}
    if rt.draining.is_set():
        checks["intake"]["detail"] = "draining for shutdown"
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition (reads request counts from the store off the loop)."""
    rt = runtime_of(request)
    try:
        body = await asyncio.wait_for(rt.quick(rt.metrics.render), PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        return Response("# the store did not answer in time\n", status_code=503, media_type=CONTENT_TYPE)
    return Response(body, media_type=CONTENT_TYPE)
