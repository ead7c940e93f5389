"""The JSON API for scripts (``/api/v1``): the service's calls with the README's JSON shapes ("JSON
output": ``{"schema": 1, "request": SUMMARY}`` and ``{"schema": 1, "requests": [...]}``), authenticated by
a bearer token (a web user's ``token``, or an A2A caller's). FastAPI publishes it as OpenAPI at
``/openapi.json`` (docs at ``/docs``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..authz import Actor
from ..errors import NotAuthenticated
from ..models import CapabilityGap, RequestState
from ..report import SCHEMA_VERSION
from ..service import MAX_LIST, page_cursor
from .runtime import Runtime
from .runtime import runtime_of as runtime

router = APIRouter(prefix="/api/v1", tags=["requests"])


def token_actor(request: Request) -> Actor:
    """The caller of a JSON API route, from ``Authorization: Bearer``. Raises NotAuthenticated."""
    actor = runtime(request).auth.bearer(request.headers.get("authorization"))
    if actor is None:
        raise NotAuthenticated("a valid bearer token is required (Authorization: Bearer <token>)")
    return actor


RuntimeDep = Annotated[Runtime, Depends(runtime)]
ActorDep = Annotated[Actor, Depends(token_actor)]


class Reason(BaseModel):
    """A human decision's reason (required for override; optional otherwise). ``null`` is no reason, as
    an absent key is; a key the body does not know (``"reasn"``) is refused (422), never dropped."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field("", max_length=2000)

    @property
    def text(self) -> str:
        """The reason, ``""`` for none (``null`` or absent)."""
        return self.reason or ""


class Approve(Reason):
    """An approval: ``reconsider`` reopens a request refused as ``previously-rejected``."""

    reconsider: bool = False
class Rejection(Reason):
    """A rejection; ``use_team`` sends the gap to that registered team instead (triage)."""

    use_team: str | None = Field(None, max_length=40)


class RequestEnvelope(BaseModel):
    schema_: int = Field(SCHEMA_VERSION, alias="schema")
    request: dict[str, Any]


class RequestsEnvelope(BaseModel):
    schema_: int = Field(SCHEMA_VERSION, alias="schema")
    requests: list[dict[str, Any]]
    next: str | None = Field(None, description="cursor of the next page (pass as ?cursor=), None at the end")


def _one(view: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"schema": SCHEMA_VERSION, "request": view}, status_code=status)


@router.post("/requests", response_model=RequestEnvelope, status_code=202)
async def submit(
    gap: CapabilityGap,
    rt: RuntimeDep,
    actor: ActorDep,
    wait: Annotated[bool, Query(description="answer when the run stops (published, waiting, failed)")] = False,
) -> JSONResponse:
    """Submit a capability gap. Answers 202 with the request as recorded (``received``), the run going on
    on a worker; with ``wait=true``, 200 once the run stops. A gap that already has a request answers 200
    with that request and ``duplicate: true``."""
    view = await rt.accept_and_drive(actor, gap.model_dump(mode="json"), wait=wait)
    return _one(view, 200 if wait or view["duplicate"] else 202)


class DryRunEnvelope(BaseModel):
    """What ``POST /requests/dry-run`` answers (README "Dry run")."""

    schema_: int = Field(alias="schema")
    dry_run: bool
    outcome: str
    request: dict[str, Any]
    diff: str
    invalid: list[str]
    would_audit: list[str]


