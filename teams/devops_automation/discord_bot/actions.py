"""What each Discord command and button does: build the actor, call the service off the event loop,
answer with an embed. Prefix commands, slash commands and buttons all end here.

Blocking work never runs on discord.py's loop: short store calls (``accept``, ``get``, ``list``,
``reject``) go to ``quick``, engine runs (``advance``, ``approve``, ``override``) to ``engine``: two
awaitables that run a function on threads (a :class:`~concurrent.futures.ThreadPoolExecutor` of the
bot's own, or the server's worker pool inside ``serve``). A new request is answered at once (state
``received``, with Approve / Reject buttons) and the same message is edited when its run ends.

Errors: a :class:`~.identity.UsageError` or :class:`~devops_automation.errors.DevopsCrewError` becomes
one short line (refusals of four eyes and roles are the service's own words); anything else is logged
and answered "internal error", never a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import DevopsCrewError, PolicyViolation
from ..service import CrewService, View
from ..settings import Settings
from .embeds import DECIDABLE, list_embed, request_embed, safe
from .identity import UsageError, actor_for
from .responders import Responder
from .views import REQUEST_ID, decision_view

log = logging.getLogger("devops_crew.discord")
T = TypeVar("T")
Runner = Callable[..., Awaitable[Any]]  # runner(fn, *args) -> await fn(*args) on a thread
_ID = re.compile(rf"^{REQUEST_ID}$")
PENDING_STATES = {"awaiting_approval", "refused", "failed"}
MAX_LISTED = 10


def request_id_of(text: str) -> str:
    """A request id as typed by a user. Raises UsageError when it cannot be one."""
    text = text.strip()
    if not _ID.match(text):
        raise UsageError("that is not a request id (like req-1a2b3c4d5e6f)")
    return text


def short_error(exc: BaseException) -> str:
    """One line (at most 300 characters, escaped) for the person who asked."""
    text = " ".join(str(exc).split())[:300]
    if isinstance(exc, PolicyViolation):
        text = f"refused by policy: {text}"
    return safe(text, 400)


class TeamActions:
    """The bot's behaviour over the service. ``engine`` and ``quick`` run a blocking call on threads
    (see module docs); ``on_view`` sees every SUMMARY an action produced (the server's event hub);
    ``admit(jobs)`` raises Unavailable when the server's pool could not take ``jobs`` more (draining, full)."""

    def __init__(
        self,
        settings: Settings,
        service: CrewService,
        *,
        engine: Runner,
        quick: Runner,
        on_view: Callable[[View], Any] | None = None,
        admit: Callable[[int], None] | None = None,
    ) -> None:
        self.settings, self.service = settings, service
        self._engine, self._quick = engine, quick
        self._on_view = on_view
        self._admit = admit

    def _seen(self, view: View) -> View:
        if self._on_view is not None:
            self._on_view(view)
        return view

    def _view_for(self, summary: View) -> Any:
        return decision_view(summary["id"]) if summary["state"] in DECIDABLE else None

    async def _guard(self, out: Responder, work: Awaitable[None]) -> None:
        try:
            await work
        except UsageError as exc:
            await out.refuse(safe(str(exc), 400))
        except DevopsCrewError as exc:
            log.info("discord: refused: %s", exc)
            await out.refuse(short_error(exc))
        except Exception:
            log.exception("discord: unexpected error")
            await out.refuse("internal error; the bot's log has the details")

    # -- commands ---------------------------------------------------------------------------
    async def request(self, user: Any, description: str, skills: list[str], out: Responder) -> None:
        """``!team request <text> [--skill …]``: record the gap, answer with its embed and buttons, then
        run it and edit the answer."""

        async def work() -> None:
            actor = actor_for(user, self.settings)
            gap = {"description": description, "required_skills": skills}
            if self._admit is not None:
                self._admit(2)  # the accept and its run: refuse before recording anything (Unavailable)
            await out.begin(None)
            summary = self._seen(await self._quick(self.service.accept, actor, gap))
            note = "This gap already had a request." if summary.get("duplicate") else ""
            if summary["state"] != "received":  # a duplicate already further on: nothing to run
                await out.show(request_embed(summary, note=note), self._view_for(summary))
                return
            working = " ".join(filter(None, [note, "The crew is working on it."]))
            await out.show(request_embed(summary, note=working), self._view_for(summary))
            final = self._seen(await self._engine(self.service.advance, actor, summary["id"]))
            await out.show(request_embed(final, note=note), self._view_for(final))

        await self._guard(out, work())

    async def status(self, user: Any, request_id: str | None, out: Responder) -> None:
        """``!team status [id]``: one request's embed, or the latest ten."""

        async def work() -> None:
            actor = actor_for(user, self.settings)
            await out.begin(None)
            if request_id:
                summary = await self._quick(self.service.get, actor, request_id_of(request_id))
                await out.show(request_embed(summary), self._view_for(summary))
                return
            summaries = await self._quick(lambda: self.service.list(actor, limit=MAX_LISTED))
            await out.show(list_embed(summaries, title="Latest requests", empty="No requests yet."), None)

        await self._guard(out, work())

    async def pending(self, user: Any, out: Responder) -> None:
        """``!team pending``: requests waiting for a human (cost ceiling, rate limit) or failed."""

        async def work() -> None:
            actor = actor_for(user, self.settings)
            await out.begin(None)
            summaries = await self._quick(lambda: self.service.list(actor, limit=MAX_LISTED, states=PENDING_STATES))
            await out.show(list_embed(summaries, title="Waiting for a human", empty="Nothing is waiting."), None)

        await self._guard(out, work())

    async def approve(self, user: Any, request_id: str, out: Responder, reason: str = "") -> None:
        """``!team approve <id>`` and the Approve button: approve and run on (four eyes: the service)."""

        async def work() -> None:
            actor = actor_for(user, self.settings)
            rid = request_id_of(request_id)
            await out.begin(f"Approving {rid}…")
            summary = self._seen(await self._engine(lambda: self.service.approve(actor, rid, reason=reason)))
            await out.show(request_embed(summary), self._view_for(summary))

        await self._guard(out, work())

    async def override(self, user: Any, request_id: str, reason: str, out: Responder) -> None:
        """``!team override <id> <reason>``: lift the rate limit and cooldown for one request."""

        async def work() -> None:
            actor = actor_for(user, self.settings)
            rid = request_id_of(request_id)
            if not reason.strip():
                raise UsageError("an override needs a reason: override <id> <reason>")
            await out.begin(f"Overriding the limits for {rid}…")
            summary = self._seen(await self._engine(lambda: self.service.override(actor, rid, reason=reason)))
            await out.show(request_embed(summary), self._view_for(summary))

        await self._guard(out, work())

    async def reject(self, user: Any, request_id: str, reason: str, out: Responder) -> None:
        """``!team reject <id> <reason>`` and the Reject form."""

        async def work() -> None:
            actor = actor_for(user, self.settings)
            rid = request_id_of(request_id)
            if not reason.strip():
                raise UsageError("a rejection needs a reason: reject <id> <reason>")
            await out.begin(None)
            summary = self._seen(await self._quick(lambda: self.service.reject(actor, rid, reason=reason)))
            await out.show(request_embed(summary), self._view_for(summary))

        await self._guard(out, work())
