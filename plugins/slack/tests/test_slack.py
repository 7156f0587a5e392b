"""The Slack notifier, installed with pip and found through its entry point, against a loopback Slack."""

from __future__ import annotations

import email.utils
import importlib.metadata
import time
import uuid
from typing import Any

import httpx
import pydantic
import pytest

from alertd.errors import PermanentError, RetryableError
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notification, Notifier, NotifierContext
from tests.peers import Reply
from tests.peers.slack import SlackPeer, problems

STARTED = 1_700_000_000.0


def make_alert(
    name: str = "PaymentTaskFailed",
    severity: str = "critical",
    *,
    resolved: bool = False,
    summary: str | None = None,
    description: str = "",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Alert:
    all_labels = {"alertname": name, "severity": severity, "queue": "payments", **(labels or {})}
    all_annotations = {"summary": summary or f"{name} on payments", **(annotations or {})}
    if description:
        all_annotations["description"] = description
    return Alert(
        fingerprint=fingerprint(name, all_labels),
        rule=name,
        labels=all_labels,
        annotations=all_annotations,
        state=AlertState.RESOLVED if resolved else AlertState.FIRING,
        value=12.0,
        starts_at=STARTED,
        ends_at=STARTED + 600 if resolved else None,
        generator_url="http://alertd.example:9464/rules/payments",
    )


def make_notification(*alerts: Alert, **overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "receiver": "ops-slack",
        "group_key": '{}:{alertname="PaymentTaskFailed"}',
        "group_labels": {"alertname": alerts[0].name if alerts else "PaymentTaskFailed"},
        "alerts": alerts,
        "reason": "first notification",
        "created_at": time.time(),
        "external_url": "http://alertd.example:9464",
    }
    return Notification(**(fields | overrides))


def notifier(cls: type[Notifier], peer: SlackPeer, http: httpx.AsyncClient, **settings: Any) -> Notifier:
    config = cls.Settings.model_validate({"webhook_url": peer.webhook_url, **settings})
    return cls("ops-slack", config, NotifierContext(http=http))


def all_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [*message["blocks"], *(b for a in message["attachments"] for b in a["blocks"])]


def test_found_through_the_entry_point(slack_class: type[Notifier]) -> None:
    (entry_point,) = [ep for ep in importlib.metadata.entry_points(group="alertd.notifiers") if ep.name == "slack"]
    assert entry_point.value == "alertd_slack.plugin"
    assert entry_point.dist is not None and entry_point.dist.name == "alertd-slack"
    assert slack_class.type_name == "slack"
    assert set(slack_class.templates) == {"title", "text"}


def test_settings_keep_the_webhook_url_secret(slack_class: type[Notifier]) -> None:
    url = "https://hooks.slack.com/services/T000/B000/very-secret-token"
    settings = slack_class.Settings.model_validate({"webhook_url": url, "channel": "#ops", "timeout": "5s"})
    assert "very-secret-token" not in repr(settings)
    assert settings.timeout == 5.0
    with pytest.raises(pydantic.ValidationError) as caught:
        slack_class.Settings.model_validate({"webhook_url": "ftp://very-secret-token"})
    assert "very-secret-token" not in str(caught.value)
    with pytest.raises(pydantic.ValidationError):
        slack_class.Settings.model_validate({"webhook_url": url, "colour": "red"})


async def test_a_message_slack_accepts(slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient) -> None:
    alert = make_alert(
        description="12 payment tasks failed in 5m",
        annotations={"runbook_url": "https://runbooks.example/payments?a=1&b=2"},
    )
    await notifier(slack_class, slack_peer, http, channel="#payments", username="alertd", icon_emoji=":fire:").send(
        make_notification(alert)
    )

    (message,) = slack_peer.messages
    assert message["channel"] == "#payments" and message["username"] == "alertd" and message["icon_emoji"] == ":fire:"
    header = message["blocks"][0]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "[FIRING:1] PaymentTaskFailed", "emoji": True}}
    assert "<http://alertd.example:9464|Open in alertd>" in str(message["blocks"][1])
    (attachment,) = message["attachments"]
    assert attachment["color"] == "#E01E5A"
    section, context = attachment["blocks"]
    assert section["text"] == {"type": "mrkdwn", "text": "*PaymentTaskFailed on payments*\n12 payment tasks failed in 5m"}
    texts = [e["text"] for e in context["elements"]]
    assert texts[0] == "`queue=payments` `severity=critical`"
    assert "<http://alertd.example:9464/rules/payments|Source>" in texts
    assert "<https://runbooks.example/payments?a=1&amp;b=2|Runbook>" in texts
    assert message["text"].startswith("[FIRING:1] PaymentTaskFailed\n- PaymentTaskFailed on payments")
    assert attachment["fallback"] == message["text"]