@router.post("/requests/dry-run", response_model=DryRunEnvelope)
async def dry_run(gap: CapabilityGap, rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """Analyse, draft, gate and scaffold (with validation) a gap and answer with the diff it would push:
    no request is stored, nothing is pushed, no rate-limit slot is used; one audit row records the run."""
    rt.pool.check_capacity(1)
    view = await rt.pool.run(rt.service.dry_run, actor, gap.model_dump(mode="json"))
    return JSONResponse({"schema": SCHEMA_VERSION, **view})


@router.get("/requests", response_model=RequestsEnvelope)
async def list_requests(
    rt: RuntimeDep,
    actor: ActorDep,
    state: Annotated[list[RequestState] | None, Query()] = None,
    team: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """Requests, newest first; filter by ``state`` (repeatable) and proposed ``team``; page with ``cursor``."""
    states = {s.value for s in state} if state else None
    views = await rt.pool.run(rt.service.list, actor, limit=limit, states=states, team=team, cursor=cursor)
    following = page_cursor(views[-1]) if len(views) == limit else None
    return JSONResponse({"schema": SCHEMA_VERSION, "requests": views, "next": following})


@router.get("/requests/{request_id}", response_model=RequestEnvelope)
async def get_request(request_id: str, rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """One request's SUMMARY (404 when there is none)."""
    return _one(await rt.pool.run(rt.service.get, actor, request_id))


@router.post("/requests/{request_id}/approve", response_model=RequestEnvelope)
async def approve(request_id: str, rt: RuntimeDep, actor: ActorDep, body: Approve | None = None) -> JSONResponse:
    """Approve the cost of a request waiting for a human, then drive it on; with ``reconsider``, reopen a
    request refused as ``previously-rejected``. The requester cannot (four eyes: 403 with rule
    ``four-eyes``)."""
    reason, reconsider = (body.text, body.reconsider) if body else ("", False)
    view = await rt.pool.run(
        rt.service.approve, actor, request_id, reason=reason, reconsider=reconsider, progress=rt.progress
    )
    return _one(rt.published(view))


@router.post("/requests/{request_id}/override", response_model=RequestEnvelope)
async def override(request_id: str, body: Reason, rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """Lift the rate limit and cooldown for this one request; ``reason`` is required (four eyes)."""
    view = await rt.pool.run(rt.service.override, actor, request_id, reason=body.text, progress=rt.progress)
    return _one(rt.published(view))


@router.post("/requests/{request_id}/reject", response_model=RequestEnvelope)
async def reject(request_id: str, rt: RuntimeDep, actor: ActorDep, body: Rejection | None = None) -> JSONResponse:
    """Reject a waiting, refused or failed request (its requester may withdraw it); with ``use_team``,
    reuse that registered team instead."""
    view = await rt.pool.run(
        rt.service.reject,
        actor,
        request_id,
        reason=body.text if body else "",
        use_team=body.use_team if body else None,
    )
    return _one(rt.published(view))


@router.post("/requests/{request_id}/resume", response_model=RequestEnvelope)
async def resume(request_id: str, rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """Run a request again from its last good step (operator)."""
    view = await rt.pool.run(rt.service.resume, actor, request_id, progress=rt.progress)
    return _one(rt.published(view))


@router.post("/requests/{request_id}/rollback", response_model=RequestEnvelope)
async def rollback(request_id: str, rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """Open the revert pull request of a merged team (approver)."""
    view = await rt.pool.run(rt.service.rollback, actor, request_id, progress=rt.progress)
    return _one(rt.published(view))


@router.post("/resume-pending", response_model=RequestsEnvelope)
async def resume_pending(rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """Run every unfinished request again: failed, rate-limited, stopped mid-way (operator)."""
    views = await rt.pool.run(rt.service.resume_pending, actor, progress=rt.progress)
    return JSONResponse({"schema": SCHEMA_VERSION, "requests": [rt.published(v) for v in views], "next": None})


@router.get("/about", tags=["server"])
async def about(rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """Where this server publishes: ``{"target", "forge", "drafter"}``."""
    return JSONResponse(await rt.pool.run(rt.service.about))


@router.post("/track")
async def track(rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """Refresh published requests from their pull requests (operator)."""
    results = await rt.pool.run(rt.service.track, actor, progress=rt.progress)
    return JSONResponse({"schema": SCHEMA_VERSION, "results": results})


@router.get("/audit", tags=["audit"])
async def audit(
    rt: RuntimeDep,
    actor: ActorDep,
    request_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50,
) -> JSONResponse:
    """The last ``limit`` audit rows, oldest first (auditor)."""
    rows = await rt.pool.run(rt.service.audit, actor, request_id=request_id, limit=limit)
    return JSONResponse({"schema": SCHEMA_VERSION, "rows": rows})


@router.get("/audit/verify", tags=["audit"])
async def verify_audit(rt: RuntimeDep, actor: ActorDep, full: bool = False) -> JSONResponse:
    """Walk the audit log's hash chain (auditor) from the last verified checkpoint, or from row 1 with
    ``full``; the answer is ``CrewService.verify_audit``'s."""
    result = await rt.pool.run(rt.service.verify_audit, actor, full=full)
    return JSONResponse({"schema": SCHEMA_VERSION, **result})

