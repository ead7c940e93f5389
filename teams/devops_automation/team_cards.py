"""A registered team's A2A agent card: built from its ``team.yaml`` as the team's generated server builds
it, and read live from where the team runs (issue "Packaged as a pod", point 5: "the registry can then read a
merged team's card, and other crews can delegate to the new team as soon as Argo CD deploys it").

Every team the crew generates serves an A2A agent (a2a-sdk 0.3, ``teams/<name>/server.py``) whose card is
built from its ``team.yaml``: name, description, one skill per listed skill. Its Kubernetes Service answers
at ``DEVOPS_CREW_TEAM_A2A_URL`` (default ``http://{k8s_name}.teams.svc.cluster.local``).
:func:`registry_card` builds the card the team will serve (offline,
from the registry); :func:`fetch_card` reads the card a running team serves, the way a2a-sdk's
``A2ACardResolver`` does (``GET /.well-known/agent-card.json``, validated as an ``AgentCard``), with a size
limit and a timeout, and treats the answer as untrusted: a card that names another team is refused.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, Unavailable
from .models import RegistryEntry

if TYPE_CHECKING:
    import httpx

DEFAULT_TEAM_A2A_URL = "http://{k8s_name}.teams.svc.cluster.local"  # Settings.team_a2a_url's default
CARD_PATH = "/.well-known/agent-card.json"  # a2a-sdk 0.3's AGENT_CARD_WELL_KNOWN_PATH
MAX_CARD_BYTES = 256 * 1024
MAX_DIFFERENCES = 50
MEDIA_TYPES = ["text/plain"]
#: The version a generated team's card carries when its team.yaml names none (the template's image tag).
DEFAULT_VERSION = "0.1.0"  # scaffold.render.IMAGE_TAG (a test keeps them equal)


def card_url(team: str, template: str) -> str:
    """Where team ``team`` answers A2A: ``template`` (``Settings.team_a2a_url``) with ``{name}`` and
    ``{k8s_name}`` filled in, without a trailing slash."""
    return template.format(name=team, k8s_name=team.replace("_", "-")).rstrip("/")


def _skill_id(skill: str) -> str:  # the generated server's rule (template server.py, ``_skill_id``)
    return re.sub(r"[^a-z0-9]+", "-", skill.lower()).strip("-") or "skill"


def registry_card(entry: RegistryEntry, url: str, *, version: str = DEFAULT_VERSION) -> dict[str, Any]:
    """The agent card a team generated from ``entry`` serves at ``url``, as a2a-sdk serialises it
    (camelCase JSON, ``None`` left out). Must match the template's ``server.agent_card``: a test serves a
    rendered team and compares."""
    from a2a.types import AgentCapabilities, AgentCard, AgentSkill

    card = AgentCard(
        name=entry.name,
        description=entry.description,
        url=url,
        version=version,
        protocol_version="0.3.0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=MEDIA_TYPES,
        default_output_modes=MEDIA_TYPES,
        skills=[
            AgentSkill(
                id=_skill_id(skill),
                name=skill,
                description=f"{entry.name} handles {skill}: send the work as plain text.",
                tags=[skill],
                input_modes=MEDIA_TYPES,
                output_modes=MEDIA_TYPES,
            )
            for skill in entry.skills
        ],
    )
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)


def fetch_card(
    entry: RegistryEntry, url: str, *, timeout: float = 5.0, transport: httpx.BaseTransport | None = None
) -> dict[str, Any]:
    """The card the team at ``url`` serves, validated as an a2a-sdk ``AgentCard`` (same JSON shape as
    :func:`registry_card`). Raises Unavailable (no answer, an HTTP error, more than ``MAX_CARD_BYTES``:
    the team is not deployed or not healthy; retry later) and InvalidInput (not an agent card, a card that
    names another team than ``entry``, a compressed answer). ``timeout`` in seconds, for connecting and for
    each read; the whole read ends after three times that. No proxy from the environment, no redirects."""
    import httpx
    from a2a.types import AgentCard
    from pydantic import ValidationError

    where = url + CARD_PATH
    deadline = time.monotonic() + 3 * timeout  # the whole read, however slowly a team drips its answer
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}  # no decompression bomb
    try:
        with (
            httpx.Client(timeout=timeout, transport=transport, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", where, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise Unavailable(f"team {entry.name}: {where} answered HTTP {response.status_code}", retry_after=60)
            if response.headers.get("content-encoding", "identity").lower() != "identity":
                raise InvalidInput(f"team {entry.name}: {where} sent a compressed card, asked for none")
            if int(response.headers.get("content-length") or 0) > MAX_CARD_BYTES:
                raise Unavailable(f"team {entry.name}: {where} sent more than {MAX_CARD_BYTES} bytes")
            body = b""
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > MAX_CARD_BYTES:
                    raise Unavailable(f"team {entry.name}: {where} sent more than {MAX_CARD_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise Unavailable(f"team {entry.name}: {where} took more than {3 * timeout:g} s", retry_after=60)
    except httpx.HTTPError as exc:
        raise Unavailable(f"team {entry.name} does not answer at {where}: {exc}", retry_after=60) from None
    try:
        card = AgentCard.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput(f"team {entry.name}: {where} is not an A2A agent card: {str(exc).splitlines()[0]}") from None
    if card.name != entry.name:
        raise InvalidInput(f"team {entry.name}: the card at {where} names another agent ({card.name[:60]!r})")
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)


def differences(expected: dict[str, Any], served: dict[str, Any]) -> list[str]:
    """What the served card says otherwise than the registry's (top-level fields and skills by id), one
    line each; ``url`` is left out (a team may be reached through another address than it advertises)."""
    found = []
    for key in sorted(set(expected) | set(served)):
        if key in ("url", "skills") or expected.get(key) == served.get(key):
            continue
        found.append(f"{key}: registry {expected.get(key)!r}, served {served.get(key)!r}"[:300])
    mine = {s["id"]: s for s in expected.get("skills", [])}
    theirs = {s.get("id"): s for s in served.get("skills", [])}
    found += [f"skill {i}: not served" for i in sorted(set(mine) - set(theirs))]
    extra = sorted(set(theirs) - set(mine), key=str)
    found += [f"skill {str(i)[:60]!r}: served, not in team.yaml" for i in extra]
    found += [f"skill {i}: differs" for i in sorted(set(mine) & set(theirs)) if mine[i] != theirs[i]]
    more = len(found) - MAX_DIFFERENCES
    return found[:MAX_DIFFERENCES] + ([f"... and {more} more"] if more > 0 else [])