@pytest.mark.parametrize(
    ("severity", "resolved", "colour"),
    [
        pytest.param("critical", False, "#E01E5A", id="critical-red"),
        pytest.param("error", False, "#E01E5A", id="error-red"),
        pytest.param("warning", False, "#ECB22E", id="warning-orange"),
        pytest.param("info", False, "#439FE0", id="info-blue"),
        pytest.param("", False, "#9E9E9E", id="no-severity-grey"),
        pytest.param("critical", True, "#2EB67D", id="resolved-green"),
    ],
)
async def test_colour_by_severity(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient, severity: str, resolved: bool, colour: str
) -> None:
    await notifier(slack_class, slack_peer, http).send(make_notification(make_alert(severity=severity, resolved=resolved)))
    (message,) = slack_peer.messages
    assert message["attachments"][0]["color"] == colour


async def test_the_most_severe_firing_alert_sets_the_colour(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient
) -> None:
    alerts = (make_alert("A", "info"), make_alert("B", "warning"), make_alert("C", "critical", resolved=True))
    await notifier(slack_class, slack_peer, http).send(make_notification(*alerts))
    (message,) = slack_peer.messages
    assert message["attachments"][0]["color"] == "#ECB22E"
    sections = [b["text"]["text"] for b in message["attachments"][0]["blocks"] if b["type"] == "section"]
    assert sections == ["*B on payments*", "*A on payments*", "*C on payments* (resolved)"]


async def test_oversized_notifications_are_truncated_within_slacks_limits(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient
) -> None:
    alerts = [make_alert(f"Alert{i:02d}", description="x" * 10_000 if i == 0 else "") for i in range(60)]
    notification = make_notification(*alerts, truncated_alerts=5, group_labels={"alertname": "A" * 400})
    await notifier(slack_class, slack_peer, http, templates={"title": "{{ 'T' * 400 }}"}).send(notification)

    (message,) = slack_peer.messages  # the peer validated every limit and answered 200 ok
    assert problems(message) == []
    blocks = all_blocks(message)
    assert 48 <= len(blocks) <= 50  # full: whole alerts only (a section and its context)
    assert message["blocks"][0]["text"]["text"] == "T" * 149 + "…"
    sections = [b for b in blocks if b["type"] == "section"]
    assert len(sections[0]["text"]["text"]) == 3000 and sections[0]["text"]["text"].endswith("…")
    assert all(len(b["text"]["text"]) <= 3000 for b in sections)
    shown = len(sections)
    assert blocks[-1]["elements"][0]["text"] == f"… and {60 - shown + 5} more alerts"
    assert len(message["text"]) <= 3000
    assert message["text"].endswith("… and 45 more alerts")


async def test_a_long_fallback_text_is_cut(slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient) -> None:
    notification = make_notification(make_alert(), rendered={"title": "Payments", "text": "y" * 5000})
    await notifier(slack_class, slack_peer, http).send(notification)
    (message,) = slack_peer.messages
    assert message["text"] == "y" * 2999 + "…"


async def test_rendered_templates_from_the_pipeline_are_used(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient
) -> None:
    notification = make_notification(make_alert(), rendered={"title": "Payments are failing", "text": "see #payments"})
    await notifier(slack_class, slack_peer, http).send(notification)
    (message,) = slack_peer.messages
    assert message["blocks"][0]["text"]["text"] == "Payments are failing"
    assert message["text"] == "see #payments"


async def test_alert_text_cannot_mention_the_channel(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient
) -> None:
    alert = make_alert(summary="<!channel> wake up & look", description="<https://evil.example|click>")
    await notifier(slack_class, slack_peer, http).send(make_notification(alert))
    (message,) = slack_peer.messages
    section = message["attachments"][0]["blocks"][0]["text"]["text"]
    assert section == "*&lt;!channel&gt; wake up &amp; look*\n&lt;https://evil.example|click&gt;"
    assert "<!channel>" not in message["text"]


