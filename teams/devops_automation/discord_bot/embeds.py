"""A request's SUMMARY (:func:`devops_automation.report.request_summary`) as a Discord embed.

Every string that may carry untrusted text (a gap's words reach decisions and errors; display names
are chosen by users) is cut to Discord's limits (title 256, description 4,096, field value 1,024
characters) and has its Markdown and mentions escaped; messages are also sent with
``AllowedMentions.none()`` (:data:`NO_MENTIONS`), so nothing a user typed can ping anyone.
"""

from __future__ import annotations

from typing import Any

import discord

from ..report import with_relative_times

View = dict[str, Any]
NO_MENTIONS = discord.AllowedMentions.none()
#: States a human can still decide on: their messages keep the Approve / Reject buttons.
DECIDABLE = frozenset({"received", "analysed", "drafted", "awaiting_approval", "refused", "failed"})
_COLOURS = {
    "published": discord.Colour.green(),
    "merged": discord.Colour.dark_green(),
    "reuse_existing": discord.Colour.blue(),
    "awaiting_approval": discord.Colour.gold(),
    "refused": discord.Colour.orange(),
    "failed": discord.Colour.red(),
    "rejected": discord.Colour.dark_grey(),
}
MAX_FIELD, MAX_TITLE, MAX_DESCRIPTION = 1024, 256, 4096


def safe(text: object, limit: int = MAX_FIELD) -> str:
    """``text`` with Markdown and mentions escaped, on one line per original line, cut to ``limit``."""
    cleaned = discord.utils.escape_mentions(discord.utils.escape_markdown(str(text)))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _pr_link(summary: View) -> str:
    pr = summary.get("pull_request") or {}
    url = str(pr.get("url") or "")
    if not pr:
        return "—"
    if url.startswith(("https://", "http://")) and not any(c in url for c in " ()<>[]"):
        return f"[#{pr.get('number')}]({url})"
    return f"#{pr.get('number')}"


def _cost(summary: View) -> str:
    cost = summary.get("monthly_cost_usd")
    return "—" if cost is None else f"${cost:,.2f} / month"


def request_embed(summary: View, *, note: str = "") -> discord.Embed:
    """The embed of one request: title ``<id>: <state>``; fields team, state, cost, risk, pull request,
    requester; the policy decision or the error when there is one; ``note`` (our own text) on top."""
    state = str(summary["state"])
    decision = summary.get("decision") or {}
    embed = discord.Embed(
        title=f"{safe(summary['id'], 60)}: {state}",  # the state is one of ours: shown as it is
        colour=_COLOURS.get(state, discord.Colour.light_grey()),
        description=note[:MAX_DESCRIPTION] or None,
    )
    team = summary.get("team") or summary.get("matched_team")
    embed.add_field(name="Team", value=safe(team or "—"))
    embed.add_field(name="State", value=state)
    embed.add_field(name="Cost", value=_cost(summary))
    embed.add_field(name="Risk", value=str(decision.get("risk_level") or "—"))
    embed.add_field(name="Pull request", value=_pr_link(summary))
    requester = summary.get("requester") or {}
    if requester:
        embed.add_field(name="Requested by", value=safe(requester.get("display_name") or requester.get("id")))
    if decision and state in {"awaiting_approval", "refused"}:
        text = f"{decision.get('rule')}: {decision.get('message')}"
        if decision.get("remedy"):
            text += "\n" + with_relative_times(str(decision["remedy"]))
        embed.add_field(name="Decision", value=safe(text), inline=False)
    if summary.get("error"):
        embed.add_field(name="Error", value=safe(summary["error"]), inline=False)
    approvals = summary.get("approvals") or []
    if approvals:
        lines = [
            f"{a['kind']} by {a['by'].get('display_name') or a['by'].get('id')}"
            + (f": {a['reason']}" if a.get("reason") else "")
            for a in approvals
        ]
        embed.add_field(name="Approvals", value=safe("\n".join(lines)), inline=False)
    return embed


def list_embed(summaries: list[View], *, title: str, empty: str) -> discord.Embed:
    """Up to 25 requests, one field each: ``<id>: <state>`` over team, cost and pull request."""
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    if not summaries:
        embed.description = empty
    for summary in summaries[:25]:
        team = summary.get("team") or summary.get("matched_team") or "—"
        embed.add_field(
            name=f"{safe(summary['id'], 60)}: {summary['state']}",
            value=f"team {safe(team, 200)} · {_cost(summary)} · PR {_pr_link(summary)}",
            inline=False,
        )
    return embed


def notice_embed(title: str, text: str = "", *, url: str | None = None, summary: View | None = None) -> discord.Embed:
    """A notification: ``title`` and ``text`` (escaped), an optional link, and the request's fields when
    ``summary`` is given."""
    embed = request_embed(summary) if summary is not None else discord.Embed(colour=discord.Colour.blurple())
    embed.title = safe(title, MAX_TITLE)
    embed.description = safe(text, MAX_DESCRIPTION) if text else None
    if url and url.startswith(("https://", "http://")):
        embed.url = url
    return embed
