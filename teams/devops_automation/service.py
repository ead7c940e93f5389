"""The one API every entry point calls (CLI, A2A, web, Discord, scheduler) and nothing else does.

Each call takes the :class:`~devops_automation.authz.Actor` the entry point authenticated, passes the
authorisation layer, runs the engine, and returns plain views: the JSON shapes of the README's "JSON
output" (dicts of str, numbers, lists, None), never ORM rows or forge objects. Long calls take a
per-call ``progress`` callback; the service keeps no per-call state, so one instance serves many
threads. Every audit row a call writes carries the actor's id and channel.

Read-only calls (``get``, ``list``, ``audit``, ``verify_audit``) open only the store: they work without a
forge. The engine (forge, checkout, drafter) is built on the first call that needs it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from . import report
from .app import App, build_app
from .audit import Auditor, audit_context, verify_log
from .authz import Action, Actor, Channel, require
from .drafting.base import Drafter
from .engine import Hooks, Progress, ProgressEvent
from .errors import ConfigurationError, InvalidInput, validation_fields, validation_problems
from .forge.links import PullLinks
from .models import (
    IN_PROGRESS,
    PATTERN_TEXT,
    REJECTABLE,
    TEAM_NAME_PATTERN,
    CapabilityGap,
    RequestState,
    TeamCreationRequest,
    Text,
)
from .notify.events import with_links
from .notify.outbox import Outbox
from .settings import Settings
from .store import HEAD_REVISION, Store, open_store, utc

View = dict[str, Any]
__all__ = ["CrewService", "Hooks", "Progress", "ProgressEvent", "View", "gap_from", "page_cursor"]
MAX_LIST = 1000
REVIEW_LEASE = "gap-review"
#: Longer than any review runs; a holder that died frees it after this.
REVIEW_LEASE_SECONDS = 900.0


def gap_from(data: CapabilityGap | dict[str, Any]) -> CapabilityGap:
    """A validated gap from untrusted data. Raises InvalidInput naming the fields at fault."""
    if isinstance(data, CapabilityGap):
        return CapabilityGap.model_validate(data.model_dump())
    try:
        return CapabilityGap.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(invalid_input_message(exc), validation_problems(exc)) from exc


_REASON = TypeAdapter(Annotated[Text, Field(max_length=2000)])


def checked_reason(reason: str) -> str:
    """A human decision's reason, as untrusted as a gap: no control or bidirectional-override characters
    (they would rewrite an operator's terminal or hide text), at most 2,000 characters. Raises InvalidInput."""
    try:
        return _REASON.validate_python(reason).strip()
    except ValidationError as exc:
        raise InvalidInput("reason: " + validation_problems(exc)[0][1]) from None


def invalid_input_message(exc: ValidationError) -> str:
    return "invalid input: " + validation_fields(exc)


def page_cursor(summary: View) -> str:
    """The keyset cursor that continues a listing after ``summary`` (opaque to callers)."""
    raw = json.dumps([summary["created_at"], summary["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, request_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if not isinstance(request_id, str) or len(request_id) > 40 or when.tzinfo is None:
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput("cursor: not a cursor this server made") from None
    return when, request_id


class CrewService:
    """The service layer. ``settings`` is the process's one Settings; ``drafter`` replaces the
    configured drafter (tests); ``app`` reuses an engine already built (tests, benchmarks)."""

    def __init__(
        self,
        settings: Settings,
        *,
        drafter: Drafter | None = None,
        app: App | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.settings = settings
        self._drafter = drafter
        self._hooks = hooks
        self._app = app
        self._store: Store | None = app.store if app is not None else None
        self._lock = threading.Lock()
        self.links = PullLinks.of(settings)

    # -- wiring -------------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self.settings.ensure_home()
                self._store = open_store(self.settings.effective_database_url)
            return self._store

    @property
    def app(self) -> App:
        """The engine and its forge, built on first use. Raises ConfigurationError, ForgeError."""
        store = self.store
        with self._lock:
            if self._app is None:
                self._app = build_app(self.settings, drafter=self._drafter, store=store, hooks=self._hooks)
            return self._app

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.forge.close()
            if self._store is not None:
                self._store.close()
            self._app = self._store = None

    def __enter__(self) -> CrewService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _acting(self, actor: Actor) -> Iterator[None]:
        with audit_context(actor=actor.id, channel=actor.channel.value):
            yield

    def _flush(self) -> None:
        """Send the notifications the call just caused (short budget; what fails is retried later by
        :meth:`deliver_notifications`). A channel never fails the call."""
        with suppress(Exception):
            self.app.dispatcher.deliver_due(budget_seconds=self.settings.notify_timeout_seconds * 2)

    def deliver_notifications(self, actor: Actor, *, budget_seconds: float = 60.0) -> View:
        """Send every notification due now (retries included): ``{"sent", "retrying", "dead", "skipped",
        "errors"}``. Raises PermissionDenied (needs the operator role, as ``track``)."""
        require(actor, Action.track)
        with self._acting(actor):
            done = self.app.dispatcher.deliver_due(budget_seconds=budget_seconds)
        return dict(done.__dict__)

    def add_notification_channel(self, name: str, channel: Any) -> None:
        """Send every later event to ``channel`` too (an entry point's own channel, such as the Discord
        bot inside ``serve``): an object with ``name`` and ``send(delivery) -> warning | None`` that raises
        Unavailable (retried with backoff) or ConfigurationError (given up)."""
        app = self.app
        app.dispatcher.channels[name] = channel
        if name not in app.store.notification_channels:
            app.store.notification_channels = (*app.store.notification_channels, name)

    def feed(self, actor: Actor, *, limit: int = 50, request_id: str | None = None) -> list[View]:
        """The newest notification events (of one request), newest first, with each channel's delivery
        status: the dashboard's feed. Raises PermissionDenied, InvalidInput."""
        require(actor, Action.read)
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}, not {limit}")
        events = Outbox(self.store).feed(limit=limit, request_id=request_id)
        return [{**e, "payload": with_links(e["payload"], self.links)} for e in events]

    def _summary(self, request: TeamCreationRequest, *, duplicate: bool | None = None) -> View:
        """``report.request_summary`` with the forge's links as they are now (``forge.links``)."""
        return report.request_summary(
            request, duplicate=duplicate, links=self.links, team_url=self.settings.team_a2a_url
        )

    def _request(self, request_id: str) -> TeamCreationRequest:
        return self.store.require_request(request_id)

    # -- requests -----------------------------------------------------------------------------
    def submit(self, actor: Actor, gap: CapabilityGap | dict[str, Any], *, progress: Progress | None = None) -> View:
        """Submit a gap (validated here: it is untrusted) and drive its request as far as it goes.
        Returns a SUMMARY with ``duplicate``. Raises PermissionDenied, InvalidInput, ConfigurationError."""
        require(actor, Action.submit)
        checked = gap_from(gap)
        with self._acting(actor):
            submission = self.app.engine.submit(checked, requester=actor.ref(), progress=progress)
        self._flush()
        return self._summary(submission.request, duplicate=submission.duplicate)

    def accept(self, actor: Actor, gap: CapabilityGap | dict[str, Any]) -> View:
        """Record a gap's request without running it (a server answers at once, then calls
        :meth:`advance` on a worker). Returns a SUMMARY with ``duplicate``.
        Raises PermissionDenied, InvalidInput, ConfigurationError."""
        require(actor, Action.submit)
        checked = gap_from(gap)
        with self._acting(actor):
            submission = self.app.engine.accept(checked, requester=actor.ref())
        return self._summary(submission.request, duplicate=submission.duplicate)

    def dry_run(self, actor: Actor, gap: CapabilityGap | dict[str, Any], *, progress: Progress | None = None) -> View:
        """Analyse, draft, gate and scaffold (with validation) ``gap`` as :meth:`submit` would, and return
        the diff it would push: ``{"dry_run": true, "outcome", "request": SUMMARY, "diff", "invalid",
        "would_audit"}``. Nothing is stored, pushed or counted against the rate limit; one audit row
        records that it ran. Raises PermissionDenied, InvalidInput, ConfigurationError, step failures."""
        from .engine.dryrun import dry_run

        require(actor, Action.submit)
        checked = gap_from(gap)
        with self._acting(actor):
            result = dry_run(self.app.engine.deps, checked, requester=actor.ref(), progress=progress)
        return {
            "dry_run": True,
            "outcome": result.outcome,
            "request": self._summary(result.request),
            "diff": result.diff,
            "invalid": result.invalid,
            "would_audit": result.would_audit,
        }

    def advance(self, actor: Actor, request_id: str, *, progress: Progress | None = None) -> View:
        """Drive a request as far as it goes now, for its own requester (after :meth:`accept`) or an
        operator. Raises PermissionDenied, NotFound."""
        request = self._request(request_id)
        own = request.requester is not None and request.requester.key == actor.key
        require(actor, Action.submit if own else Action.resume)
        with self._acting(actor):
            request = self.app.engine.run(request_id, progress=progress)
        self._flush()
        return self._summary(request)

    def get(self, actor: Actor, request_id: str) -> View:
        """One request's SUMMARY. Raises PermissionDenied, NotFound."""
        require(actor, Action.read)
        return self._summary(self._request(request_id))

    def list(
        self,
        actor: Actor,
        *,
        limit: int = 20,
        states: set[str] | None = None,
        team: str | None = None,
        cursor: str | None = None,
    ) -> list[View]:
        """The newest ``limit`` (1..1000) requests' SUMMARYs, newest first, optionally in ``states``, for
        one proposed ``team``, and after ``cursor`` (:func:`page_cursor` of the previous page's last
        SUMMARY). Raises PermissionDenied, InvalidInput."""
        return [self._summary(r) for r in self._page(actor, limit, states, team, cursor)]

    def _page(
        self, actor: Actor, limit: int, states: set[str] | None, team: str | None, cursor: str | None
    ) -> list[TeamCreationRequest]:
        """One keyset page for :meth:`list` and :meth:`overview`. Raises PermissionDenied, InvalidInput."""
        require(actor, Action.read)
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}, not {limit}")
        try:
            wanted = {RequestState(s) for s in states} if states else None
        except ValueError as exc:
            raise InvalidInput(f"unknown state: {exc}") from exc
        before = _read_cursor(cursor) if cursor else None
        return self.store.list_requests(limit=limit, states=wanted, team=team or None, before=before)

    def approve(
        self,
        actor: Actor,
        request_id: str,
        *,
        reason: str = "",
        reconsider: bool = False,
        progress: Progress | None = None,
    ) -> View:
        """Approve a request waiting on the cost ceiling, then drive it on; with ``reconsider``, reopen one
        refused as ``previously-rejected`` instead. Four eyes: the requester cannot.
        Raises PermissionDenied, NotFound, ActionRefused, InvalidInput (the reason)."""
        reason = checked_reason(reason)
        verdict = require(
            actor,
            Action.approve,
            self._request(request_id),
            allow_self_approval=self.settings.allow_self_approval,
        )
        engine = self.app.engine
        with self._acting(actor):
            decide = engine.reconsider if reconsider else engine.approve
            request = decide(
                request_id, by=actor.ref(), reason=reason, self_approval=verdict.self_approval, progress=progress
            )
        self._flush()
        return self._summary(request)

    def override(self, actor: Actor, request_id: str, *, reason: str, progress: Progress | None = None) -> View:
        """Lift the rate limit and cooldown for this one request (needs a reason; four eyes).
        Raises PermissionDenied, NotFound, ActionRefused, InvalidInput (the reason)."""
        reason = checked_reason(reason)
        verdict = require(
            actor,
            Action.override,
            self._request(request_id),
            reason=reason,
            allow_self_approval=self.settings.allow_self_approval,
        )
        with self._acting(actor):
            request = self.app.engine.approve(
                request_id,
                by=actor.ref(),
                override=True,
                reason=reason.strip(),
                self_approval=verdict.self_approval,
                progress=progress,
            )
        self._flush()
        return self._summary(request)

    def reject(self, actor: Actor, request_id: str, *, reason: str = "", use_team: str | None = None) -> View:
        """Reject a waiting, refused or failed request (its requester may withdraw it). ``use_team``: the
        gap goes to that registered team instead (triage of a ``possible-reuse`` request; state
        ``reuse_existing``). A rejection needs a reason, from every entry point alike: the requester reads
        it, and a later gap for the same team is refused as ``previously-rejected`` naming it; a withdrawal
        and a ``use_team`` triage (the team is the answer) need none. Raises PermissionDenied, NotFound,
        ActionRefused, InvalidInput."""
        reason = checked_reason(reason)
        if use_team is not None and not re.fullmatch(TEAM_NAME_PATTERN, use_team):
            raise InvalidInput(f"use_team {use_team[:60]!r} {PATTERN_TEXT[TEAM_NAME_PATTERN]}")
        current = self._request(request_id)
        verdict = require(actor, Action.reject, current)
        withdrawal = verdict.rule == "withdraw" and use_team is None  # the requester taking it back
        # A request past rejecting is refused for that by the engine, not for a missing reason.
        if not reason and use_team is None and not withdrawal and current.state in REJECTABLE:
            raise InvalidInput("a rejection needs a reason: say why, for the requester and the audit trail")
        with self._acting(actor):
            request = self.app.engine.reject(
                request_id,
                by=actor.ref(),
                reason=reason,
                use_team=use_team,
                # Not where self-approval is allowed: one person is requester and reviewer there, so their
                # no is a reviewer's.
                withdrawn=withdrawal and not self.settings.allow_self_approval,
            )
        self._flush()
        return self._summary(request)

    def resume(self, actor: Actor, request_id: str, *, progress: Progress | None = None) -> View:
        """Run a request again from its last good step. Raises PermissionDenied, NotFound."""
        require(actor, Action.resume)
        self._request(request_id)
        with self._acting(actor):
            request = self.app.engine.run(request_id, progress=progress)
        self._flush()
        return self._summary(request)

    def resume_pending(self, actor: Actor, *, progress: Progress | None = None) -> list[View]:
        """Run every unfinished request again (failed, rate-limited, stopped mid-way)."""
        require(actor, Action.resume)
        engine = self.app.engine
        with self._acting(actor):
            views = [self._summary(engine.run(r.id, progress=progress)) for r in engine.pending()]
        self._flush()
        return views

    def interrupted(self, actor: Actor) -> list[str]:
        """Ids of requests a crash or shutdown left between steps (not failed, not waiting), oldest
        first: a server start runs each again with :meth:`resume`."""
        require(actor, Action.resume)
        wanted = set(IN_PROGRESS)
        return [r.id for r in reversed(self.store.list_requests(limit=MAX_LIST, states=wanted))]

    def track(self, actor: Actor, *, progress: Progress | None = None) -> list[View]:
        """Refresh published requests from their pull requests: ``[{"request_id", "pr_number", "before",
        "after", "note"}]``."""
        require(actor, Action.track)
        with self._acting(actor):
            results = [r.model_dump() for r in self.app.lifecycle.track(progress=progress)]
        self._flush()
        return results

    def rollback(self, actor: Actor, request_id: str, *, progress: Progress | None = None) -> View:
        """Open the revert pull request for a merged team. Raises PermissionDenied, NotFound, ActionRefused."""
        require(actor, Action.rollback, self._request(request_id))
        with self._acting(actor):
            request = self.app.lifecycle.rollback(request_id, by=actor.ref(), progress=progress)
        self._flush()
        return self._summary(request)

    # -- scheduled gap review -----------------------------------------------------------------
    def review_gaps(
        self,
        actor: Actor,
        *,
        drive: bool = True,
        holder: str | None = None,
        progress: Progress | None = None,
    ) -> View:
        """Run the gap review (README "Scheduled gap review") under the store's ``gap-review`` lease, so
        two replicas or CronJob pods never run it at once; with ``drive``, run each new request as far as
        it goes (a server queues them on its workers instead). Returns the review's summary, or
        ``{"skipped": reason}`` when another holder runs it. Raises PermissionDenied, ForgeError."""
        from .engine.context import RunContext
        from .gapreview.run import review

        require(actor, Action.review_gaps)
        holder = holder or f"{actor.key}:{secrets.token_hex(4)}"
        store = self.store
        if not store.try_lease(REVIEW_LEASE, holder, REVIEW_LEASE_SECONDS):
            return {"skipped": "another process is running the gap review"}
        try:
            with self._acting(actor):
                deps = self.app.engine.deps
                registry = RunContext("review").registry(deps)  # cached per revision of the teams/ tree
                result = review(deps, requester=actor.ref(), registry=registry)
                view = result.view()
                if drive:
                    engine = self.app.engine
                    view["runs"] = [self._summary(engine.run(i, progress=progress)) for i in result.submitted]
        finally:
            store.release_lease(REVIEW_LEASE, holder)
        self._flush()
        return view

    def add_task(self, actor: Actor, task: dict[str, Any]) -> View:
        """Record an unassigned task other crews could not place: ``{"summary", "skills", "urgency",
        "source"}`` (``source`` defaults to the caller; an A2A caller's is always its own team). Returns
        the task. Raises PermissionDenied, InvalidInput."""
        from .gapreview.sources import TaskInput
        from .gapreview.tasks import TaskStore

        require(actor, Action.submit)
        data = dict(task)
        if actor.channel is Channel.a2a or not data.get("source"):
            data["source"] = actor.id
        try:
            checked = TaskInput.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(invalid_input_message(exc), problems=validation_problems(exc)) from None
        row = TaskStore(self.store).add(
            source=checked.source, summary=checked.summary, skills=checked.skills, urgency=checked.urgency.value
        )
        return {**row, "created_at": row["created_at"].isoformat()}

    def list_tasks(self, actor: Actor, *, limit: int = 100) -> list[View]:
        """Unassigned tasks no review has placed yet, oldest first. Raises PermissionDenied."""
        from .gapreview.tasks import TaskStore

        require(actor, Action.read)
        rows = TaskStore(self.store).open_tasks(limit=min(max(limit, 1), MAX_LIST))
        names = ("id", "source", "summary", "skills", "urgency", "created_at")
        return [{**dict(zip(names, r, strict=True)), "created_at": utc(r[5]).isoformat()} for r in rows]

    # -- the registry's teams ------------------------------------------------------------------
    def team_card(self, actor: Actor, name: str, *, live: bool = False) -> View:
        """A registered team's A2A agent card (``team_cards``): ``{"team", "url", "card", "served",
        "differences"}``. ``card`` is built from the team's ``team.yaml`` on the base branch, as its generated
        server builds it; with ``live``, ``served`` is the card the team serves at ``url`` now and
        ``differences`` what it says otherwise (``served`` is None and ``differences`` empty without
        ``live``). Raises PermissionDenied, InvalidInput (a bad name; a live answer that is not this team's
        card), NotFound (no such team on the base branch), Unavailable (the team does not answer: not
        deployed yet), GitError."""
        from .engine.context import RunContext
        from .errors import NotFound
        from .team_cards import card_url, differences, fetch_card, registry_card

        require(actor, Action.read)
        if not re.fullmatch(TEAM_NAME_PATTERN, name):
            raise InvalidInput(f"team {name[:60]!r} {PATTERN_TEXT[TEAM_NAME_PATTERN]}")
        registry = RunContext("team-card").registry(self.app.engine.deps)  # cached per teams/ revision
        entry = registry.entries.get(name)
        if entry is None:
            raise NotFound(f"no team {name!r} in the registry (teams/*/team.yaml on {self.settings.base_branch})")
        url = card_url(name, self.settings.team_a2a_url)
        card = registry_card(entry, url)
        view: View = {"team": name, "url": url, "card": card, "served": None, "differences": []}
        if live:
            served = fetch_card(entry, url, timeout=self.settings.team_card_timeout_seconds)
            view.update(served=served, differences=differences(card, served))
        return view

    # -- audit --------------------------------------------------------------------------------
    def audit(self, actor: Actor, *, request_id: str | None = None, limit: int = 50) -> list[View]:
        """The last ``limit`` audit rows (of one request, or all), oldest first."""
        require(actor, Action.audit)
        return self._audit_rows(request_id, limit)

    def _audit_rows(self, request_id: str | None, limit: int) -> list[View]:
        rows = self.store.tail_audit(request_id, limit)
        return [
            {
                "seq": r.seq,
                "ts": r.ts.isoformat(),
                "request_id": r.request_id,
                "action": r.action,
                "phase": r.phase,
                "target": r.target,
                "detail": json.loads(r.detail),
                "hash": r.hash,
            }
            for r in rows
        ]

    def verify_audit(self, actor: Actor, *, full: bool = False) -> View:
        """Walk the hash chain from the last verified checkpoint (from row 1 with ``full``) and, when it is
        intact, record a new checkpoint: ``{"rows", "ok", "problems", "first", "last", "resumed_from",
        "checkpoint", "notes"}`` (``rows`` walked, ``first..last`` their seqs, ``resumed_from`` the
        checkpoint's seq or None, ``checkpoint`` the seq now verified or None). Raises PermissionDenied."""
        require(actor, Action.audit)
        key = self.settings.audit_key.get_secret_value().encode() if self.settings.audit_key else None
        with audit_context(actor=actor.id, channel=actor.channel.value):
            result = verify_log(self.store, Auditor(self.store, self.settings.secret_values()), full=full, key=key)
        return {
            "rows": result.walked,
            "ok": not result.problems,
            "problems": result.problems,
            "first": result.first,
            "last": result.last,
            "resumed_from": result.resumed_from,
            "checkpoint": result.checkpoint.verified_seq if result.checkpoint else None,
            "notes": result.notes,
        }

    # -- web sessions (the dashboard's sign-in) -----------------------------------------------
    def open_session(self, actor: Actor, ttl_seconds: int) -> str:
        """A server-side session for a web user who just proved their password: its id goes in the
        (signed) cookie; the store keeps only a hash, so signing out ends it on every replica."""
        return self.store.create_session(actor.id, ttl_seconds)

    def session_user(self, session_id: str) -> str | None:
        """The user name of a live session, or None (unknown, signed out or expired)."""
        return self.store.session_user(session_id) if 20 <= len(session_id) <= 100 else None

    def close_session(self, session_id: str) -> None:
        """Sign out: the session ends everywhere, whoever holds a copy of its cookie."""
        if 20 <= len(session_id) <= 100:
            self.store.end_session(session_id)

    # -- operations -------------------------------------------------------------------------
    def schema_status(self) -> tuple[bool, str]:
        """Is the store at the schema this code expects? ``(ok, detail)``; raises the driver's error
        when the store does not answer (a probe reports it)."""
        revision = self.store.current_revision()
        if revision != HEAD_REVISION:
            return False, f"schema at {revision}, this code expects {HEAD_REVISION}"
        return True, f"schema {revision}"

    def ping_forge(self) -> str:
        """One cheap call to the forge; returns its label. Raises ForgeError, ConfigurationError."""
        forge = self.app.forge
        forge.ping()
        return forge.label

    def warm_up(self) -> None:
        """Build the engine and start the validation worker (the forkserver that preloads CrewAI), so the
        first request does not pay for either. Raises ConfigurationError, ForgeError, GitError."""
        self.app  # noqa: B018 - builds the engine: store, forge, checkout
        if self.settings.validate_render:
            from .scaffold.team_tests import warm_up

            warm_up()

    def about(self) -> View:
        """Where this service publishes: ``{"target", "forge", "drafter"}`` (builds the engine)."""
        app = self.app
        return {"target": app.target.url, "forge": app.forge.label, "drafter": app.drafter.label}

    # -- review (dashboard) -------------------------------------------------------------------
    def review(self, actor: Actor, request_id: str) -> View:
        """What a reviewer sees of one request (shape: :func:`devops_automation.review.build_review`): the
        SUMMARY, the pull request's body (Markdown), every file's change (from the crew's commit, or a
        preview rendered from the stored spec), the LLM use, the decisions ``actor`` may take and why not,
        and the request's audit trail when ``actor`` decides on requests (approver) or may read the audit
        log (auditor): a reviewer sees the history of what they decide on (``audit`` is None otherwise,
        ``audit_note`` says why). Builds the engine. Raises PermissionDenied (needs ``read``), NotFound,
        GitError (a checkout git cannot read)."""
        from .authz import Role, permission_allowed
        from .review import build_review

        require(actor, Action.read)
        request = self._request(request_id)
        app = self.app
        may_audit = permission_allowed(actor, Action.audit)
        if actor.has(Role.approver):  # a reviewer sees the history of what they decide on
            may_audit = may_audit.model_copy(update={"allowed": True})
        rows = self._audit_rows(request.id, 500) if may_audit.allowed else None
        return build_review(
            request,
            self._summary(request),
            actor=actor,
            ceiling_usd=self.settings.monthly_cost_ceiling_usd,
            allow_self_approval=self.settings.allow_self_approval,
            target=app.target,
            forge=app.forge,
            audit=rows,
            audit_note="" if may_audit.allowed else f"The audit trail is not shown: {may_audit.message}.",
            team_url=self.settings.team_a2a_url,
        )

    def merge(self, actor: Actor, request_id: str) -> View:
        """Merge a published request's pull request on the embedded forge, if its head is still the
        crew's commit, and record it as ``track`` does (state ``merged``). Needs the approver role and four
        eyes (:data:`~devops_automation.authz.FOUR_EYES_ACTIONS`); on GitHub, humans merge on GitHub.
        Raises PermissionDenied, NotFound, ActionRefused (state, closed or moved or draft pull request, not
        the embedded forge), ForgeError."""
        from .errors import ActionRefused
        from .review import merge_pull_request

        request = self._request(request_id)
        require(actor, Action.merge, request, allow_self_approval=self.settings.allow_self_approval)
        app = self.app
        if not app.forge.embedded:
            raise ActionRefused(
                f"{app.forge.label} is not the embedded forge: merge pull request #"
                f"{request.pr_number} there, then `devops-crew track` records it"
            )
        with self._acting(actor):
            merged = merge_pull_request(app.store, app.auditor, app.forge, request_id, by=actor.ref())
        return self._summary(merged)

    def overview(
        self,
        actor: Actor,
        *,
        limit: int = 20,
        states: set[str] | None = None,
        team: str | None = None,
        cursor: str | None = None,
    ) -> list[View]:
        """:meth:`list` for people: each SUMMARY also carries ``gap``, ``{"description", "requesting_team",
        "urgency"}`` (the description cut to 300 characters), so a list shows what was asked for. Same
        arguments, keyset paging (:func:`page_cursor`) and errors as :meth:`list`."""
        requests = self._page(actor, limit, states, team, cursor)
        return [
            {
                **self._summary(r),
                "gap": {
                    "description": r.gap.description[:300],
                    "requesting_team": r.gap.requesting_team,
                    "urgency": r.gap.urgency.value,
                },
            }
            for r in requests
        ]

    def state_counts(self, actor: Actor) -> dict[str, int]:
        """``{state: number of requests}`` for every state (zeros included). Raises PermissionDenied."""
        require(actor, Action.read)
        counts = self.store.count_by_state()
        return {state.value: counts.get(state.value, 0) for state in RequestState}


def serve_embedded_forge(settings: Settings, port: int, ready: Callable[[str], None]) -> None:
    """``devops-crew forge serve``: run the embedded forge in the foreground until interrupted.
    Raises ConfigurationError when the settings name another forge or the embedded one is not
    installed, OSError when ``port`` cannot be bound."""
    from .forge import forge_kind
    from .forge.local import serve_local_forge

    kind = forge_kind(settings)
    if kind != "local":
        raise ConfigurationError(
            f"DEVOPS_CREW_FORGE is {kind} (GITHUB_TOKEN set?); the local forge is for the embedded mode"
        )
    settings.ensure_home()
    serve_local_forge(settings, port, ready)