async def test_rate_limited_is_retryable_after_what_slack_says(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient
) -> None:
    slack_peer.script(Reply(429, "rate_limited", {"Retry-After": "7"}))
    with pytest.raises(RetryableError) as caught:
        await notifier(slack_class, slack_peer, http).send(make_notification(make_alert()))
    assert caught.value.retry_after == 7
    assert "429" in str(caught.value) and "rate_limited" in str(caught.value)
    assert len(slack_peer.requests) == 1  # the notifier never retries by itself


async def test_retry_after_as_an_http_date(slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient) -> None:
    slack_peer.script(Reply(429, "rate_limited", {"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)}))
    with pytest.raises(RetryableError) as caught:
        await notifier(slack_class, slack_peer, http).send(make_notification(make_alert()))
    assert caught.value.retry_after is not None and 110 < caught.value.retry_after <= 120


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(400, "invalid_payload", id="400-invalid_payload"),
        pytest.param(403, "action_prohibited", id="403-action_prohibited"),
        pytest.param(404, "channel_not_found", id="404-channel_not_found"),
        pytest.param(410, "channel_is_archived", id="410-channel_is_archived"),
    ],
)
async def test_client_errors_are_permanent_and_say_why(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient, status: int, body: str
) -> None:
    slack_peer.script(status)
    with pytest.raises(PermanentError) as caught:
        await notifier(slack_class, slack_peer, http).send(make_notification(make_alert()))
    message = str(caught.value)
    assert str(status) in message and body in message
    assert slack_peer.path not in message and slack_peer.path.rsplit("/", 1)[1] not in message


async def test_an_unknown_webhook_is_permanent(slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient) -> None:
    config = slack_class.Settings.model_validate({"webhook_url": slack_peer.url + "/services/T1/B1/wrong-token"})
    with pytest.raises(PermanentError, match="404: no_service") as caught:
        await slack_class("ops", config, NotifierContext(http=http)).send(make_notification(make_alert()))
    assert "wrong-token" not in str(caught.value)


async def test_the_error_body_is_truncated(slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient) -> None:
    slack_peer.script(Reply(400, "e" * 5000))
    with pytest.raises(PermanentError) as caught:
        await notifier(slack_class, slack_peer, http).send(make_notification(make_alert()))
    assert 500 < len(str(caught.value)) < 700


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retryable(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient, status: int
) -> None:
    slack_peer.script(status)
    with pytest.raises(RetryableError) as caught:
        await notifier(slack_class, slack_peer, http).send(make_notification(make_alert()))
    assert caught.value.retry_after is None
    await notifier(slack_class, slack_peer, http).send(make_notification(make_alert()))  # then Slack is back
    assert len(slack_peer.messages) == 1


async def test_unreachable_is_retryable(slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient) -> None:
    sender = notifier(slack_class, slack_peer, http)
    slack_peer.stop()
    with pytest.raises(RetryableError, match="unreachable") as caught:
        await sender.send(make_notification(make_alert()))
    assert "T0ALERTD" not in str(caught.value)


async def test_no_answer_within_the_timeout_is_retryable(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient
) -> None:
    slack_peer.script(Reply(200, "ok", delay=2.0))
    started = time.monotonic()
    with pytest.raises(RetryableError, match=r"did not answer within 0\.2s"):
        await notifier(slack_class, slack_peer, http, timeout="200ms").send(make_notification(make_alert()))
    assert time.monotonic() - started < 1.5


async def test_works_without_the_pipeline_rendering_first(
    slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient
) -> None:
    """Used directly, the notifier renders its own default templates (and the receiver's overrides)."""
    overrides = {"title": "{{ receiver }}: {{ alerts|length }} alerts ({{ reason }})"}
    await notifier(slack_class, slack_peer, http, templates=overrides).send(make_notification(make_alert(), make_alert("B")))
    (message,) = slack_peer.messages
    assert message["blocks"][0]["text"]["text"] == "ops-slack: 2 alerts (first notification)"
    assert message["text"].startswith("[FIRING:2] PaymentTaskFailed")


async def test_a_broken_template_is_permanent(slack_class: type[Notifier], slack_peer: SlackPeer, http: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentError, match="template"):
        await notifier(slack_class, slack_peer, http, templates={"title": "{{ nope.nothing }}"}).send(
            make_notification(make_alert())
        )
    assert slack_peer.requests == []
