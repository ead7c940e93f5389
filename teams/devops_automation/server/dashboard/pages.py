"""The dashboard's routes: sign in and out, the request list, one request's review, the decision forms
and the gap form. Every page and action needs a signed-in web user (the login page and static files
excepted); what that user may do is the service's to decide (:mod:`devops_automation.authz`), the pages
only show its verdicts.

Each action runs its service call on the worker pool and answers with a redirect back (POST, redirect,
GET), carrying a one-line flash message: the result, or the service's own refusal (``PermissionDenied``,
``ActionRefused``, ...), never a traceback. An action still running after :data:`ACTION_WAIT_SECONDS`
(an approval renders, validates and pushes) keeps running; the request page refreshes itself until the
request stops moving.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import Future
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from ...authz import Action, Actor, permission_allowed
from ...errors import DevopsCrewError, InvalidInput, http_status
from ...models import IN_PROGRESS, RequestState, Urgency
from ...service import page_cursor
from ..runtime import Runtime
from ..runtime import runtime_of as runtime
from . import render
from .security import CSRF_FIELD, SESSION_MAX_AGE_SECONDS, safe_next

log = logging.getLogger("devops_crew.dashboard")
router = APIRouter(include_in_schema=False)

#: How long an action's POST waits for its service call before redirecting anyway.
ACTION_WAIT_SECONDS = 8.0
PAGE_SIZE, MAX_PAGE_SIZE = 25, 100
MAX_REASON_CHARS = 2000
#: The states a person has to look at (shown above the list on its first, unfiltered page).
NEEDS_DECISION = ("awaiting_approval", "refused", "failed")
#: Seconds between refreshes of a request page while its request is between steps.
REFRESH_SECONDS = 2
STATES = [s.value for s in RequestState]
MOVING = frozenset(s.value for s in IN_PROGRESS)
_FLASH_KEY, _SESSION_KEY = "flash", "sid"
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


class LoginRequired(Exception):
    """Raised by :func:`web_actor` for a request without a valid session; answered with a redirect."""


def web_actor(request: Request) -> Actor:
    """The signed-in web user as an Actor on channel ``web``. The cookie holds only a session id; the
    session lives in the store (signing out ends it everywhere, a copied cookie included) and the user is
    read again from the settings' users on each request (a removed user is signed out). Raises
    LoginRequired."""
    actor = _session_actor(request)
    if actor is None:
        request.session.pop(_SESSION_KEY, None)
        raise LoginRequired
    return actor


def _session_actor(request: Request) -> Actor | None:
    session_id = request.session.get(_SESSION_KEY)
    if not isinstance(session_id, str):
        return None
    rt = runtime(request)
    name = rt.service.session_user(session_id)
    return rt.auth.user(name) if name else None


async def login_required(request: Request, _exc: Exception) -> Response:
    """GET: to the login page, coming back here after; POST: to the login page with a message."""
    if request.method in {"GET", "HEAD"}:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = "" if target == "/" else "?" + urlencode({"next": target})
        return RedirectResponse(f"/login{query}", status_code=303)
    flash(request, "error", "Sign in first: that action needs a signed-in user.")
    return RedirectResponse("/login", status_code=303)


# -- flash messages --------------------------------------------------------------------------------
def one_line(text: object, limit: int = 500) -> str:
    return " ".join(str(text).split())[:limit]


def flash(request: Request, kind: str, text: str) -> None:
    """Queue a message for the next page this browser shows (``kind``: ``ok`` or ``error``)."""
    messages = list(request.session.get(_FLASH_KEY, []))[-4:]
    messages.append([kind, one_line(text)])
    request.session[_FLASH_KEY] = messages


def take_flashes(request: Request) -> list[tuple[str, str]]:
    messages = request.session.pop(_FLASH_KEY, None) or []
    return [(str(k), str(t)) for k, t in messages]


# -- templates ---------------------------------------------------------------------------------------
def csrf_token(request: Request) -> str:
    getter = request.scope.get("csrftoken")
    return getter() if callable(getter) else ""


def csrf_field(request: Request) -> Markup:
    """The hidden form field asgi-csrf checks."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token(request))}">')  # noqa: S704


def when(value: str | None) -> str:
    """ISO time -> ``2026-12-01 20:01 UTC``."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def money(value: float | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def web_link(url: str | None) -> str | None:
    """``url`` if a browser may follow it from here (http or https), else None (shown as text)."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


