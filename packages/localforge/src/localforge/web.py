"""The forge's human pages: ``/{owner}/{repo}/pull/{number}``, the address every ``html_url`` of a pull
request points at, and its ``.diff``/``.patch`` (``diff_url``/``patch_url``).

The page is what a reviewer needs, rendered from the same payloads the REST API returns: the description as
Markdown (markdown-it-py in CommonMark mode with raw HTML off, so a body's ``<script>`` arrives as text and
``javascript:`` links are not made), every file's diff, the checks with the required ones marked, the
reviews, and links the host application gives (``ForgeApp.page_links``, e.g. the dashboard's request page).
Everything that comes from a pull request is escaped; :data:`PAGE_HEADERS` forbid scripts and any load
from elsewhere.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from markdown_it import MarkdownIt

from . import rules
from .routing import ApiRequest, Urls
from .state import ForgeState

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>#{number} {title}</title>
<style>body{{font:14px/1.5 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}}
pre{{white-space:pre-wrap;background:#f6f8fa;padding:1rem;border-radius:6px;overflow-x:auto}}
.state{{display:inline-block;padding:0 .6rem;border-radius:1rem;background:#ddd}}
.diff{{font:12px/1.4 ui-monospace,monospace;white-space:pre;padding:.5rem}}
.add{{background:#e6ffec}}.del{{background:#ffebe9}}.hunk{{color:#6e7781}}
.markdown{{border:1px solid #d0d7de;border-radius:6px;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #d0d7de;padding:.2rem .6rem;text-align:left}}</style>
</head><body><h1>{title} <small>#{number}</small></h1>
<p><span class="state">{state}</span> {head} &rarr; {base} &middot; opened by {user}
 &middot; <a href="{diff_url}">diff</a> &middot; <a href="{patch_url}">patch</a></p>
<p>Labels: {labels} &middot; Requested reviewers: {reviewers}</p>
{links}<h2>Description</h2><div class="markdown">{body}</div>
<h2>Checks</h2>{checks}
<h2>Reviews</h2>{reviews}
<h2>Files ({file_count})</h2>{files}
<p><small>Served by the devops-crew local forge; the API is under <code>/api/v3</code>.</small></p>
</body></html>
"""

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    """``text`` as HTML with raw HTML escaped and unsafe link schemes refused (markdown-it's defaults)."""
    return _markdown.render(text)


def _diff_html(patch: str | None) -> str:
    if patch is None:
        return "<p><em>Binary file not shown.</em></p>"
    lines = []
    for line in patch.splitlines():
        css = "hunk" if line.startswith("@@") else "add" if line[:1] == "+" else "del" if line[:1] == "-" else ""
        lines.append(f'<span class="{css}">{html.escape(line)}</span>' if css else html.escape(line))
    return f'<pre class="diff">{chr(10).join(lines)}</pre>'


def _checks_html(api: Any, repo: Any, pr: dict[str, Any]) -> str:
    sha = pr["head"]["sha"]
    protection = api.ci.protection(repo.id, pr["base"]["ref"])
    required = {c.lower() for c in protection.required_contexts} if protection else set()
    outcomes = rules.check_outcomes(api.ci.statuses(repo.id, sha), api.ci.check_runs(repo.id, sha))
    names = {s.context.lower(): s.context for s in api.ci.statuses(repo.id, sha)}
    names.update({r.name.lower(): r.name for r in api.ci.check_runs(repo.id, sha)})
    names.update({c.lower(): c for c in (protection.required_contexts if protection else ())})
    if not names:
        return "<p>No checks have reported on this head yet.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(names[key])}</td><td>{outcomes.get(key, 'expected')}</td>"
        f"<td>{'required' if key in required else ''}</td></tr>"
        for key in sorted(names)
    )
    return f"<table><tr><th>Check</th><th>Outcome</th><th></th></tr>{rows}</table>"


