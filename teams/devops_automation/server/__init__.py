"""``devops-crew serve``: the one long-running process of the pod.

One ASGI application (FastAPI under uvicorn) serves the A2A endpoint (:mod:`.a2a`), the JSON API
(:mod:`.api`), the dashboard (:mod:`.dashboard`), ``/healthz``, ``/readyz`` and ``/metrics``
(:mod:`.health`, :mod:`.metrics`). Every route authenticates (:mod:`.auth`), builds an
:class:`~devops_automation.authz.Actor` and calls :class:`~devops_automation.service.CrewService`;
engine work runs on a thread pool (:mod:`.worker`) so the event loop keeps answering. :mod:`.runtime`
holds what the routes share; :mod:`.asgi` builds the application and :mod:`.run` serves it.

FastAPI, uvicorn and the other server libraries are imported only here, never by the CLI's other
commands.
"""

from ..quiet import silence_crewai

# Before a2a-sdk is imported by any module of this package: its tracing is decided at import.
silence_crewai()