def make_templates(directory: str) -> Jinja2Templates:
    """Jinja2 with autoescaping on every template (all values are untrusted unless ``Markup``) and
    undefined names failing loudly."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(csrf_field=csrf_field, web_link=web_link, states=STATES)
    env.filters.update(when=when, money=money)
    return Jinja2Templates(env=env)


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render template ``name`` with the common context: the actor (if signed in), flashes, navigation."""
    templates: Jinja2Templates = request.app.state.dashboard_templates
    actor = context.pop("actor", None)
    common = {
        "actor": actor,
        "roles": ", ".join(sorted(r.value for r in actor.roles)) if actor else "",
        "can_submit": bool(actor and permission_allowed(actor, Action.submit).allowed),
        "flashes": take_flashes(request),
        "refresh": None,
    }
    return templates.TemplateResponse(request, name, {**common, **context}, status_code=status)


#: A page title per HTTP status of a refused or failed page (words for people, not exception classes).
ERROR_TITLES = {
    400: "Invalid input",
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    409: "Refused",
    422: "Invalid input",
    429: "Too many requests",
    502: "A step failed",
    503: "Unavailable",
}


def error_page(request: Request, actor: Actor | None, exc: DevopsCrewError) -> HTMLResponse:
    """A refused or failed page load: the service's one-line reason with its HTTP status."""
    status = http_status(exc)
    title = ERROR_TITLES.get(status, "Something went wrong")
    return page(request, "error.html", status, actor=actor, message=one_line(exc), title=title)


# -- sign in and out ---------------------------------------------------------------------------------
@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    if await runtime(request).quick(_session_actor, request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "login.html", next=safe_next(next), username="", error="")


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the password (argon2, off the loop); on success a fresh session holds only the user name."""
    form = await request.form()
    name = str(form.get("username", ""))[:64].strip()
    password = str(form.get("password", ""))[:1024]
    target = safe_next(str(form.get("next", "/")))
    rt = runtime(request)
    keys = (f"user:{name.lower()}", f"addr:{request.client.host if request.client else '?'}")
    wait = rt.throttle.blocked(*keys)
    if wait > 0:
        log.info("dashboard: sign-in for %r held back %d s (too many failures)", one_line(name, 64), int(wait) + 1)
        error = f"Too many failed sign-ins; try again in {int(wait) + 1} s."
        return page(request, "login.html", 429, next=target, username=name, error=error)
    actor = await rt.quick(rt.auth.login, name, password) if name and password else None
    if actor is None:
        rt.throttle.failed(*keys)
        log.info("dashboard: failed sign-in for %r", one_line(name, 64))
        return page(request, "login.html", 401, next=target, username=name, error="Unknown user or wrong password.")
    rt.throttle.succeeded(keys[0])
    session_id = await rt.quick(rt.service.open_session, actor, SESSION_MAX_AGE_SECONDS)
    request.session.clear()  # nothing of an earlier session survives a sign-in
    request.session[_SESSION_KEY] = session_id
    log.info("dashboard: %s signed in", actor.key)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    session_id = request.session.get(_SESSION_KEY)
    if isinstance(session_id, str):
        await runtime(request).quick(runtime(request).service.close_session, session_id)
    request.session.clear()
    flash(request, "ok", "Signed out.")
    return RedirectResponse("/login", status_code=303)


# -- the list ----------------------------------------------------------------------------------------
def _list_query(request: Request) -> tuple[set[str], str, str, int]:
    """(states, team, cursor, limit) from the query string. Raises InvalidInput."""
    params = request.query_params
    states = {s for s in params.getlist("state") if s}
    unknown = sorted(states - set(STATES))
    if unknown:
        raise InvalidInput(f"unknown state: {one_line(', '.join(unknown), 100)}")
    team = params.get("team", "").strip()
    if len(team) > 64:
        raise InvalidInput("team: at most 64 characters")
    cursor = params.get("cursor", "")
    if len(cursor) > 200:
        raise InvalidInput("cursor: not a cursor this server made")
    try:
        limit = int(params.get("limit", PAGE_SIZE))
    except ValueError:
        raise InvalidInput(f"limit must be a number between 1 and {MAX_PAGE_SIZE}") from None
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {limit}")
    return states, team, cursor, limit


def _href(states: set[str], team: str, limit: int, cursor: str = "") -> str:
    query: list[tuple[str, str]] = [("state", s) for s in sorted(states)]
    if team:
        query.append(("team", team))
    if limit != PAGE_SIZE:
        query.append(("limit", str(limit)))
    if cursor:
        query.append(("cursor", cursor))
    return "/" + ("?" + urlencode(query) if query else "")


@router.get("/")
async def request_list(request: Request) -> Response:
    """Requests newest first, filtered by state(s) and proposed team, paged by keyset cursor (never an
    offset: a deep page is one indexed range read). The first unfiltered page also shows what waits for
    a decision."""
    actor = await runtime(request).quick(web_actor, request)
    rt = runtime(request)
    try:
        states, team, cursor, limit = _list_query(request)
        rows = await rt.pool.run(  # one more than shown: whether an older page exists
            rt.service.overview, actor, limit=limit + 1, states=states or None, team=team or None, cursor=cursor or None
        )
        counts = await rt.pool.run(rt.service.state_counts, actor)
        waiting: list[dict[str, Any]] = []
        if not states and not team and not cursor:
            waiting = await rt.pool.run(rt.service.overview, actor, limit=20, states=set(NEEDS_DECISION))
    except DevopsCrewError as exc:
        return error_page(request, actor, exc)
    rows, more = rows[:limit], len(rows) > limit
    following = page_cursor(rows[-1]) if more else None
    return page(
        request,
        "list.html",
        actor=actor,
        rows=rows,
        waiting=waiting,
        counts=counts,
        selected=states,
        team=team,
        limit=limit,
        deep=bool(cursor),
        first_href=_href(states, team, limit),
        next_href=_href(states, team, limit, following) if following else None,
    )


@router.get("/notifications")
async def feed(request: Request) -> Response:
    """The dashboard's notification feed: each event the crew told people about, with each channel's
    delivery status (the dashboard is itself a channel: every event is in it)."""
    actor = await runtime(request).quick(web_actor, request)
    rt = runtime(request)
    try:
        events = await rt.quick(lambda: rt.service.feed(actor, limit=100))
    except DevopsCrewError as exc:
        return error_page(request, actor, exc)
    for event in events:
        event["link"] = web_link(event["payload"].get("pr_url"))
    return page(request, "feed.html", actor=actor, events=events)


# -- one request ---------------------------------------------------------------------------------------
def _rendered_files(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        if item["text"] is not None:
            html = render.code(item["path"], item["text"])
        elif item["patch"]:
            html = render.patch(item["patch"])
        else:
            html = None
        out.append({**item, "html": html, "language": render.language(item["path"])})
    return out


def _audit_rows(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Audit rows with ``who`` (the acting user, channel) and ``detail_text`` (the rest, one line)."""
    if rows is None:
        return None
    out = []
    for row in rows:
        detail = dict(row["detail"]) if isinstance(row["detail"], dict) else {"detail": row["detail"]}
        who = detail.pop("by", None) or detail.pop("actor", None) or ""
        channel = detail.pop("channel", None)
        detail.pop("actor", None)
        detail.pop("run", None)
        text = ", ".join(f"{k}={v}" for k, v in sorted(detail.items()) if v not in (None, "", [], {}))
        out.append({**row, "who": f"{who} ({channel})" if who and channel else who, "detail_text": one_line(text, 300)})
    return out