def _reviews_html(reviews: list[dict[str, Any]]) -> str:
    shown = [r for r in reviews if r["state"] != "PENDING"]
    if not shown:
        return "<p>No reviews yet.</p>"
    items = "".join(
        f"<li><strong>{html.escape(r['user']['login'])}</strong>: {html.escape(r['state'].replace('_', ' ').lower())}"
        + (f'<div class="markdown">{render_markdown(r["body"])}</div>' if r.get("body") else "")
        + "</li>"
        for r in shown
    )
    return f"<ul>{items}</ul>"


def _request(viewer: Any, urls: Urls, path: str, params: dict[str, str], query: dict[str, list[str]]) -> Any:
    return ApiRequest("GET", path, params, query, None, viewer, urls)


def pull_page(
    api: Any,
    state: ForgeState,
    owner: str,
    repo: str,
    number: str,
    urls: Urls,
    page_links: Callable[[str, str], list[tuple[str, str]]] | None = None,
) -> bytes | None:
    """The page for one pull request, or None when there is no such repository or pull request.
    ``page_links(body, head_ref)`` may add ``(text, url)`` links (only http(s) URLs are shown)."""
    viewer = state.user_by_login(owner)
    if viewer is None or not number.isdigit():
        return None
    params = {"owner": owner, "repo": repo, "pull_number": number}
    path = f"/repos/{owner}/{repo}/pulls/{number}"
    many = {"per_page": ["100"]}
    try:
        pr = api.get_pull(_request(viewer, urls, path, params, {})).body
        files = api.list_pull_files(_request(viewer, urls, f"{path}/files", params, many)).body
        reviews = api.list_reviews(_request(viewer, urls, f"{path}/reviews", params, many)).body
    except Exception:  # the API's own 404 (unknown repo or number)
        return None
    repo_row = state.repo_by_name(owner, repo)
    state_text = "merged" if pr.get("merged") else pr["state"]
    reviewers = [u["login"] for u in pr.get("requested_reviewers") or []] + [
        f"{owner}/{t['slug']}" for t in pr.get("requested_teams") or []
    ]
    links = [(t, u) for t, u in (page_links(pr.get("body") or "", pr["head"]["ref"]) if page_links else [])]
    links_html = "".join(
        f'<p><a href="{html.escape(u)}">{html.escape(t)}</a></p>'
        for t, u in links
        if u.startswith(("http://", "https://"))
    )
    files_html = "".join(
        f"<h3><code>{html.escape(f['filename'])}</code> ({f['status']}, +{f['additions']} &minus;{f['deletions']})</h3>"
        + _diff_html(f.get("patch"))
        for f in files
    )
    text = PAGE.format(
        number=pr["number"],
        title=html.escape(pr["title"]),
        state=html.escape(state_text + (" (draft)" if pr.get("draft") else "")),
        head=html.escape(pr["head"]["ref"]),
        base=html.escape(pr["base"]["ref"]),
        user=html.escape(pr["user"]["login"]),
        diff_url=html.escape(pr["diff_url"]),
        patch_url=html.escape(pr["patch_url"]),
        labels=html.escape(", ".join(label["name"] for label in pr.get("labels") or []) or "none"),
        reviewers=html.escape(", ".join(reviewers) or "none"),
        links=links_html,
        body=render_markdown(pr.get("body") or "") or "<p><em>No description.</em></p>",
        checks=_checks_html(api, repo_row, pr),
        reviews=_reviews_html(reviews),
        file_count=len(files),
        files=files_html,
    )
    return text.encode()


def pull_text(api: Any, state: ForgeState, owner: str, repo: str, number: str, kind: str, urls: Urls) -> bytes | None:
    """A pull request's ``.diff`` or ``.patch`` (its ``diff_url``/``patch_url``), or None if there is none."""
    viewer = state.user_by_login(owner)
    if viewer is None or not number.isdigit():
        return None
    params = {"owner": owner, "repo": repo, "pull_number": number}
    accept = {"accept": f"application/vnd.github.{kind}"}
    request = ApiRequest("GET", f"/repos/{owner}/{repo}/pulls/{number}", params, {}, None, viewer, urls, accept)
    try:
        return api.get_pull(request).raw
    except Exception:  # the API's own 404
        return None
