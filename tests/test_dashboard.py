"""The dashboard of ``devops-crew serve``, against a real uvicorn on loopback: sign-in, sessions and CSRF,
escaping of hostile gap text, filters and keyset pages (also over 100,000 requests), the decision forms
with four eyes, merge on the embedded forge, and one walk through it all in headless Chromium.

Screenshots and timings land in ``test-artifacts/`` at the repository root (git-ignored).
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import insert

from devops_automation import tables
from devops_automation.authz import Actor, Channel, Role
from devops_automation.server.auth import Authenticator
from devops_automation.server.dashboard import STATIC_DIR, TEMPLATES_DIR, render, security
from devops_automation.service import CrewService, page_cursor

from .helpers import new_gap
from .server_fixtures import PASSWORD, RunningServer, bearer, running_server, server_settings, wait_for_state

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

_TOKEN = re.compile(r'name="csrftoken" value="([^"]+)"')
_FLASH = re.compile(r'<div class="flash (ok|error)" role="status">(.*?)</div>', re.S)
_ROW_ID = re.compile(r'<td><a href="/requests/(req-[A-Za-z0-9_-]+)">')

HOSTILE = """Quarterly charts <script>alert("gap")</script> <img src=x onerror=alert(1)>
[click me](javascript:alert(document.cookie)) [entity](JaVaScRiPt&#58;alert(2)) <javascript:alert(3)>
<a href="javascript:alert(5)">link</a> <svg onload=alert(8)></svg> <iframe src="http://127.0.0.1:9/"></iframe>
```
fence break </code></pre><script>alert(4)</script>
```
{{ 7*7 }} {% raw %} ${7*7} <!-- comment --> ![tracker](http://127.0.0.1:9/pixel.png) &lt;b&gt;bold&lt;/b&gt;"""


def record_timing(name: str, seconds: float) -> None:
    """Keep a measured duration in ``test-artifacts/timings.json`` (and print it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "timings.json"
    try:
        timings = json.loads(path.read_text())
    except (OSError, ValueError):
        timings = {}
    timings[name] = round(seconds, 4)
    path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    print(f"timing {name}: {seconds:.3f} s")


# -- helpers ---------------------------------------------------------------------------------------
def _reviewer():  # type: ignore[no-untyped-def]
    from devops_automation.authz import Actor, Channel, Role

    return Actor(id="test-reviewer", channel=Channel.web, roles=frozenset({Role.approver, Role.viewer}))


def csrf(page: str) -> str:
    found = _TOKEN.search(page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(client: httpx.Client, name: str, password: str = PASSWORD, next_page: str = "/") -> httpx.Response:
    token = csrf(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password, "csrftoken": token, "next": next_page})


@contextmanager
def signed_in(server: RunningServer, name: str) -> Iterator[httpx.Client]:
    """A client signed in to the dashboard as ``name`` (its cookies: the session and the CSRF token)."""
    with server.client() as client:
        answer = login(client, name)
        assert answer.status_code == 303, answer.text
        yield client


def flashes(page: str) -> list[tuple[str, str]]:
    return [(kind, html.unescape(text).strip()) for kind, text in _FLASH.findall(page)]


def act(client: httpx.Client, request_id: str, action: str, **fields: str) -> tuple[str, str]:
    """Post a decision form with the page's CSRF token, follow the redirect back, return the flash."""
    token = csrf(client.get(f"/requests/{request_id}").text)
    answer = client.post(f"/requests/{request_id}/{action}", data={"csrftoken": token, **fields})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/requests/{request_id}"
    shown = flashes(client.get(answer.headers["location"]).text)
    assert len(shown) == 1, shown
    return shown[0]


def submit(server: RunningServer, user: str, gap: dict[str, Any], states: set[str]) -> dict[str, Any]:
    """A gap sent through the JSON API as ``user``, run until one of ``states``."""
    with server.client() as client:
        answer = client.post("/api/v1/requests", json=gap, headers=bearer(user))
        assert answer.status_code == 202, answer.text
        return wait_for_state(client, answer.json()["request"]["id"], states)


def state_of(server: RunningServer, request_id: str) -> str:
    with server.client() as client:
        return client.get(f"/api/v1/requests/{request_id}", headers=bearer("vic")).json()["request"]["state"]


def table_ids(page: str, table: str = "all") -> list[str]:
    start = page.index(f'<table class="requests" id="{table}">')
    return _ROW_ID.findall(page[start : page.index("</table>", start)])


def older_link(page: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next" id="older">', page)
    return html.unescape(found.group(1)) if found else None


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's tokenizer sees them."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _links(page: str) -> list[str]:
    return [a[k].strip() for _t, a in _Tags(page).tags for k in ("href", "src", "action") if k in a]


def assert_no_markup(page: str) -> None:
    """No markup of hostile text survived: no script, image, frame or object element, no event handler
    attribute, no link to a script or data URL (checked on the tags a parser finds, not on the text)."""
    tags = _Tags(page).tags
    bad = [t for t, _a in tags if t in {"script", "img", "svg", "iframe", "object", "embed", "base", "math"}]
    assert not bad, f"hostile elements reached the page: {bad}"
    handlers = [(t, k) for t, a in tags for k in a if k.startswith("on")]
    assert not handlers, f"event handler attributes reached the page: {handlers}"
    scripted = [u for u in _links(page) if re.match(r"(javascript|data|vbscript):", re.sub(r"\s", "", u), re.I)]
    assert not scripted, scripted


def assert_inert(page: str) -> None:
    """:func:`assert_no_markup`, and nothing on the page points at another site."""
    assert_no_markup(page)
    elsewhere = [u for u in _links(page) if re.match(r"([a-z][a-z0-9+.-]*:|//)", u, re.I)]
    assert not elsewhere, f"the page points elsewhere: {elsewhere}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """Every team the offline drafter proposes costs more than $5 a month: each request waits for a human."""
    with running_server(server_settings(tmp_path / "home", monthly_cost_ceiling_usd=5)) as running:
        yield running


# -- sign-in, sessions, CSRF -------------------------------------------------------------------------
def test_anonymous_visitors_reach_only_the_login_page_and_static_files(server: RunningServer) -> None:
    waiting = submit(server, "alice", new_gap(1).model_dump(mode="json"), {"awaiting_approval"})
    with server.client() as client:
        assert client.get("/").headers["location"] == "/login"
        for path in (f"/requests/{waiting['id']}", "/new", "/?state=failed"):
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=%2F"), path
        assert client.get("/login").status_code == 200
        css = client.get("/static/dashboard.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        token = csrf(client.get("/login").text)  # a valid token, but no session: still no action
        for action in ("approve", "reject", "override", "merge"):
            answer = client.post(f"/requests/{waiting['id']}/{action}", data={"csrftoken": token, "reason": "x"})
            assert answer.status_code == 303 and answer.headers["location"] == "/login", action
        answer = client.post("/new", data={"csrftoken": token, "description": "needs go apps", "required_skills": "go"})
        assert answer.headers["location"] == "/login"
    assert state_of(server, waiting["id"]) == "awaiting_approval"
    with server.client() as client:
        assert len(client.get("/api/v1/requests", headers=bearer("vic")).json()["requests"]) == 1


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(server: RunningServer) -> None:
    with server.client() as client:
        wrong = login(client, "bob", "not the password")
        unknown = login(client, "mallory", PASSWORD)
        for answer in (wrong, unknown):
            assert answer.status_code == 401
            assert "Unknown user or wrong password." in answer.text
            assert security.SESSION_COOKIE not in answer.headers.get("set-cookie", "")
        assert client.get("/").status_code == 303
        answer = login(client, "bob", next_page="/?state=published")
        assert answer.status_code == 303 and answer.headers["location"] == "/?state=published"
        page = client.get("/")
        assert page.status_code == 200 and '<span class="user">Bob</span>' in page.text


def test_session_cookies_are_hardened_and_sign_out_ends_the_session(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "plain")) as server, server.client() as client:
        answer = login(client, "vic", next_page="//evil.example/steal")
        assert answer.headers["location"] == "/"  # never a redirect off this site
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(security.SESSION_COOKIE))
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=lax", "path=/"} <= flags and "secure" not in flags
        page = client.get("/")
        assert page.status_code == 200
        assert client.post("/logout").status_code in {403, 415}  # sign-out is a form too: CSRF applies
        assert client.post("/logout", data={"x": "1"}).status_code == 403
        copied = dict(client.cookies)  # someone copied the signed-in cookie before sign-out
        answer = client.post("/logout", data={"csrftoken": csrf(page.text)})
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
        assert flashes(client.get("/login").text) == [("ok", "Signed out.")]
        assert client.get("/").status_code == 303
        with server.client(cookies=copied) as replay:  # the session ended on the server, not just here
            assert replay.get("/").status_code == 303
    with running_server(server_settings(tmp_path / "tls", secure_cookies=True)) as server, server.client() as client:
        first = client.get("/login")
        assert "secure" in first.headers["set-cookie"].lower()  # the CSRF cookie
        token = first.headers["set-cookie"].split(";")[0]  # httpx keeps Secure cookies for https: send it by hand
        answer = httpx.post(
            server.url + "/login",
            data={"username": "vic", "password": PASSWORD, "csrftoken": csrf(first.text), "next": "/"},
            headers={"cookie": token},
        )
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(security.SESSION_COOKIE))
        assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_bodies_the_forms_never_send_are_refused_not_a_500(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home")) as server, server.client() as client:
        page = client.get("/login")
        token = csrf(page.text)
        for headers, content in [
            ({"content-type": "multipart/form-data; boundary=b"}, b"--b--"),
            ({"content-type": "multipart/form-data;boundary=b"}, b"junk"),
            ({"content-type": "multipart/form-data"}, b"junk"),
            ({"content-type": "application/json"}, b'{"username": "bob"}'),
        ]:
            answer = client.post("/login", headers=headers, content=content)
            assert answer.status_code == 415, (headers, answer.status_code)
        multipart = client.post("/login", files={"f": b"x"}, data={"csrftoken": token, "username": "bob"})
        assert multipart.status_code == 415
        with_bearer = client.post(
            "/login",
            data={"username": "bob", "password": PASSWORD},
            headers={"Authorization": "Bearer junk"},  # asgi-csrf would wave this through: not here
        )
        assert with_bearer.status_code == 403


def test_failed_sign_ins_are_throttled(tmp_path: Path) -> None:
    """Five failures hold a name back for the window; the other users at the same address still sign in
    (an office or a proxy is one address); twenty failures from one address, across names, hold it back."""
    with running_server(server_settings(tmp_path / "home")) as server, server.client() as client:
        answers = [login(client, "bob", "not the password").status_code for _ in range(6)]
        assert answers == [401] * 5 + [429]
        blocked = login(client, "bob")  # even the right password waits out the window
        assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
        assert login(client, "alice").status_code in (302, 303)  # same address, another user
        client.cookies.clear()
        guesses = [login(client, f"nobody{n}", "guess").status_code for n in range(15)]
        assert guesses == [401] * 15  # bob's 5 (held-back tries do not count) and 15 here: 20 from this address
        assert login(client, "carol").status_code == 429


def test_forms_without_a_valid_csrf_token_are_refused(server: RunningServer, tmp_path: Path) -> None:
    waiting = submit(server, "alice", new_gap(1).model_dump(mode="json"), {"awaiting_approval"})
    with server.client() as fresh:  # no cookie at all: asgi-csrf would let it pass, always_protect does not
        answer = fresh.post("/login", data={"username": "bob", "password": PASSWORD})
        assert answer.status_code == 403 and "cannot be accepted" in answer.text
    with server.client() as client:
        client.get("/login")
        answer = client.post("/login", data={"username": "bob", "password": PASSWORD})
        assert answer.status_code == 403  # login CSRF
    with signed_in(server, "bob") as bob:
        url = f"/requests/{waiting['id']}/approve"
        assert bob.post(url, data={"reason": "no token"}).status_code == 403
        assert bob.post(url, data={"reason": "forged", "csrftoken": "forged"}).status_code == 403
        with running_server(server_settings(tmp_path / "other", session_secret="another-secret-9876543210")) as other:
            foreign = csrf(other.client().get("/login").text)  # signed with another server's key
        assert bob.post(url, data={"csrftoken": foreign}).status_code == 403
        assert bob.post(url, json={"reason": "json"}).status_code == 415  # not a form: refused, not parsed
    assert state_of(server, waiting["id"]) == "awaiting_approval"


def test_the_json_api_and_a2a_are_not_subject_to_csrf(server: RunningServer) -> None:
    with signed_in(server, "alice") as client:  # the browser's cookies ride along
        answer = client.post("/api/v1/requests", json=new_gap(2).model_dump(mode="json"), headers=bearer("alice"))
        assert answer.status_code == 202, answer.text
        answer = client.post("/api/v1/requests", json=new_gap(3).model_dump(mode="json"))
        assert answer.status_code == 401 and answer.json()["error"]["type"] == "not_authenticated"
        answer = client.post("/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}})
        assert "cannot be accepted" not in answer.text  # whatever A2A answers, CSRF did not
        assert "content-security-policy" not in answer.headers  # only dashboard paths get its headers


def test_a_removed_user_loses_access_on_the_next_request(server: RunningServer) -> None:
    with signed_in(server, "bob") as client:
        assert client.get("/").status_code == 200
        settings = server.runtime.settings
        users = json.loads(settings.web_users.get_secret_value())
        del users["bob"]
        server.runtime.auth = Authenticator(settings.model_copy(update={"web_users": SecretStr(json.dumps(users))}))
        answer = client.get("/")
        assert answer.status_code == 303 and answer.headers["location"] == "/login"


# -- escaping ----------------------------------------------------------------------------------------
def test_markdown_renders_no_raw_html_and_no_dangerous_links() -> None:
    out = str(render.markdown(HOSTILE + "\n\n[ok](https://example.org/a) [rel](/requests/x) [mail](mailto:a@b.c)"))
    assert_no_markup(out)
    assert '!<a href="http://127.0.0.1:9/pixel.png" rel="nofollow noopener noreferrer">tracker</a>' in out
    assert "&lt;script&gt;" in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert 'href="https://example.org/a" rel="nofollow noopener noreferrer"' in out
    assert 'href="/requests/x"' in out and 'href="mailto:a@b.c"' in out
    assert "{{ 7" in out and "49" not in out  # Jinja never sees data; Markdown may emphasise the stars
    table = str(render.markdown("| a | b |\n| --- | --- |\n| `x` | <b>y</b> |"))
    assert "<table>" in table and "&lt;b&gt;y&lt;/b&gt;" in table
    colored = str(render.code("teams/x/crew.py", 'import os\nprint("</pre><script>")\n'))
    assert '<span class="kn">import</span>' in colored and "&lt;/pre&gt;&lt;script&gt;" in colored
    assert "<script" not in colored
    assert 'class="gd"' in str(render.patch("@@ -1 +1 @@\n-old\n+new\n"))


def test_hostile_gap_text_never_becomes_markup(server: RunningServer) -> None:
    gap = {
        "description": HOSTILE,
        "required_skills": ["kotlin"],
        "requesting_team": "<b onmouseover=alert(6)>ops</b>",
        "business_justification": "[x](javascript:alert(9)) <script>alert(10)</script>",
        "affected_tasks": ["<script>alert(7)</script>", "{{ config }}"],
        "proposed_name": "hostile_team",
    }
    waiting = submit(server, "alice", gap, {"awaiting_approval"})
    with signed_in(server, "bob") as client:
        listing = client.get("/").text
        page = client.get(f"/requests/{waiting['id']}").text
    for shown in (listing, page):
        assert_inert(shown)
        assert "&lt;script&gt;alert(&#34;gap&#34;)&lt;/script&gt;" in shown
    assert "{{ 7*7 }}" in page and "{% raw %}" in page
    assert "&lt;b onmouseover=alert(6)&gt;ops&lt;/b&gt;" in page and "{{ config }}" in page
    assert page.count('<article class="markdown">') == 1  # the PR body, rendered (and escaped)
    assert "&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;" in page  # the fence break stayed text


# -- the list --------------------------------------------------------------------------------------------
def test_the_list_shows_each_request_and_filters_by_state_and_team(server: RunningServer) -> None:
    made = [submit(server, "alice", new_gap(n).model_dump(mode="json"), {"awaiting_approval"}) for n in (1, 2, 3)]
    with server.client() as client:
        answer = client.post(
            f"/api/v1/requests/{made[0]['id']}/reject", json={"reason": "not now"}, headers=bearer("bob")
        )
        assert answer.status_code == 200, answer.text
    with signed_in(server, "vic") as client:
        page = client.get("/").text
        assert table_ids(page, "waiting") == [made[2]["id"], made[1]["id"]]
        row = page[page.index(f'<a href="/requests/{made[1]["id"]}">', page.index('id="all"')) :]
        row = row[: row.index("</tr>")]
        for shown in (
            "awaiting approval",
            "Gap number 2 needs kotlin and swift apps",
            "mobile_team_2",
            "$15.90",
            "r-high",
            "cost-ceiling",
            "above the ceiling of $5.00",
            "alice",
        ):
            assert shown in html.unescape(row), shown
        assert table_ids(client.get("/?state=rejected").text) == [made[0]["id"]]
        assert table_ids(client.get("/?team=mobile_team_2").text) == [made[1]["id"]]
        both = client.get("/?state=rejected&state=awaiting_approval").text
        assert table_ids(both) == [m["id"] for m in reversed(made)]
        assert 'value="rejected" checked' in both and 'value="awaiting_approval" checked' in both
        assert table_ids(client.get("/?state=awaiting_approval&team=mobile_team_1").text) == []
        assert re.search(r'value="rejected"> rejected <span class="count">1</span>', page)
        bad = client.get("/?state=bogus")
        assert bad.status_code == 422 and "unknown state: bogus" in bad.text and "Traceback" not in bad.text


def test_pages_follow_the_keyset_cursor(server: RunningServer) -> None:
    made = [submit(server, "alice", new_gap(n).model_dump(mode="json"), {"awaiting_approval"})["id"] for n in range(7)]
    seen: list[list[str]] = []
    with signed_in(server, "vic") as client:
        url: str | None = "/?limit=3"
        while url is not None:
            assert "offset" not in url and "page=" not in url
            page = client.get(url).text
            seen.append(table_ids(page))
            url = older_link(page)
            assert url is None or "cursor=" in url
        assert [len(p) for p in seen] == [3, 3, 1]
        assert [i for p in seen for i in p] == list(reversed(made))
        bad = client.get("/?cursor=not-a-cursor")
        assert bad.status_code == 422 and "not a cursor this server made" in bad.text


def _bulk_rows(template: dict[str, Any], count: int, start: datetime) -> list[dict[str, Any]]:
    """``count`` requests one second apart, in states no server start resumes; every 10th proposes a team."""
    states = ["published", "awaiting_approval", "merged", "rejected", "failed"]
    lead = next(a for a in template["spec"]["agents"] if a["is_manager"])
    tasks = [t for t in template["spec"]["tasks"] if t["agent"] == lead["role"]]
    spec = {**template["spec"], "agents": [lead], "tasks": tasks}
    slim = {"id": "", "gap": {"id": "", "description": "bulk gap"}, "state": "", "created_at": "", "updated_at": ""}
    rows = []
    for i in range(count):
        at = start + timedelta(seconds=i)
        rid, gid, state = f"req-bulk{i:07d}", f"gap-bulk-{i}", states[i % len(states)]
        team = f"bulk_team_{i % 3}" if i % 10 == 0 else None
        payload = {**slim, "id": rid, "gap": {"id": gid, "description": f"bulk gap {i}"}, "state": state}
        payload["created_at"] = payload["updated_at"] = at.isoformat()
        if team:
            payload["spec"] = {**spec, "name": team}
        rows.append(
            {
                "id": rid,
                "gap_id": gid,
                "state": state,
                "payload": payload,
                "created_at": at,
                "updated_at": at,
                "team": team,
            }
        )
    return rows


def test_a_deep_page_of_100000_requests_answers_quickly(tmp_path: Path) -> None:
    settings = server_settings(tmp_path / "home")
    count, start = 100_000, datetime(2025, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    seeder = Actor(id="seed", channel=Channel.cli, roles=frozenset({Role.admin}))
    with CrewService(settings) as service:
        template = service.store.get_request(service.submit(seeder, new_gap(0))["id"]).model_dump(mode="json")
        rows = _bulk_rows(template, count, start)
        with service.store.engine.begin() as conn:
            for at in range(0, count, 20_000):
                conn.execute(insert(tables.requests), rows[at : at + 20_000])
    record_timing("paging_100k_insert_seconds", time.perf_counter() - began)

    with running_server(settings) as server, signed_in(server, "vic") as client:
        client.get("/")  # warm
        began = time.perf_counter()
        first = client.get("/?limit=25")
        first_seconds = time.perf_counter() - began
        assert table_ids(first.text)[1:3] == ["req-bulk0099999", "req-bulk0099998"]  # [0] is the seeded one
        # The page after the 99,950th newest: as deep as this listing goes.
        cursor = page_cursor({"created_at": (start + timedelta(seconds=50)).isoformat(), "id": "req-bulk0000050"})
        began = time.perf_counter()
        deep = client.get(f"/?limit=25&cursor={cursor}")
        deep_seconds = time.perf_counter() - began
        assert deep.status_code == 200
        assert table_ids(deep.text) == [f"req-bulk{i:07d}" for i in range(49, 24, -1)]
        began = time.perf_counter()
        deep_failed = client.get(f"/?limit=25&state=failed&cursor={cursor}")
        deep_team = client.get(f"/?limit=25&team=bulk_team_1&cursor={cursor}")
        filtered_seconds = (time.perf_counter() - began) / 2
        assert table_ids(deep_failed.text) == [f"req-bulk{i:07d}" for i in (49, 44, 39, 34, 29, 24, 19, 14, 9, 4)]
        assert table_ids(deep_team.text) == ["req-bulk0000040", "req-bulk0000010"]
        last = client.get(older_link(deep.text) or "")
        assert table_ids(last.text) == [f"req-bulk{i:07d}" for i in range(24, -1, -1)]
        assert older_link(last.text) is None
        counts = re.search(r'value="failed"> failed <span class="count">(\d+)</span>', first.text)
        assert counts and int(counts.group(1)) == count // 5
    record_timing("paging_100k_first_page_seconds", first_seconds)
    record_timing("paging_100k_deep_page_seconds", deep_seconds)
    record_timing("paging_100k_deep_filtered_page_seconds", filtered_seconds)
    assert deep_seconds < 1.0 and filtered_seconds < 1.0, (first_seconds, deep_seconds, filtered_seconds)


# -- one request and its decisions ------------------------------------------------------------------------
def test_the_requester_sees_why_she_may_not_approve_and_another_approver_can(server: RunningServer) -> None:
    waiting = submit(server, "carol", new_gap(1).model_dump(mode="json"), {"awaiting_approval"})
    rid = waiting["id"]
    with signed_in(server, "carol") as carol:  # carol holds the approver role, but requested it
        page = carol.get(f"/requests/{rid}").text
        form = page[page.index('id="approve"') : page.index("</form>", page.index('id="approve"'))]
        assert "<fieldset disabled>" in form
        assert f"web:carol requested {rid} and may not approve it: another approver must (four eyes)" in form
        assert "$15.90 per month; the ceiling is $5.00." in form
        assert "Preview: nothing has been pushed yet" in page
        # every file the render made (the generated team's own count: 19 since teams serve A2A), each shown as added
        rendered = len(server.runtime.service.review(_reviewer(), rid)["files"]["items"])
        assert rendered >= 17
        assert page.count('<details class="file"') == rendered
        assert page.count('<span class="status st-added">added</span>') >= rendered
        assert '<span class="kn">from</span>' in page  # crew.py, coloured by Pygments
        assert "teams/mobile_team_1/crew.py" in page and "k8s/teams/mobile_team_1/deployment.yaml" in page
        kind, text = act(carol, rid, "approve", reason="mine")
        assert (
            kind == "error"
            and text == f"web:carol requested {rid} and may not approve it: another approver must (four eyes)"
        )
    assert state_of(server, rid) == "awaiting_approval"
    with signed_in(server, "bob") as bob:
        page = bob.get(f"/requests/{rid}").text
        form = page[page.index('id="approve"') : page.index("</form>", page.index('id="approve"'))]
        assert "disabled" not in form and "Approve $15.90/month" in form
        kind, text = act(bob, rid, "approve", reason="worth it")
        assert (kind, text) == ("ok", f"Approved {rid}: it is now published, pull request #1.")
        page = bob.get(f"/requests/{rid}").text
        assert '<span class="state s-published">published</span>' in page
        assert "<b>Pushed commit.</b>" in page and "read with git from the target checkout" in page
        assert 'id="approve"' not in page and 'id="merge"' in page
        assert "cost by Bob" in page and "“worth it”" in page
        assert 'id="audit"' in page and "<code>policy.human_approval</code>" in page  # the approver sees it
    with signed_in(server, "oscar") as oscar:
        audit = oscar.get(f"/requests/{rid}").text
        audit = audit[audit.index('id="audit"') :]
        for action in ("policy.needs_approval", "policy.human_approval", "git.push", "forge.open_pull_request"):
            assert f"<code>{action}</code>" in audit, action
        assert "bob (web)" in audit


def test_a_triage_request_asks_to_confirm_a_new_team_not_to_approve_a_cost(server: RunningServer) -> None:
    """A gap the matcher could not decide (rule possible-reuse) waits for a human's triage: its form says
    what approving means (a new team; no existing team covers it) and how to reuse one instead, and
    says nothing of a cost ceiling it is not waiting on."""
    gap = {"description": "SQL injection pentesting of the customer portal", "required_skills": ["sql"]}
    waiting = submit(server, "alice", gap, {"awaiting_approval"})
    assert waiting["decision"]["rule"] == "possible-reuse"
    with signed_in(server, "bob") as bob:
        page = bob.get(f"/requests/{waiting['id']}").text
        form = page[page.index('id="approve"') : page.index("</form>", page.index('id="approve"'))]
        assert "<legend>Confirm a new team</legend>" in form and "data_engineering" in form
        assert f"devops-crew reject {waiting['id']} --use-team TEAM" in form
        assert "Approve the cost" not in form and "the ceiling is" not in form
        assert ">Confirm a new team</button>" in form


def test_viewers_see_but_cannot_decide_and_reasons_are_required(server: RunningServer) -> None:
    rid = submit(server, "alice", new_gap(1).model_dump(mode="json"), {"awaiting_approval"})["id"]
    with signed_in(server, "vic") as vic:
        page = vic.get(f"/requests/{rid}").text
        assert "web:vic may not approve: it needs the approver role" in page
        assert act(vic, rid, "approve") == ("error", "web:vic may not approve: it needs the approver role")
        assert act(vic, rid, "reject", reason="no") == ("error", "web:vic may not reject: it needs the approver role")
        assert act(vic, rid, "reject") == ("error", "web:vic may not reject: it needs the approver role")  # who first
    with signed_in(server, "bob") as bob:
        assert act(bob, rid, "reject") == (
            "error",
            "a rejection needs a reason: say why, for the requester and the audit trail",
        )
        assert act(bob, rid, "override") == ("error", "an override needs a reason")
        kind, text = act(bob, rid, "override", reason="launch day")
        assert kind == "error" and text.endswith("an override only lifts the rate limit and cooldown")
        assert act(bob, rid, "approve", reason="x" * 2001) == ("error", "reason: at most 2000 characters")
        assert state_of(server, rid) == "awaiting_approval"
        assert act(bob, rid, "reject", reason="duplicate of the mobile effort") == (
            "ok",
            f"Rejected {rid}: it is now rejected.",
        )
        assert act(bob, rid, "approve")[0] == "error"  # nothing is open any more
        page = bob.get(f"/requests/{rid}").text
        assert "No decision is open on this request: it is rejected." in page
        token = csrf(page)
        unknown = bob.post(f"/requests/{rid}/delete", data={"csrftoken": token})
        assert unknown.status_code == 422 and "unknown action" in unknown.text
        missing = bob.get("/requests/req-doesnotexist")
        assert missing.status_code == 404 and "no request &#39;req-doesnotexist&#39;" in missing.text
        assert "<title>Not found · devops-crew</title>" in missing.text  # words, not the exception's class
        assert "Traceback" not in missing.text


def test_an_override_lifts_the_rate_limit_with_a_reason(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", rate_limit_per_day=1)) as server:
        submit(server, "alice", new_gap(1).model_dump(mode="json"), {"published"})
        limited = submit(server, "alice", new_gap(2).model_dump(mode="json"), {"refused"})
        assert limited["decision"]["rule"] == "rate-limit"
        with signed_in(server, "bob") as bob:
            page = bob.get(f"/requests/{limited['id']}").text
            assert 'id="override"' in page and 'id="approve"' not in page
            kind, text = act(bob, limited["id"], "override", reason="the launch cannot wait")
            assert (kind, text) == ("ok", f"Override given for {limited['id']}: it is now published, pull request #2.")


def test_gaps_can_be_submitted_from_the_form(server: RunningServer) -> None:
    with signed_in(server, "alice") as alice:
        page = alice.get("/new").text
        answer = alice.post("/new", data={"csrftoken": csrf(page), "description": "   "})
        assert answer.status_code == 422 and "description" in answer.text
        fields = {
            "csrftoken": csrf(page),
            "description": "Release notes need translating into five languages",
            "required_skills": "translation, localization",
            "urgency": "high",
            "requesting_team": "docs",
        }
        answer = alice.post("/new", data=fields)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/requests/req-")
        rid = answer.headers["location"].rsplit("/", 1)[1]
        assert flashes(alice.get(answer.headers["location"]).text)[0][1].startswith(f"Request {rid} received")
    with server.client() as client:
        view = wait_for_state(client, rid, {"awaiting_approval"})
        assert view["requester"] == {"id": "alice", "channel": "web", "display_name": "Alice"}
    with signed_in(server, "bob") as bob:
        page = bob.get("/new")
        assert 'href="/new"' not in page.text  # bob is no requester: no link to the form
        answer = bob.post("/new", data={"csrftoken": csrf(page.text), "description": "needs rust apps"})
        assert answer.status_code == 403 and "web:bob may not submit: it needs the requester role" in answer.text


def _move_branch(server: RunningServer, branch: str) -> None:
    """Play a person pushing one more commit on the crew's branch in the fake forge's bare repository."""
    forge = server.runtime.service.app.forge
    head = forge.git("rev-parse", f"refs/heads/{branch}")
    tree = forge.git("rev-parse", f"{head}^{{tree}}")
    moved = forge.git("commit-tree", tree, "-p", head, "-m", "a human's change")
    forge.git("update-ref", f"refs/heads/{branch}", moved, head)


def test_merge_on_the_embedded_forge_needs_four_eyes_and_the_crews_commit(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home")) as server:
        mine = submit(server, "carol", new_gap(1).model_dump(mode="json"), {"published"})
        moved = submit(server, "alice", new_gap(2).model_dump(mode="json"), {"published"})
        _move_branch(server, moved["branch"])
        with signed_in(server, "carol") as carol:
            page = carol.get(f"/requests/{mine['id']}").text
            assert 'id="merge"' in page and "may not approve it: another approver must (four eyes)" in page
            assert act(carol, mine["id"], "merge")[1].endswith("another approver must (four eyes)")
        with signed_in(server, "bob") as bob:
            page = bob.get(f"/requests/{moved['id']}").text
            assert "the pull request&#39;s branch moved to" in page
            kind, text = act(bob, moved["id"], "merge")
            assert kind == "error" and "branch moved to" in text and "review and merge it on the forge" in text
            assert act(bob, mine["id"], "merge") == ("ok", f"Merged {mine['id']}: it is now merged, pull request #1.")
        assert state_of(server, mine["id"]) == "merged" and state_of(server, moved["id"]) == "published"
        assert server.runtime.service.app.forge.pulls[1].merged


# -- looks and loads ------------------------------------------------------------------------------------
def test_pages_load_nothing_from_elsewhere_and_send_security_headers(server: RunningServer) -> None:
    rid = submit(server, "alice", new_gap(1).model_dump(mode="json"), {"awaiting_approval"})["id"]
    with signed_in(server, "bob") as client:
        for answer in (client.get("/"), client.get(f"/requests/{rid}"), server.client().get("/login")):
            assert answer.headers["content-security-policy"].startswith("default-src 'none'")
            assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
            assert set(re.findall(r'<link rel="stylesheet" href="([^"]+)">', answer.text)) == {
                "/static/dashboard.css",
                "/static/code.css",
            }
            assert_inert(answer.text)
    for sheet in STATIC_DIR.glob("*.css"):
        assert not re.search(r"@import|url\(", sheet.read_text()), sheet
    assert render.stylesheet() in (STATIC_DIR / "code.css").read_text()  # regenerate it if Pygments changed


def test_templates_and_styles_ship_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {"devops_automation.server", "devops_automation.server.dashboard"} <= set(config["packages"])
    patterns = config["package-data"]["devops_automation.server.dashboard"]
    here = TEMPLATES_DIR.parent
    shipped = [p for p in here.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"]
    assert len(shipped) >= 8
    for path in shipped:
        rel = path.relative_to(here).as_posix()
        assert any(fnmatch(rel, pattern) for pattern in patterns), f"{rel} would not ship"


# -- in a real browser ------------------------------------------------------------------------------------
def test_a_requester_and_an_approver_in_chromium(tmp_path: Path) -> None:
    """carol (approver, but the requester) submits a gap that costs more than the ceiling, sees its preview
    and may not approve it; bob approves it and watches it become a pull request on the embedded forge."""
    sync_api = pytest.importorskip("playwright.sync_api")
    began = time.perf_counter()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    settings = server_settings(tmp_path / "home", monthly_cost_ceiling_usd=5, forge="local", forge_port=0)
    dialogs: list[str] = []
    elsewhere: list[str] = []
    shots: list[Path] = []
    with running_server(settings) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: None if r.url.startswith(server.url) else elsewhere.append(r.url))
            expect = sync_api.expect

            def sign_in(name: str) -> None:
                page.fill("input[name=username]", name)
                page.fill("input[name=password]", PASSWORD)
                page.click("#login button[type=submit]")

            page.goto(server.url + "/")
            expect(page).to_have_url(re.compile(r"/login$"))
            sign_in("carol")
            page.click("text=New request")
            page.fill("textarea[name=description]", HOSTILE)
            page.fill("input[name=required_skills]", "kotlin, swift")
            page.fill("input[name=requesting_team]", "web_frontend")
            page.click("#new-gap button[type=submit]")
            expect(page.locator(".title-row .state")).to_have_text("awaiting approval", timeout=30_000)
            rid = page.locator(".title-row h1").inner_text()
            expect(page.locator("#files .source")).to_contain_text("Preview: nothing has been pushed yet")
            assert page.locator("details.file").count() >= 15
            assert page.locator("details.file .code span.kn").count() > 0  # Python, coloured
            expect(page.locator("#approve button")).to_be_disabled()
            expect(page.locator("#approve .why")).to_contain_text(
                f"web:carol requested {rid} and may not approve it: another approver must (four eyes)"
            )
            expect(page.locator("pre.gap-text").first).to_contain_text('<script>alert("gap")</script>')
            shots.append(SCREENSHOTS / "request-waiting-four-eyes.png")
            page.screenshot(path=str(shots[-1]))
            # The button is disabled; the service refuses the POST all the same.
            page.evaluate("document.querySelector('#approve fieldset').disabled = false")
            page.click("#approve button")
            expect(page.locator(".flash.error")).to_contain_text("another approver must (four eyes)")
            expect(page.locator(".title-row .state")).to_have_text("awaiting approval")

            page.click("header .who button")  # sign out
            expect(page.locator(".flash.ok")).to_have_text("Signed out.")
            sign_in("bob")
            waiting_row = page.locator("#waiting tbody tr", has_text=rid)
            expect(waiting_row).to_contain_text("cost-ceiling")
            shots.append(SCREENSHOTS / "list.png")
            page.screenshot(path=str(shots[-1]))
            waiting_row.locator(f"a[href='/requests/{rid}']").click()
            expect(page.locator("#approve button")).to_be_enabled()
            expect(page.locator("#approve .cost")).to_have_text("$15.90 per month; the ceiling is $5.00.")
            page.fill("#approve textarea[name=reason]", "worth it for the mobile launch")
            page.click("#approve button")
            expect(page.locator(".flash.ok")).to_have_text(f"Approved {rid}: it is now published, pull request #1.")
            expect(page.locator(".title-row .state")).to_have_text("published")
            link = page.locator(".title-row a.pr")
            expect(link).to_have_text("#1")
            assert re.match(r"http://127\.0\.0\.1:\d+/local/teams/pull/1$", link.get_attribute("href") or "")
            expect(page.locator("#files .source")).to_contain_text("Pushed commit.")
            shots.append(SCREENSHOTS / "request-published.png")
            page.screenshot(path=str(shots[-1]))
            shots.append(SCREENSHOTS / "request-published-full.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
        finally:
            browser.close()
    assert dialogs == [], f"hostile text ran as script: {dialogs}"
    assert elsewhere == [], f"the pages loaded something from elsewhere: {elsewhere}"
    for shot in shots:
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
    record_timing("browser_walkthrough_seconds", time.perf_counter() - began)


def test_the_screenshot_directory_is_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(SCREENSHOTS / "list.png")], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0


# -- the notification feed ------------------------------------------------------------------------------
def test_the_feed_shows_each_event_escaped_with_its_channels(server: RunningServer) -> None:
    gap = {"description": HOSTILE, "required_skills": ["fortran"], "proposed_name": "feed_team"}
    waiting = submit(server, "alice", gap, {"awaiting_approval", "published"})
    with signed_in(server, "vic") as client:  # a viewer reads the feed
        page = client.get("/notifications").text
    assert_inert(page)
    assert f'href="/requests/{waiting["id"]}"' in page
    assert "Waiting for a human decision" in page and "dashboard</span>" in page
    with server.client() as anonymous:
        assert anonymous.get("/notifications").status_code in (302, 303, 401)