@router.get("/requests/{request_id}")
async def request_page(request: Request, request_id: str) -> Response:
    """One request as a reviewer sees it (:meth:`CrewService.review`)."""
    actor = await runtime(request).quick(web_actor, request)
    rt = runtime(request)
    try:
        review = await rt.pool.run(rt.service.review, actor, request_id)
    except DevopsCrewError as exc:
        return error_page(request, actor, exc)
    summary = review["request"]
    pull = review["pull_request"]
    progress = [e for e in list(rt.hub.recent) if e.request_id == summary["id"] and e.kind == "progress"][-12:]
    return page(
        request,
        "request.html",
        actor=actor,
        r=summary,
        review=review,
        pr_html=render.markdown(pull["body"]) if pull else None,
        files=_rendered_files(review["files"]["items"]),
        progress=progress,
        audit=_audit_rows(review["audit"]),
        refresh=REFRESH_SECONDS if summary["state"] in MOVING else None,
        max_reason=MAX_REASON_CHARS,
    )


def _outcome(label: str, view: dict[str, Any]) -> tuple[str, str]:
    """The flash message of an action that finished."""
    text = f"{label} {view['id']}: it is now {view['state']}"
    pr = view.get("pull_request")
    if pr and view["state"] in {"published", "merged"}:
        text += f", pull request #{pr['number']}"
    if view["state"] == "failed" and view.get("error"):
        return "error", f"{text}: {view['error']}"
    return "ok", text + "."


def _announce(rt: Runtime, future: Future[Any]) -> None:
    """Publish the new SUMMARY to the event hub when the call succeeded (runs in the worker's thread)."""
    if not future.cancelled() and future.exception() is None and isinstance(future.result(), dict):
        rt.published(future.result())


