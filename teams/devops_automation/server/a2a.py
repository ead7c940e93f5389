"""The A2A endpoint (a2a-sdk 0.3.x, the version ``crewai[a2a]`` pins): other crews send capability gaps.

Routes (added to the server's FastAPI application, outside its OpenAPI description):

- ``GET /.well-known/agent-card.json`` (and the older ``/.well-known/agent.json``, and ``GET /a2a/``, which
  is where CrewAI looks when its endpoint is the card's ``url``): the agent card (:mod:`.a2a_card`);
- ``POST /a2a`` and ``POST /a2a/`` (CrewAI normalises endpoints with a trailing slash): JSON-RPC 2.0,
  a2a-sdk's ``A2AStarletteApplication`` over a ``DefaultRequestHandler`` with the crew's executor
  (:mod:`.a2a_executor`) and tasks kept in the state store's database (:mod:`.a2a_tasks`).

Authentication happens here, before a2a-sdk sees the call: ``Authorization: Bearer <token>`` of an A2A
caller (``DEVOPS_CREW_A2A_TOKENS``; a web user's token is not an A2A caller). Without one the answer is
HTTP 401 with ``WWW-Authenticate: Bearer`` and a JSON-RPC error object (code -32000), for every method: no
task is created and none is read. The A2A specification asks for HTTP 401 on failed authentication; a
JSON-RPC client that reads only the body still finds an error there. An authenticated caller may read any
task (``tasks/get``), as its ``viewer`` role may read any request; task ids are random UUIDs.

Errors are JSON-RPC error objects, never a 500: a body that is not JSON or nested too deep (-32700,
answered here, without a2a-sdk's traceback on stderr), an invalid request (-32600), unknown method
(-32601), invalid params (-32602) or unknown task (-32001, all a2a-sdk's), and a body over
``DEVOPS_CREW_MAX_REQUEST_BYTES`` (-32600 with HTTP 413, by :class:`~.limits.BodyLimit` for the paths in
:data:`JSONRPC_PATHS`).
"""

from __future__ import annotations

import json
from typing import Any

from a2a.server.apps import A2AStarletteApplication
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types import InvalidParamsError, JSONParseError, JSONRPCError, JSONRPCErrorResponse, TaskNotFoundError
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, PREV_AGENT_CARD_WELL_KNOWN_PATH
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..authz import Actor, Channel
from ..errors import DevopsCrewError
from ..settings import Settings
from .a2a_card import agent_card, base_url
from .a2a_executor import CallerContextBuilder, GapExecutor, TaskWatch
from .a2a_tasks import RequestTaskStore, task_engine
from .runtime import Runtime

#: Paths whose oversize-body refusal is a JSON-RPC error (limits.BodyLimit).
JSONRPC_PATHS: frozenset[str] = frozenset({"/a2a", "/a2a/"})
CARD_PATHS = (AGENT_CARD_WELL_KNOWN_PATH, PREV_AGENT_CARD_WELL_KNOWN_PATH, "/a2a", "/a2a/")
#: JSON-RPC's "implementation-defined server error"; the HTTP status (401) says which.
UNAUTHENTICATED = -32000


def _error(code_or_error: JSONRPCError | JSONParseError, status: int = 200, **headers: str) -> JSONResponse:
    body = JSONRPCErrorResponse(id=None, error=code_or_error).model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers or None)


#: Deepest nesting of objects and arrays a JSON-RPC body may have (a gap needs three or four levels).
MAX_JSON_DEPTH = 32


def odd_json(body: Any) -> str:
    """Why a parsed body cannot be taken, or "": nesting deeper than :data:`MAX_JSON_DEPTH`, or a string
    with a lone surrogate (valid JSON escapes, but not text: it cannot be stored or echoed)."""
    stack: list[tuple[Any, int]] = [(body, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"the message nests deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
            stack.extend((k, depth + 1) for k in value)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "the message holds a string that is not text (a lone UTF-16 surrogate)"
    return ""


async def _foreign_task(rt: Runtime, store: RequestTaskStore, body: Any, actor: Actor) -> bool:
    """Whether a ``message/send`` or ``message/stream`` names a task another caller opened: a task takes
    messages from the team whose request it follows only (anyone else's turn would land in that team's
    history, which its agent reads)."""
    if not isinstance(body, dict) or body.get("method") not in {"message/send", "message/stream"}:
        return False
    params = body.get("params")
    message = params.get("message") if isinstance(params, dict) else None
    task_id = message.get("taskId") if isinstance(message, dict) else None
    if not isinstance(task_id, str):
        return False
    task = await store.stored(task_id)
    if task is None:
        return False  # a2a-sdk answers "task not found" itself
    request_id = (task.metadata or {}).get("request_id")
    if not isinstance(request_id, str):
        return True  # a task whose request is unknown takes no one's messages
    try:
        view = await rt.quick(rt.service.get, actor, request_id)
    except DevopsCrewError:
        return True
    requester = view.get("requester") or {}
    return (requester.get("id"), requester.get("channel")) != (actor.id, actor.channel.value)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the A2A routes to ``app`` and its start-up and shutdown hooks (bring open tasks up to date and
    follow them; close the task store). Raises ConfigurationError when the database is neither SQLite nor
    PostgreSQL (the task store's async driver)."""
    store = RequestTaskStore(task_engine(settings.effective_database_url))

    def runtime() -> Runtime:
        return app.state.runtime

    watch = TaskWatch(runtime, store)
    handler = DefaultRequestHandler(agent_executor=GapExecutor(watch), task_store=store)
    jsonrpc = A2AStarletteApplication(
        agent_card=agent_card(settings),
        http_handler=handler,
        context_builder=CallerContextBuilder(),
        max_content_length=settings.max_request_bytes,
    )
    sdk_endpoint = next(r.endpoint for r in jsonrpc.routes(rpc_url="/a2a") if r.name == "a2a_handler")

    async def rpc(request: Request) -> Response:
        """JSON-RPC: authenticate, check the body is JSON, then a2a-sdk's handler."""
        actor = runtime().auth.bearer(request.headers.get("authorization"), channel=Channel.a2a)
        if actor is None:
            refusal = JSONRPCError(
                code=UNAUTHENTICATED,
                message="authentication required: Authorization: Bearer <token> of an A2A caller",
            )
            return _error(refusal, 401, **{"WWW-Authenticate": 'Bearer realm="devops-crew"'})
        request.state.a2a_actor = actor
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return _error(JSONParseError(message=f"the body is not JSON: {exc}"))
        problem = odd_json(body)
        if problem:  # before a2a-sdk: it would store the message and fail later, out of the caller's sight
            return _error(InvalidParamsError(message=problem))
        if await _foreign_task(runtime(), store, body, actor):
            # As for a task that does not exist: the answer does not confirm someone else's task id.
            return _error(TaskNotFoundError(message="Task not found"))
        return await sdk_endpoint(request)

    async def card(request: Request) -> JSONResponse:
        served = agent_card(settings, base_url(settings, request.scope))
        payload: dict[str, Any] = served.model_dump(mode="json", exclude_none=True, by_alias=True)
        return JSONResponse(payload)

    for path in JSONRPC_PATHS:
        app.add_route(path, rpc, methods=["POST"], include_in_schema=False)
    for path in CARD_PATHS:
        app.add_route(path, card, methods=["GET"], include_in_schema=False)
    app.state.a2a = watch
    app.state.startup_hooks.append(watch.start)
    app.state.shutdown_hooks.append(watch.stop)
