"""A notification and its rendered subject, text and HTML in, a multipart/alternative email message out."""

from __future__ import annotations

import email.utils
import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from email.message import EmailMessage

from alertd.notifiers.base import Notification

# RFC 5322 allows 998 characters a line; mail clients show far fewer, and folding keeps it valid.
MAX_SUBJECT = 250
_MESSAGE_ID_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def address(text: str) -> str:
    """The bare address of "Payments <payments@example.com>" (what the SMTP envelope carries)."""
    return email.utils.parseaddr(text)[1]


def fallback_subject(notification: Notification) -> str:
    status = notification.status.upper()
    count = f":{len(notification.firing)}" if status == "FIRING" else ""
    name = notification.common_labels.get("alertname") or (notification.alerts[0].name if notification.alerts else "")
    return f"[{status}{count}] {name}".strip()


def fallback_text(notification: Notification) -> str:
    lines = [fallback_subject(notification), ""]
    for alert in notification.alerts:
        status = "RESOLVED" if alert.resolved else "FIRING"
        lines.append(f"[{status}] {alert.annotations.get('summary') or alert.name}")
    return "\n".join(lines) + "\n"


def build_message(
    notification: Notification, texts: Mapping[str, str], *, sender: str, to: Sequence[str]
) -> EmailMessage:
    """Subject, From, To, threading headers, a text part and an HTML part.

    The HTML comes rendered (and escaped) from its template; only the fallback is built here, escaped too.
    """
    subject = " ".join((texts.get("subject", "") or fallback_subject(notification)).split())
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 1] + "…"
    text = texts.get("text", "").strip() or fallback_text(notification)
    body_html = texts.get("html", "").strip() or f"<pre>{html.escape(text)}</pre>"
    domain = address(sender).rpartition("@")[2] or "alertd"

    message = EmailMessage()
    message["Subject"] = subject or "alertd"
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = email.utils.formatdate(notification.created_at, usegmt=True)
    # The same Message-ID on every attempt of one notification lets a mailbox drop a duplicate delivery;
    # References to the group thread one incident's notifications together in a mail client.
    message["Message-ID"] = f"<{message_id(notification.id)}@{domain}>"
    message["References"] = f"<{hashlib.sha256(notification.group_key.encode()).hexdigest()[:32]}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to an alert
    message["X-Alertd-Receiver"] = notification.receiver
    message["X-Alertd-Status"] = notification.status
    message.set_content(text + "\n")
    message.add_alternative(body_html + "\n", subtype="html")
    return message


def message_id(notification_id: str) -> str:
    if _MESSAGE_ID_SAFE.match(notification_id):
        return notification_id
    return hashlib.sha256(notification_id.encode()).hexdigest()[:32]
