"""A notification and its rendered texts in, a Slack message within Slack's documented limits out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from alertd.models import Alert
from alertd.notifiers.base import Notification

# Slack's documented limits (Block Kit reference, "Message payloads").
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 3000
MAX_FALLBACK_TEXT = 3000
# A summary longer than this would push the description out of its section.
MAX_SUMMARY = 300
ELLIPSIS = "…"

RED = "#E01E5A"
ORANGE = "#ECB22E"
BLUE = "#439FE0"
GREY = "#9E9E9E"
GREEN = "#2EB67D"
SEVERITY_COLOURS = {"critical": RED, "error": RED, "warning": ORANGE, "info": BLUE}
SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}

# Annotations whose value is a URL worth a link under the alert, in this order.
LINK_ANNOTATIONS = (("runbook_url", "Runbook"), ("dashboard_url", "Dashboard"))

_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,4}$")


def colour(notification: Notification) -> str:
    """Green once everything is resolved; otherwise the colour of the most severe firing alert."""
    if notification.status == "resolved":
        return GREEN
    return SEVERITY_COLOURS.get(notification.severity, GREY)


def escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """Cut to ``limit`` characters with an ellipsis, never inside an escaped entity."""
    if len(text) <= limit:
        return text
    cut = _PARTIAL_ENTITY.sub("", text[: limit - len(ELLIPSIS)])
    return cut + ELLIPSIS


def link(url: str, label: str) -> str:
    # Inside <url|label>, a | or > in the URL would end the link early.
    safe = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{safe}|{escape(label)}>"


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit) or ELLIPSIS, "emoji": True}


def mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit) or ELLIPSIS}


def ordered(alerts: tuple[Alert, ...]) -> list[Alert]:
    """Firing before resolved, most severe first: what survives truncation is what matters most."""
    return sorted(alerts, key=lambda a: (a.resolved, SEVERITY_ORDER.get(a.severity, 4)))


def alert_blocks(alert: Alert, *, mixed: bool) -> list[dict[str, Any]]:
    """A section with the summary and description, and a context line with labels and links."""
    summary = alert.annotations.get("summary") or alert.name
    head = f"*{truncate(escape(summary), MAX_SUMMARY)}*"
    if mixed and alert.resolved:
        head += " (resolved)"
    description = alert.annotations.get("description", "")
    text = head + ("\n" + escape(description) if description else "")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": mrkdwn(text, MAX_SECTION_TEXT)}]

    elements: list[dict[str, Any]] = []
    labels = " ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(alert.labels.items()) if k != "alertname")
    if labels:
        elements.append(mrkdwn(labels, MAX_CONTEXT_TEXT))
    urls = [(alert.generator_url, "Source")]
    urls += [(alert.annotations.get(key, ""), label) for key, label in LINK_ANNOTATIONS]
    for url, label in urls:
        if url.startswith(("http://", "https://")):
            elements.append(mrkdwn(link(url, label), MAX_CONTEXT_TEXT))
    if elements:
        blocks.append({"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]})
    return blocks


def more_alerts(count: int) -> dict[str, Any]:
    noun = "alert" if count == 1 else "alerts"
    return {"type": "context", "elements": [mrkdwn(f"{ELLIPSIS} and {count} more {noun}", MAX_CONTEXT_TEXT)]}


def fallback_title(notification: Notification) -> str:
    status = notification.status.upper()
    count = f":{len(notification.firing)}" if status == "FIRING" else ""
    name = notification.common_labels.get("alertname") or (notification.alerts[0].name if notification.alerts else "")
    return f"[{status}{count}] {name}".strip()


def fallback_text(notification: Notification) -> str:
    lines = [fallback_title(notification)]
    lines += [f"- {a.annotations.get('summary') or a.name}" for a in ordered(notification.alerts)]
    return "\n".join(lines)


def build_message(
    notification: Notification,
    texts: Mapping[str, str],
    *,
    title_link: str = "",
    channel: str | None = None,
    username: str | None = None,
    icon_emoji: str | None = None,
) -> dict[str, Any]:
    """The incoming-webhook payload.

    The header (and the group's labels and link) are top-level blocks, so the top-level ``text`` is only the
    notification fallback and is not shown twice; the alerts go in one attachment, which is what carries
    the colour bar. Blocks in both count towards the 50-block limit.
    """
    title = texts.get("title", "").strip() or fallback_title(notification)
    top: list[dict[str, Any]] = [{"type": "header", "text": plain(title, MAX_HEADER_TEXT)}]
    context: list[dict[str, Any]] = []
    group = " ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(notification.group_labels.items()))
    if group:
        context.append(mrkdwn(group, MAX_CONTEXT_TEXT))
    if title_link.startswith(("http://", "https://")):
        context.append(mrkdwn(link(title_link, "Open in alertd"), MAX_CONTEXT_TEXT))
    if context:
        top.append({"type": "context", "elements": context})

    alerts = ordered(notification.alerts)
    mixed = bool(notification.firing) and bool(notification.resolved)
    per_alert = [alert_blocks(a, mixed=mixed) for a in alerts]
    omitted = notification.truncated_alerts
    budget = MAX_BLOCKS - len(top)
    body: list[dict[str, Any]] = []
    if sum(len(b) for b in per_alert) + (1 if omitted else 0) > budget:
        budget -= 1  # room for the "N more alerts" line
        kept = 0
        for blocks in per_alert:
            if len(body) + len(blocks) > budget:
                break
            body.extend(blocks)
            kept += 1
        omitted += len(per_alert) - kept
    else:
        for blocks in per_alert:
            body.extend(blocks)
    if omitted:
        body.append(more_alerts(omitted))

    # The fallback is plain text: escaped, so that an annotation cannot turn into a mention or a link.
    fallback = truncate(escape(texts.get("text", "").strip() or fallback_text(notification)), MAX_FALLBACK_TEXT)
    if not body:
        body.append({"type": "section", "text": mrkdwn(fallback, MAX_SECTION_TEXT)})
    payload: dict[str, Any] = {
        "text": fallback,
        "blocks": top,
        "attachments": [{"color": colour(notification), "fallback": fallback, "blocks": body}],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    for key, value in (("channel", channel), ("username", username), ("icon_emoji", icon_emoji)):
        if value:
            payload[key] = value
    return payload
