"""The forge's one human page: ``/{owner}/{repo}/pull/{number}``, the address every ``html_url`` of a
pull request points at, rendered as plain HTML from the same payloads the REST API returns."""

from __future__ import annotations

import html
from typing import Any

from .routing import ApiRequest, Urls
from .state import ForgeState

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>#{number} {title}</title>
<style>body{{font:14px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
pre{{white-space:pre-wrap;background:#f6f8fa;padding:1rem;border-radius:6px}}
.state{{display:inline-block;padding:0 .6rem;border-radius:1rem;background:#ddd}}</style></head>
<body><h1>{title} <small>#{number}</small></h1>
<p><span class="state">{state}</span> {head} &rarr; {base} &middot; opened by {user}</p>
<p>Labels: {labels} &middot; Reviewers: {reviewers}</p>
<h2>Description</h2><pre>{body}</pre>
<h2>Files ({file_count})</h2><ul>{files}</ul>
<p><small>Served by the devops-crew local forge; the API is under <code>/api/v3</code>.</small></p>
</body></html>
"""


def pull_page(api: Any, state: ForgeState, owner: str, repo: str, number: str, urls: Urls) -> bytes | None:
    """The page for one pull request, or None when there is no such repository or pull request."""
    viewer = state.user_by_login(owner)
    if viewer is None or not number.isdigit():
        return None
    params = {"owner": owner, "repo": repo, "pull_number": number}
    path = f"/repos/{owner}/{repo}/pulls/{number}"
    try:
        pr = api.get_pull(ApiRequest("GET", path, params, {}, None, viewer, urls)).body
        files = api.list_pull_files(
            ApiRequest("GET", f"{path}/files", params, {"per_page": ["100"]}, None, viewer, urls)
        ).body
    except Exception:  # the API's own 404 (unknown repo or number)
        return None
    state_text = "merged" if pr.get("merged") else pr["state"]
    reviewers = [u["login"] for u in pr.get("requested_reviewers") or []] + [
        f"{owner}/{t['slug']}" for t in pr.get("requested_teams") or []
    ]
    text = PAGE.format(
        number=pr["number"],
        title=html.escape(pr["title"]),
        state=html.escape(state_text + (" (draft)" if pr.get("draft") else "")),
        head=html.escape(pr["head"]["ref"]),
        base=html.escape(pr["base"]["ref"]),
        user=html.escape(pr["user"]["login"]),
        labels=html.escape(", ".join(label["name"] for label in pr.get("labels") or []) or "none"),
        reviewers=html.escape(", ".join(reviewers) or "none"),
        body=html.escape(pr.get("body") or ""),
        file_count=len(files),
        files="".join(f"<li><code>{html.escape(f['filename'])}</code> ({f['status']})</li>" for f in files),
    )
    return text.encode()
