"""The PagerDuty notifier, installed with pip and found through its entry point, against a loopback Events API."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
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
from tests.peers.pagerduty import MAX_BODY, PagerDutyPeer

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
GROUP_KEY = '{}/{severity="critical"}:{alertname="PaymentTaskFailed"}'
STARTED = 1_700_000_000.0


def make_alert(
    name: str = "PaymentTaskFailed",
    severity: str = "critical",
    *,
    resolved: bool = False,
    summary: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Alert:
    labels = {"alertname": name, "severity": severity, "queue": "payments"}
    return Alert(
        fingerprint=fingerprint(name, labels),
        rule=name,
        labels=labels,
        annotations={"summary": summary or f"{name} on payments", **(annotations or {})},
        state=AlertState.RESOLVED if resolved else AlertState.FIRING,
        value=12.0,
        starts_at=STARTED,
        ends_at=STARTED + 600 if resolved else None,
        generator_url="http://alertd.example:9464/rules/payments",
    )


def make_notification(*alerts: Alert, **overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "receiver": "payments-pager",
        "group_key": GROUP_KEY,
        "group_labels": {"alertname": "PaymentTaskFailed"},
        "alerts": alerts,
        "reason": "first notification",
        "created_at": time.time(),
        "external_url": "http://alertd.example:9464",
    }
    return Notification(**(fields | overrides))


def notifier(cls: type[Notifier], peer: PagerDutyPeer, http: httpx.AsyncClient, **settings: Any) -> Notifier:
    config = cls.Settings.model_validate({"routing_key": ROUTING_KEY, "url": peer.enqueue_url, **settings})
    return cls("payments-pager", config, NotifierContext(http=http))


def test_found_through_the_entry_point(pagerduty_class: type[Notifier]) -> None:
    (entry_point,) = [ep for ep in importlib.metadata.entry_points(group="alertd.notifiers") if ep.name == "pagerduty"]
    assert entry_point.value == "alertd_pagerduty.plugin"
    assert entry_point.dist is not None and entry_point.dist.name == "alertd-pagerduty"
    assert pagerduty_class.type_name == "pagerduty"


def test_settings(pagerduty_class: type[Notifier]) -> None:
    settings = pagerduty_class.Settings.model_validate({"routing_key": ROUTING_KEY, "class": "queue", "group": "celery"})
    assert settings.model_dump(by_alias=True, exclude={"routing_key", "templates", "timeout"}) == {
        "url": "https://events.pagerduty.com/v2/enqueue",
        "source": "alertd",
        "component": None,
        "group": "celery",
        "class": "queue",
    }
    assert ROUTING_KEY not in repr(settings)
    with pytest.raises(pydantic.ValidationError, match="32-character") as caught:
        pagerduty_class.Settings.model_validate({"routing_key": ROUTING_KEY[:31]})
    assert ROUTING_KEY[:31] not in str(caught.value)


async def test_trigger_then_resolve_is_one_incident(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(make_alert()))
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(make_alert(), reason="repeat interval elapsed"))
    # another instance (a restart, another replica) resolves the same incident
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(make_alert(resolved=True), reason="resolved"))

    trigger, repeat, resolve = pagerduty_peer.events
    assert [e["event_action"] for e in (trigger, repeat, resolve)] == ["trigger", "trigger", "resolve"]
    expected_key = hashlib.sha256(GROUP_KEY.encode()).hexdigest()
    assert trigger["dedup_key"] == repeat["dedup_key"] == resolve["dedup_key"] == expected_key
    assert pagerduty_peer.incidents == {expected_key: "resolved"}
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": expected_key}


async def test_a_trigger_event(pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient) -> None:
    alert = make_alert(annotations={"runbook_url": "https://runbooks.example/payments", "description": "12 failed"})
    sender = notifier(pagerduty_class, pagerduty_peer, http, source="celery-prod", component="payments", group="celery", **{"class": "task"})
    await sender.send(make_notification(alert, make_alert("QueueBacklog", "warning")))

    (event,) = pagerduty_peer.events
    payload = event["payload"]
    assert payload["summary"] == "[FIRING:2] PaymentTaskFailed: PaymentTaskFailed on payments"
    assert (payload["source"], payload["component"], payload["group"], payload["class"]) == ("celery-prod", "payments", "celery", "task")
    assert payload["severity"] == "critical"
    assert payload["timestamp"] == "2023-11-14T22:13:20+00:00"
    details = payload["custom_details"]
    assert details["num_firing"] == 2 and details["reason"] == "first notification"
    assert [a["name"] for a in details["alerts"]] == ["PaymentTaskFailed", "QueueBacklog"]
    assert details["alerts"][0]["annotations"]["description"] == "12 failed"
    assert event["links"] == [
        {"href": "https://runbooks.example/payments", "text": "Runbook: PaymentTaskFailed"},
        {"href": "http://alertd.example:9464/rules/payments", "text": "Source: PaymentTaskFailed"},
    ]
    assert event["client"] == "alertd" and event["client_url"] == "http://alertd.example:9464"


@pytest.mark.parametrize(
    ("reason", "action"),
    [
        pytest.param("acknowledged", "acknowledge", id="acknowledged"),
        pytest.param("acknowledged by alice", "acknowledge", id="acknowledged-by"),
        pytest.param("escalated: unacknowledged for 10m", "trigger", id="unacknowledged-escalation"),
        pytest.param("new alerts", "trigger", id="new-alerts"),
    ],
)
async def test_acknowledgements(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient, reason: str, action: str
) -> None:
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(make_alert(), reason=reason))
    (event,) = pagerduty_peer.events
    assert event["event_action"] == action


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        pytest.param(("critical",), "critical", id="critical"),
        pytest.param(("error",), "error", id="error"),
        pytest.param(("warning",), "warning", id="warning"),
        pytest.param(("info",), "info", id="info"),
        pytest.param(("page",), "critical", id="page-is-critical"),
        pytest.param(("WARN",), "warning", id="warn-any-case"),
        pytest.param(("",), "error", id="none-is-error"),
        pytest.param(("something",), "error", id="unknown-is-error"),
        pytest.param(("info", "warning"), "warning", id="most-severe-wins"),
        pytest.param(("warning", "page"), "critical", id="most-severe-after-mapping"),
    ],
)
async def test_severity_mapping(
    pagerduty_class: type[Notifier],
    pagerduty_peer: PagerDutyPeer,
    http: httpx.AsyncClient,
    severities: tuple[str, ...],
    expected: str,
) -> None:
    alerts = [make_alert(f"A{i}", severity) for i, severity in enumerate(severities)]
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(*alerts))
    (event,) = pagerduty_peer.events
    assert event["payload"]["severity"] == expected


async def test_resolved_alerts_do_not_set_the_severity(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    alerts = (make_alert("A", "warning"), make_alert("B", "critical", resolved=True))
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(*alerts))
    (event,) = pagerduty_peer.events
    assert event["payload"]["severity"] == "warning"


async def test_the_summary_fits_1024_characters(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(make_alert(summary="s" * 5000)))
    (event,) = pagerduty_peer.events
    summary = event["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")
    assert event["payload"]["custom_details"]["alerts"][0]["annotations"]["summary"] == "s" * 5000


async def test_two_megabytes_of_details_are_trimmed_to_fit(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    huge = make_alert(annotations={"description": "d" * 2_000_000})
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(huge))

    (request,) = pagerduty_peer.requests
    assert len(request.body) <= MAX_BODY
    (event,) = pagerduty_peer.events  # accepted: 202
    description = event["payload"]["custom_details"]["alerts"][0]["annotations"]["description"]
    assert description.startswith("d" * 1000) and description.endswith("…")


async def test_thousands_of_alerts_keep_those_that_fit(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    alerts = [make_alert(f"Alert{i:04d}", annotations={"description": "x" * 120}) for i in range(5000)]
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(*alerts, truncated_alerts=7))

    (request,) = pagerduty_peer.requests
    assert MAX_BODY - 2048 < len(request.body) <= MAX_BODY
    (event,) = pagerduty_peer.events
    details = event["payload"]["custom_details"]
    kept = details["alerts"]
    assert 0 < len(kept) < 5000
    assert [a["name"] for a in kept] == [f"Alert{i:04d}" for i in range(len(kept))]
    assert details["truncated_alerts"] == 5000 - len(kept) + 7
    assert details["num_firing"] == 5000


async def test_rate_limited_is_retryable(pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient) -> None:
    pagerduty_peer.script(429, Reply(429, {"status": "throttle exceeded"}, {"Retry-After": "30"}))
    sender = notifier(pagerduty_class, pagerduty_peer, http)
    with pytest.raises(RetryableError, match="429") as first:
        await sender.send(make_notification(make_alert()))
    assert first.value.retry_after is None  # PagerDuty usually sends none: the pipeline's backoff decides
    with pytest.raises(RetryableError) as second:
        await sender.send(make_notification(make_alert()))
    assert second.value.retry_after == 30
    await sender.send(make_notification(make_alert()))
    assert len(pagerduty_peer.events) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retryable(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient, status: int
) -> None:
    pagerduty_peer.script(status)
    with pytest.raises(RetryableError, match=str(status)):
        await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(make_alert()))
    assert len(pagerduty_peer.requests) == 1


async def test_an_invalid_event_is_permanent_with_pagerdutys_reasons(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    # A key that skipped validation (as if the file were never checked): PagerDuty itself refuses it.
    valid = notifier(pagerduty_class, pagerduty_peer, http).settings
    config = valid.model_copy(update={"routing_key": pydantic.SecretStr(ROUTING_KEY[:31])})
    with pytest.raises(PermanentError) as caught:
        await pagerduty_class("p", config, NotifierContext(http=http)).send(make_notification(make_alert()))
    message = str(caught.value)
    assert "400" in message and "invalid event" in message and "routing_key" in message


async def test_the_routing_key_never_appears_in_an_error(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    pagerduty_peer.script(Reply(400, {"status": "invalid event", "errors": [f"unknown routing key {ROUTING_KEY}"]}))
    with pytest.raises(PermanentError) as caught:
        await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(make_alert()))
    assert ROUTING_KEY not in str(caught.value)
    assert "unknown routing key <redacted>" in str(caught.value)


async def test_unreachable_and_slow_are_retryable(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    pagerduty_peer.script(Reply(202, {"status": "success"}, delay=2.0))
    with pytest.raises(RetryableError, match="did not answer"):
        await notifier(pagerduty_class, pagerduty_peer, http, timeout="200ms").send(make_notification(make_alert()))
    sender = notifier(pagerduty_class, pagerduty_peer, http)
    pagerduty_peer.stop()
    with pytest.raises(RetryableError, match="unreachable") as caught:
        await sender.send(make_notification(make_alert()))
    assert ROUTING_KEY not in str(caught.value)


async def test_receiver_templates_without_the_pipeline(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    sender = notifier(pagerduty_class, pagerduty_peer, http, templates={"summary": "{{ firing|length }} payments\nalerts"})
    await sender.send(make_notification(make_alert(), make_alert("B")))
    await notifier(pagerduty_class, pagerduty_peer, http).send(make_notification(make_alert(), rendered={"summary": "from the pipeline"}))
    first, second = pagerduty_peer.events
    assert first["payload"]["summary"] == "2 payments alerts"
    assert second["payload"]["summary"] == "from the pipeline"


async def test_a_broken_template_does_not_block_a_resolve(
    pagerduty_class: type[Notifier], pagerduty_peer: PagerDutyPeer, http: httpx.AsyncClient
) -> None:
    sender = notifier(pagerduty_class, pagerduty_peer, http, templates={"summary": "{{ missing.value }}"})
    with pytest.raises(PermanentError, match="template"):
        await sender.send(make_notification(make_alert()))
    await sender.send(make_notification(make_alert(resolved=True)))
    (event,) = pagerduty_peer.events
    assert event["event_action"] == "resolve"
    assert json.loads(pagerduty_peer.requests[-1].body)["event_action"] == "resolve"
