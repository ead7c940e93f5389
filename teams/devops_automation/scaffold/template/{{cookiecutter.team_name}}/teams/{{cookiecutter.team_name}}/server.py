"""A2A entry point of the {{ cookiecutter.team_name }} team (a2a-sdk {{ cookiecutter.a2a_sdk_version }}).

Other crews delegate to it.

``GET /.well-known/agent-card.json``: the agent card, built from ``team.yaml`` (name, description, one
skill per skill of the team). ``POST /``: A2A JSON-RPC (``message/send``, ``message/stream``,
``tasks/get``): the text of a message is appended to the crew's first task
(``crew.build_crew(request=...)``), and the crew's result comes
back as the task's final status message. ``GET /healthz`` (liveness) and ``GET /readyz`` (the config
loads) are the Deployment's probes. Run with ``python -m teams.{{ cookiecutter.team_name }}.server``
(``HOST``, ``PORT``; ``PUBLIC_URL`` is the URL the card advertises, by default the registry's URL of the
team, ``DEVOPS_CREW_TEAM_A2A_URL``).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.apps import A2AStarletteApplication
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentSkill, Part, TextPart, UnsupportedOperationError
from a2a.utils.errors import ServerError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import crew as team_crew

TEAM_DIR = Path(__file__).resolve().parent
#: Largest JSON-RPC body the server reads, in bytes.
MAX_BODY_BYTES = 64 * 1024
MEDIA_TYPES = ["text/plain"]


def _skill_id(skill: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", skill.lower()).strip("-") or "skill"


def agent_card(url: str) -> AgentCard:
    """The card of this team: ``team.yaml``'s name and description, one skill per listed skill."""
    entry = team_crew.safe_load((TEAM_DIR / "team.yaml").read_text(encoding="utf-8"))
    skills = [str(skill) for skill in entry.get("skills") or []]
    return AgentCard(
        name=str(entry["name"]),
        description=str(entry["description"]),
        url=url,
        version=str(entry.get("version") or "{{ cookiecutter.image_tag }}"),
        protocol_version="0.3.0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=MEDIA_TYPES,
        default_output_modes=MEDIA_TYPES,
        skills=[
            AgentSkill(
                id=_skill_id(skill),
                name=skill,
                description=f"{entry['name']} handles {skill}: send the work as plain text.",
                tags=[skill],
                input_modes=MEDIA_TYPES,
                output_modes=MEDIA_TYPES,
            )
            for skill in skills
        ],
    )


class CrewExecutor(AgentExecutor):
    """Runs the team's crew for each new message (on a worker thread, so the server keeps answering)."""

    def __init__(self, build_crew: Callable[..., Any] = team_crew.build_crew) -> None:
        self._build_crew = build_crew

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        if context.current_task is None:
            await updater.submit()
        await updater.start_work()
        text = context.get_user_input().strip()
        if not text:
            hint = Part(root=TextPart(text="send the work as text"))
            await updater.reject(updater.new_agent_message([hint]))
            return
        try:
            result = await asyncio.to_thread(lambda: self._build_crew(request=text).kickoff())
        except Exception as exc:  # a failed run ends the task failed: never a 500, never a traceback
            message = f"the crew failed: {type(exc).__name__}"
            await updater.failed(updater.new_agent_message([Part(root=TextPart(text=message))]))
            return
        await updater.complete(updater.new_agent_message([Part(root=TextPart(text=str(result)))]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise ServerError(error=UnsupportedOperationError())


async def healthz(_request: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(_request: Request) -> JSONResponse:
    """Readiness: the team's config loads."""
    try:
        team_crew.load_config()
    except (OSError, ValueError) as exc:
        return JSONResponse({"status": "not ready", "error": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready"})


def create_app(url: str, build_crew: Callable[..., Any] = team_crew.build_crew) -> Starlette:
    """The ASGI application: A2A at ``/`` with the card at ``/.well-known/agent-card.json``, plus probes."""
    handler = DefaultRequestHandler(agent_executor=CrewExecutor(build_crew), task_store=InMemoryTaskStore())
    a2a = A2AStarletteApplication(
        agent_card=agent_card(url), http_handler=handler, max_content_length=MAX_BODY_BYTES
    )
    return a2a.build(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])


def main() -> None:
    """Serve on ``$HOST:$PORT`` (default 0.0.0.0:8080) until stopped."""
    import uvicorn

    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 (a pod serves on its own address)
    port = int(os.environ.get("PORT", "8080"))
    url = os.environ.get("PUBLIC_URL") or {{ cookiecutter._a2a_url | tojson }}
    uvicorn.run(create_app(url), host=host, port=port, timeout_graceful_shutdown=20)


if __name__ == "__main__":
    main()
