"""The agent card (a2a-sdk ``AgentCard``, protocol 0.3.0) served at ``/.well-known/agent-card.json``.

One skill, ``create_team``: a capability gap in, a reviewed pull request adding a new team out (or the
reason there is none). Callers authenticate with a bearer token (``DEVOPS_CREW_A2A_TOKENS``); the card
says so in ``securitySchemes`` and ``security``, which CrewAI's client checks against its own auth.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from a2a.types import AgentCapabilities, AgentCard, AgentSkill, HTTPAuthSecurityScheme, SecurityScheme

from ..models import Urgency
from ..settings import Settings

RPC_PATH = "/a2a/"
SKILL_ID = "create_team"
SECURITY_SCHEME = "bearer"
INPUT_MODES = ["application/json", "text/plain"]
OUTPUT_MODES = ["application/json", "text/plain"]

_GAP_EXAMPLE = {
    "description": "8 tasks a week need interactive d3.js charts for the quarterly dashboards",
    "required_skills": ["d3.js", "data visualization"],
    "urgency": "high",
    "requesting_team": "analytics",
    "business_justification": "The board reviews the dashboards every quarter",
    "affected_tasks": ["quarterly revenue dashboard", "churn dashboard"],
    "proposed_name": "data_visualization",
}

SKILL_DESCRIPTION = (
    "Propose a new team for a capability gap: something no team in the fleet can do yet. The crew checks the "
    "registry (an existing team that covers the gap is named instead), drafts the team, applies the policy "
    "(names, paths, rate limit, cost ceiling) and opens a pull request that adds it.\n"
    "Input, one gap per message, either:\n"
    "- a data part (application/json) with the gap's fields: description (required, up to 10,000 "
    'characters), required_skills (up to 20, e.g. "d3.js"), urgency ('
    + ", ".join(u.value for u in Urgency)
    + "), requesting_team (default: your team), business_justification, id (1-64 of A-Za-z0-9._-; the same "
    "id is the same gap), proposed_name (snake_case, 3-40 characters), affected_tasks (up to 100); or\n"
    "- plain text, which becomes the gap's description (the analyst step reads the skills out of it).\n"
    "With both, the data wins and the text fills a missing description.\n"
    'Output, in the task\'s final status message: one line of text and a data part {"schema": 1, "request": '
    "SUMMARY} with the request id, state, team and pull_request {number, url}. Task states: completed (pull "
    "request opened, team merged, or reuse an existing team), input-required (a human approver must approve "
    "the cost, or override the rate limit or cooldown; the line names the rule), rejected (refused by another "
    "policy rule, or by a human; invalid input), failed (the error). The same gap sent again answers with its "
    "existing request."
)

SKILL = AgentSkill(
    id=SKILL_ID,
    name="Create a team for a capability gap",
    description=SKILL_DESCRIPTION,
    tags=["team", "capability gap", "pull request", "crewai", "devops"],
    examples=[
        "We need a team that builds interactive d3.js charts for the quarterly dashboards; 8 tasks a week "
        "are blocked on it.",
        json.dumps(_GAP_EXAMPLE),
    ],
    input_modes=INPUT_MODES,
    output_modes=OUTPUT_MODES,
)


def _version() -> str:
    try:
        return version("devops-crew")
    except PackageNotFoundError:  # a checkout that was not installed
        return "0.0.0"


def base_url(settings: Settings, scope: Mapping[str, Any] | None = None) -> str:
    """Where callers reach this server, without a trailing slash: ``DEVOPS_CREW_PUBLIC_URL`` when set;
    else the address this request came in on (the ASGI scope's ``server``: the socket uvicorn accepted
    it on, which callers cannot forge), since the configured ``DEVOPS_CREW_SERVER_HOST``/``PORT`` may be
    overridden by ``serve --port`` (0 picks a port) or be a wildcard such as 0.0.0.0; else those settings.
    Behind a proxy or TLS, set DEVOPS_CREW_PUBLIC_URL."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    server = (scope or {}).get("server")
    if server and server[1]:
        host, port = str(server[0]), int(server[1])
    else:
        host, port = settings.server_host, settings.server_port
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def agent_card(settings: Settings, base: str | None = None) -> AgentCard:
    """The card, its ``url`` being ``base`` (default :func:`base_url` of the settings) + ``/a2a/``: the
    JSON-RPC endpoint a client posts to (``/a2a`` answers too)."""
    return AgentCard(
        name="devops-crew",
        description="A CrewAI team that turns capability gaps into reviewed pull requests adding new teams.",
        url=(base or base_url(settings)) + RPC_PATH,
        version=_version(),
        protocol_version="0.3.0",
        preferred_transport="JSONRPC",
        capabilities=AgentCapabilities(streaming=True, push_notifications=False, state_transition_history=True),
        default_input_modes=INPUT_MODES,
        default_output_modes=OUTPUT_MODES,
        skills=[SKILL],
        security_schemes={
            SECURITY_SCHEME: SecurityScheme(
                root=HTTPAuthSecurityScheme(
                    scheme="bearer",
                    description="Authorization: Bearer <token>: your team's token from DEVOPS_CREW_A2A_TOKENS",
                )
            )
        },
        security=[{SECURITY_SCHEME: []}],
        supports_authenticated_extended_card=False,
    )
