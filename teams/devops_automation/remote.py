"""The service over HTTP: what the CLI uses when ``DEVOPS_CREW_SERVER_URL`` names a running
``devops-crew serve``. Same methods and views as :class:`~devops_automation.service.CrewService`; the
server authenticates the caller from ``DEVOPS_CREW_SERVER_TOKEN`` (a web user's token), so the local
``actor`` argument is ignored: who acts is who the token says.

A call then pays one HTTP round trip instead of the engine's start-up (store, forge, checkout, the
validation worker). Server errors come back as the same :mod:`~devops_automation.errors` classes, so the
CLI prints and exits exactly as it does locally.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from . import errors
from .settings import Settings

View = dict[str, Any]

#: ``error.type`` of the JSON API -> the error class the CLI knows.
ERROR_TYPES: dict[str, type[errors.DevopsCrewError]] = {
    "not_found": errors.NotFound,
    "permission_denied": errors.PermissionDenied,
    "action_refused": errors.ActionRefused,
    "configuration_error": errors.ConfigurationError,
    "broad_token_error": errors.BroadTokenError,
    "invalid_input": errors.InvalidInput,
    "not_authenticated": errors.NotAuthenticated,
    "unavailable": errors.Unavailable,
    "forge_error": errors.ForgeError,
    "git_error": errors.GitError,
    "render_error": errors.RenderError,
    "render_invalid": errors.RenderError,
    "llm_error": errors.LLMError,
}
#: Engine calls wait for the run; the server answers when it stops (a validated render takes seconds).
CALL_TIMEOUT_SECONDS = 600.0


def _id(request_id: str) -> str:
    """A request id as one path segment, whatever it holds (``../resume-pending?`` stays one segment)."""
    return quote(request_id, safe="")


class RemoteService:
    """:class:`CrewService`'s interface against ``settings.server_url``. Raises ConfigurationError when
    no token is configured or the server cannot be reached, and the server's errors as their classes."""

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.server_url:
            raise errors.ConfigurationError("DEVOPS_CREW_SERVER_URL is not set")
        if settings.server_token is None:
            raise errors.ConfigurationError(
                "DEVOPS_CREW_SERVER_URL is set but DEVOPS_CREW_SERVER_TOKEN is not (a web user's token)"
            )
        self.settings = settings
        self.url = settings.server_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {settings.server_token.get_secret_value()}"},
            timeout=httpx.Timeout(CALL_TIMEOUT_SECONDS, connect=5.0),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, "/api/v1" + path, **kwargs)
        except httpx.HTTPError as exc:
            raise errors.ConfigurationError(f"the server at {self.url} did not answer: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.is_success:
            if not isinstance(body, dict):
                raise errors.DevopsCrewError(f"the server at {self.url} answered something that is not JSON")
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            raise errors.DevopsCrewError(f"the server at {self.url} answered HTTP {response.status_code}")
        cls = ERROR_TYPES.get(str(error.get("type")), errors.DevopsCrewError)
        message = str(error.get("message", ""))[:2000]
        if cls is errors.PermissionDenied:
            raise errors.PermissionDenied(message, rule=str(error.get("rule") or "role"))
        if cls is errors.ForgeError:
            raise errors.ForgeError(message, status=response.status_code)
        if cls is errors.Unavailable:
            raise errors.Unavailable(message)
        raise cls(message)

    def _view(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """:meth:`_call`'s answer without its ``schema`` key: the service call's own view."""
        body = self._call(method, path, **kwargs)
        body.pop("schema", None)
        return body

    # -- the service's calls ------------------------------------------------------------------
    def submit(self, _actor: Any, gap: Any, *, progress: Any = None) -> View:
        data = gap.model_dump(mode="json") if hasattr(gap, "model_dump") else gap
        data = {k: v for k, v in data.items() if v is not None}
        return self._call("POST", "/requests", params={"wait": "true"}, json=data)["request"]

    def dry_run(self, _actor: Any, gap: Any, *, progress: Any = None) -> View:
        data = gap.model_dump(mode="json") if hasattr(gap, "model_dump") else gap
        data = {k: v for k, v in data.items() if v is not None}
        return self._view("POST", "/requests/dry-run", json=data)

    def get(self, _actor: Any, request_id: str) -> View:
        return self._call("GET", f"/requests/{_id(request_id)}")["request"]

    def list(self, _actor: Any, *, limit: int = 20, states: set[str] | None = None, **_: Any) -> list[View]:
        params: list[tuple[str, str | int]] = [("limit", limit), *(("state", s) for s in sorted(states or ()))]
        return self._call("GET", "/requests", params=params)["requests"]

    def approve(
        self, _actor: Any, request_id: str, *, reason: str = "", reconsider: bool = False, progress: Any = None
    ) -> View:
        body = {"reason": reason, "reconsider": reconsider}
        return self._call("POST", f"/requests/{_id(request_id)}/approve", json=body)["request"]

    def override(self, _actor: Any, request_id: str, *, reason: str, progress: Any = None) -> View:
        return self._call("POST", f"/requests/{_id(request_id)}/override", json={"reason": reason})["request"]

    def reject(self, _actor: Any, request_id: str, *, reason: str = "", use_team: str | None = None) -> View:
        body = {"reason": reason, "use_team": use_team}
        return self._call("POST", f"/requests/{_id(request_id)}/reject", json=body)["request"]

    def resume(self, _actor: Any, request_id: str, *, progress: Any = None) -> View:
        return self._call("POST", f"/requests/{_id(request_id)}/resume")["request"]

    def resume_pending(self, _actor: Any, *, progress: Any = None) -> list[View]:
        return self._call("POST", "/resume-pending")["requests"]

    def track(self, _actor: Any, *, progress: Any = None) -> list[View]:
        return self._call("POST", "/track")["results"]

    def rollback(self, _actor: Any, request_id: str, *, progress: Any = None) -> View:
        return self._call("POST", f"/requests/{_id(request_id)}/rollback")["request"]

    def audit(self, _actor: Any, *, request_id: str | None = None, limit: int = 50) -> list[View]:
        params: dict[str, Any] = {"limit": limit, **({"request_id": request_id} if request_id else {})}
        return self._call("GET", "/audit", params=params)["rows"]

    def verify_audit(self, _actor: Any, *, full: bool = False) -> View:
        return self._view("GET", "/audit/verify", params={"full": full})

    def review_gaps(self, _actor: Any, *, drive: bool = True, holder: Any = None, progress: Any = None) -> View:
        """The server reviews; the requests it records run on its workers, unless ``drive`` is off."""
        return self._view("POST", "/review-gaps", params={"run": drive})

    def add_task(self, _actor: Any, task: dict[str, Any]) -> View:
        return self._call("POST", "/tasks", json={k: v for k, v in task.items() if v is not None})["task"]

    def list_tasks(self, _actor: Any, *, limit: int = 100) -> list[View]:
        return self._call("GET", "/tasks", params={"limit": limit})["tasks"]

    def team_card(self, _actor: Any, name: str, *, live: bool = False) -> View:
        return self._view("GET", f"/teams/{_id(name)}/card", params={"live": live})

    def about(self) -> View:
        return self._call("GET", "/about")
