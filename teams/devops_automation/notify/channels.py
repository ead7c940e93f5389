"""The channels a notification goes out on. Each is optional and configured by settings; each raises
:class:`ChannelError` for a failed send (the dispatcher retries it with backoff)."""

from __future__ import annotations

import html
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

import httpx

from ..pr_text import review_checklist
from ..settings import Settings
from .outbox import Delivery

_MARKDOWN = re.compile(r"([\\`*_~|>#\[\]()<!:-])")


class ChannelError(Exception):
    """A send failed. ``retry_after``: seconds the channel asked us to wait (None: use the backoff);
    ``permanent``: retrying cannot help (the webhook is gone, the address is refused)."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class NotificationChannel(Protocol):
    name: str

    def send(self, delivery: Delivery) -> str | None:
        """Send one event; returns a warning worth recording (or None). Raises ChannelError."""


def escape_markdown(text: str) -> str:
    """Untrusted text made inert for Discord's Markdown (no links, mentions, headings or formatting)."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
    return escaped.replace("@", "@\u200b")  # as discord.utils.escape_mentions: @everyone cannot ping


def _lines(payload: dict[str, Any]) -> list[tuple[str, str]]:
    cost = payload.get("monthly_cost_usd")
    rows = [
        ("Request", payload["request_id"]),
        ("Team", payload.get("team") or "-"),
        ("State", payload.get("state") or "-"),
        ("Cost", "-" if cost is None else f"${cost:,.2f}/month"),
        ("Risk", payload.get("risk_level") or "-"),
    ]
    if payload.get("pr_url"):
        rows.append(("Pull request", f"#{payload.get('pr_number')} {payload['pr_url']}"))
    if payload.get("reason"):
        rows.append(("Why", payload["reason"]))
    return rows


class DiscordWebhook:
    """A Discord channel webhook (``POST {url}?wait=true`` with one embed; no mentions are ever
    parsed). Discord's documented 429 answer carries ``retry_after`` seconds; it is honoured."""

    name = "discord"
    COLOURS = {"pr_opened": 0x2B7BB9, "awaiting_human": 0xE3A008, "pr_merged": 0x2DA44E, "request_failed": 0xCF222E}

    def __init__(self, url: str, *, timeout: float = 10.0, dashboard_url: str | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.dashboard_url = dashboard_url

    def embed(self, delivery: Delivery) -> dict[str, Any]:
        """The embed for one event (Discord's embed object; text escaped)."""
        p = delivery.payload
        fields = [
            {"name": k, "value": escape_markdown(v)[:1000], "inline": k in {"Team", "State", "Cost", "Risk"}}
            for k, v in _lines(p)
        ]
        embed: dict[str, Any] = {
            "title": f"{p['title']}: {p.get('team') or p['request_id']}"[:256],
            "description": escape_markdown(p.get("gap") or "")[:2000],
            "color": self.COLOURS.get(delivery.kind, 0x6E7781),
            "fields": fields,
            "footer": {"text": f"devops-crew · {delivery.notification_id}"},
        }
        if p.get("pr_url"):
            embed["url"] = p["pr_url"]
        return embed

    def send(self, delivery: Delivery) -> str | None:
        body = {"embeds": [self.embed(delivery)], "allowed_mentions": {"parse": []}}
        try:
            response = httpx.post(self.url, params={"wait": "true"}, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ChannelError(f"Discord webhook unreachable: {type(exc).__name__}") from None
        if response.status_code == 429:
            retry = _retry_after(response)
            raise ChannelError("Discord rate-limited the webhook", retry_after=retry)
        if response.status_code >= 400:
            permanent = response.status_code in (400, 401, 403, 404)
            raise ChannelError(f"Discord answered HTTP {response.status_code}", permanent=permanent)
        return None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.json().get("retry_after"))
    except (ValueError, TypeError, AttributeError):
        pass
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class Email:
    """Mail over SMTP with the standard library's :mod:`smtplib` (STARTTLS and login when configured):
    a plain-text part and an HTML alternative, with the PR link and the review checklist. The
    ``Message-ID`` is the event's, so a receiving system can see a repeat."""

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.username, self.password, self.starttls, self.timeout = username, password, starttls, timeout

    def message(self, delivery: Delivery) -> EmailMessage:
        """The mail for one event."""
        p = delivery.payload
        msg = EmailMessage()
        subject = f"[devops-crew] {p['title']}: {p.get('team') or p['request_id']}"
        msg["Subject"] = " ".join(subject.split())[:200]
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{delivery.notification_id}.{delivery.channel}@devops-crew>"
        checklist = review_checklist(p.get("team") or "<team>") if delivery.kind == "pr_opened" else []
        text = [p["title"], "", *(f"{k}: {v}" for k, v in _lines(p)), "", "Gap:", p.get("gap") or ""]
        if checklist:
            text += ["", "Review checklist:", *(f"[ ] {item}" for item in checklist)]
        msg.set_content("\n".join(text) + "\n")
        e = html.escape
        rows = "".join(f"<tr><th align=left>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in _lines(p))
        link = (
            f'<p><a href="{e(p["pr_url"])}">Open pull request #{e(str(p["pr_number"]))}</a></p>'
            if p.get("pr_url")
            else ""
        )
        items = "".join(f"<li>&#9744; {e(item)}</li>" for item in checklist)
        review = f"<h3>Review checklist</h3><ul>{items}</ul>" if items else ""
        msg.add_alternative(
            f"<html><body><h2>{e(p['title'])}</h2><table>{rows}</table>{link}"
            f"<p>{e(p.get('gap') or '')}</p>{review}</body></html>",
            subtype="html",
        )
        return msg

    def send(self, delivery: Delivery) -> str | None:
        msg = self.message(delivery)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(f"every recipient refused: {sorted(exc.recipients)}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}"[:300]) from None
        # Some recipients took it: sending again would repeat it to them, so it counts as sent.
        return f"refused recipients: {sorted(refused)}" if refused else None


def configured_channels(settings: Settings) -> dict[str, NotificationChannel]:
    """The channels ``settings`` turn on, by name (the dashboard's feed is the outbox itself and always on)."""
    channels: dict[str, NotificationChannel] = {}
    timeout = settings.notify_timeout_seconds
    if settings.notify_discord_webhook is not None:
        channels["discord"] = DiscordWebhook(settings.notify_discord_webhook.get_secret_value(), timeout=timeout)
    if settings.smtp_host and settings.email_recipients():
        channels["email"] = Email(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.notify_email_from,
            recipients=settings.email_recipients(),
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            timeout=timeout,
        )
    return channels