async def run_action(rt: Runtime, label: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    """Run ``fn`` on the worker pool and wait up to :data:`ACTION_WAIT_SECONDS`; (flash kind, text).
    A refusal becomes its one-line reason; anything else unexpected is logged and said in one line."""
    try:
        future = rt.pool.submit(fn, *args, **kwargs)
    except DevopsCrewError as exc:
        return "error", one_line(exc)
    future.add_done_callback(lambda f: _announce(rt, f))
    waiting = asyncio.wrap_future(future)
    waiting.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, even when late
    done, _pending = await asyncio.wait({waiting}, timeout=ACTION_WAIT_SECONDS)
    if not done:
        return "ok", f"{label}: recorded; the crew is still working on it (this page refreshes until it is done)."
    try:
        return _outcome(label, waiting.result())
    except DevopsCrewError as exc:
        return "error", one_line(exc)
    except Exception:
        log.exception("dashboard action %s failed", label)
        return "error", f"{label} failed with an internal error; the server log has the details."


def _reason(form: Any) -> str:
    reason = str(form.get("reason", "")).strip()
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"reason: at most {MAX_REASON_CHARS} characters")
    return reason


@router.post("/requests/{request_id}/{action}")
async def decide(request: Request, request_id: str, action: str) -> Response:
    """approve (optional reason), override (reason required), reject (reason required but to withdraw), merge (the
    embedded forge). Authorisation, four eyes and state rules are the service's."""
    actor = await runtime(request).quick(web_actor, request)
    rt = runtime(request)
    back = RedirectResponse(f"/requests/{request_id}" if _ID.fullmatch(request_id) else "/", status_code=303)
    form = await request.form()
    try:
        reason = _reason(form)
    except InvalidInput as exc:
        flash(request, "error", str(exc))
        return back
    service = rt.service
    if action == "approve":
        kind, text = await run_action(
            rt, "Approved", service.approve, actor, request_id, reason=reason, progress=rt.progress
        )
    elif action == "override":
        kind, text = await run_action(
            rt, "Override given for", service.override, actor, request_id, reason=reason, progress=rt.progress
        )
    elif action == "reject":  # the service asks for the reason (after who may; a withdrawal needs none)
        kind, text = await run_action(rt, "Rejected", service.reject, actor, request_id, reason=reason)
    elif action == "merge":
        kind, text = await run_action(rt, "Merged", service.merge, actor, request_id)
    else:
        return error_page(request, actor, InvalidInput(f"unknown action {one_line(action, 40)!r}"))
    flash(request, kind, text)
    return back


# -- a new gap ---------------------------------------------------------------------------------------------
_GAP_FIELDS = (
    "description",
    "required_skills",
    "urgency",
    "requesting_team",
    "business_justification",
    "proposed_name",
)


def _gap_from_form(form: Any) -> dict[str, Any]:
    """The form's fields as a gap (validated by the service: it is untrusted)."""
    values = {name: str(form.get(name, "")).strip() for name in _GAP_FIELDS}
    gap: dict[str, Any] = {"description": values["description"], "urgency": values["urgency"] or "medium"}
    skills = [s.strip() for s in values["required_skills"].replace("\n", ",").split(",") if s.strip()]
    gap["required_skills"] = skills
    for optional in ("requesting_team", "business_justification", "proposed_name"):
        if values[optional]:
            gap[optional] = values[optional]
    return gap


@router.get("/new")
async def new_form(request: Request) -> Response:
    actor = await runtime(request).quick(web_actor, request)
    verdict = permission_allowed(actor, Action.submit)
    return page(
        request,
        "new.html",
        actor=actor,
        values={},
        error="" if verdict.allowed else f"You may not submit gaps: {verdict.message}.",
        urgencies=[u.value for u in Urgency],
    )


@router.post("/new")
async def submit(request: Request) -> Response:
    """Record the gap's request and start its run on a worker; the request page follows the run."""
    actor = await runtime(request).quick(web_actor, request)
    rt = runtime(request)
    form = await request.form()
    values = {name: str(form.get(name, ""))[:20_000] for name in _GAP_FIELDS}
    try:
        view = await rt.accept_and_drive(actor, _gap_from_form(form), wait=False)
    except DevopsCrewError as exc:
        return page(
            request,
            "new.html",
            http_status(exc),
            actor=actor,
            values=values,
            error=one_line(exc),
            urgencies=[u.value for u in Urgency],
        )
    if view.get("duplicate"):
        flash(request, "ok", f"This gap already has request {view['id']} ({view['state']}).")
    else:
        flash(request, "ok", f"Request {view['id']} received; the crew is working on it.")
    return RedirectResponse(f"/requests/{view['id']}", status_code=303)
