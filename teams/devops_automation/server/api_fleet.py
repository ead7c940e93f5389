"""The JSON API's fleet routes (``/api/v1``): unassigned tasks other crews write, the gap review, and the
notification feed. Same authentication and error shapes as :mod:`.api`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..models import Urgency
from ..report import SCHEMA_VERSION
from ..service import MAX_LIST
from .api import ActorDep, RuntimeDep

router = APIRouter(prefix="/api/v1", tags=["fleet"])


class NewTask(BaseModel):
    """A task no team could take (``source`` is ignored for an A2A caller: it is always its own team). Unknown
    fields are refused (422), as the requests API refuses them: a misspelt field is never silently lost."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=500)
    skills: list[str] = Field(min_length=1, max_length=20)
    urgency: Urgency = Urgency.medium
    source: str | None = Field(None, max_length=100)


@router.post("/tasks", status_code=201)
async def add_task(task: NewTask, rt: RuntimeDep, actor: ActorDep) -> JSONResponse:
    """Record an unassigned task; the gap review groups such tasks by skill (requester)."""
    row = await rt.quick(rt.service.add_task, actor, task.model_dump(mode="json"))
    return JSONResponse({"schema": SCHEMA_VERSION, "task": row}, status_code=201)


@router.get("/tasks")
async def list_tasks(
    rt: RuntimeDep, actor: ActorDep, limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100
) -> JSONResponse:
    """Unassigned tasks no review has placed yet, oldest first (viewer)."""
    rows = await rt.quick(lambda: rt.service.list_tasks(actor, limit=limit))
    return JSONResponse({"schema": SCHEMA_VERSION, "tasks": rows})


@router.post("/review-gaps")
async def review_gaps(rt: RuntimeDep, actor: ActorDep, run: bool = True) -> JSONResponse:
    """Run the gap review now (operator): answers with its summary; the requests it records run on the
    server's workers (with ``run=false``, they are only recorded: ``review-gaps --no-run``).
    ``{"skipped": ...}`` when another replica is running it."""
    rt.pool.check_capacity(1)
    view: dict[str, Any] = await rt.pool.run(lambda: rt.service.review_gaps(actor, drive=False))
    for request_id in view.get("submitted", []) if run else []:
        rt.pool.submit(rt.resume_one, request_id)
    return JSONResponse({"schema": SCHEMA_VERSION, **view})


@router.get("/teams/{name}/card")
async def team_card(
    name: Annotated[str, Path(max_length=40)], rt: RuntimeDep, actor: ActorDep, live: bool = False
) -> JSONResponse:
    """A registered team's A2A agent card as its ``team.yaml`` gives it and, with ``live``, as the deployed
    team serves it (viewer): ``CrewService.team_card``'s shape. 503 when the team does not answer."""
    view = await rt.pool.run(rt.service.team_card, actor, name, live=live)
    return JSONResponse({"schema": SCHEMA_VERSION, **view})


@router.get("/notifications")
async def notifications(
    rt: RuntimeDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50,
    request_id: Annotated[str | None, Query(max_length=40)] = None,
) -> JSONResponse:
    """The notification feed, newest first, with each channel's delivery status (viewer)."""
    events = await rt.quick(lambda: rt.service.feed(actor, limit=limit, request_id=request_id))
    return JSONResponse({"schema": SCHEMA_VERSION, "notifications": events})
