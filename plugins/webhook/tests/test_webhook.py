"""The webhook notifier, installed with pip and found through its entry point, against a loopback receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.metadata
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from alertd.clock import VirtualClock
from alertd.errors import PermanentError, RetryableError
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notification, Notifier, NotifierContext
from tests.peers import Reply
from tests.peers.tls import shared_certificate
from tests.peers.webhook import WebhookPeer, verify_signature

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
GROUP_KEY = '{}:{alertname="PaymentTaskFailed"}'
STARTED = 1_700_000_000.0


def make_alert(name: str = "PaymentTaskFailed", *, resolved: bool = False, **labels: str) -> Alert:
    all_labels = {"alertname": name, "severity": "critical", "queue": "payments", **labels}
    return Alert(
        fingerprint=fingerprint(name, all_labels),
        rule=name,
        labels=all_labels,
        annotations={"summary": "Payments are failing", "runbook_url": "https://runbooks.example/payments"},
        state=AlertState.RESOLVED if resolved else AlertState.FIRING,
        value=12.0,
        starts_at=STARTED + 0.25,
        ends_at=STARTED + 600 if resolved else None,
        generator_url="http://alertd.example:9464/rules/payments",
    )


def make_notification(*alerts: Alert, **overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": "n-0001",
        "receiver": "ops-hook",
        "group_key": GROUP_KEY,
        "group_labels": {"alertname": "PaymentTaskFailed"},
        "alerts": alerts or (make_alert(),),
        "reason": "new alerts",
        "created_at": STARTED + 900,
        "external_url": "http://alertd.example:9464",
    }
    return Notification(**(fields | overrides))


def notifier(
    cls: type[Notifier], peer: WebhookPeer, http: httpx.AsyncClient, clock: VirtualClock | None = None, **settings: Any
) -> Notifier:
    config = cls.Settings.model_validate({"url": peer.hook_url, **settings})
    context = NotifierContext(http=http, clock=clock) if clock else NotifierContext(http=http)
    return cls("ops-hook", config, context)


def webhook_peer_port(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def test_found_through_the_entry_point(webhook_class: type[Notifier]) -> None:
    (entry_point,) = [ep for ep in importlib.metadata.entry_points(group="alertd.notifiers") if ep.name == "webhook"]
    assert entry_point.value == "alertd_webhook.plugin"
    assert entry_point.dist is not None and entry_point.dist.name == "alertd-webhook"
    assert webhook_class.type_name == "webhook"


async def test_the_payload_is_alertmanagers_version_4(
    webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient
) -> None:
    firing = make_alert()
    resolved = make_alert(resolved=True, queue="refunds")
    await notifier(webhook_class, webhook_peer, http).send(make_notification(firing, resolved))

    (payload,) = webhook_peer.payloads
    assert payload == {
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ops-hook",
        "groupLabels": {"alertname": "PaymentTaskFailed"},
        "commonLabels": {"alertname": "PaymentTaskFailed", "severity": "critical"},
        "commonAnnotations": {"summary": "Payments are failing", "runbook_url": "https://runbooks.example/payments"},
        "externalURL": "http://alertd.example:9464",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "PaymentTaskFailed", "severity": "critical", "queue": "payments"},
                "annotations": {"summary": "Payments are failing", "runbook_url": "https://runbooks.example/payments"},
                "startsAt": "2023-11-14T22:13:20.25Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://alertd.example:9464/rules/payments",
                "fingerprint": firing.fingerprint,
            },
            {
                "status": "resolved",
                "labels": {"alertname": "PaymentTaskFailed", "severity": "critical", "queue": "refunds"},
                "annotations": {"summary": "Payments are failing", "runbook_url": "https://runbooks.example/payments"},
                "startsAt": "2023-11-14T22:13:20.25Z",
                "endsAt": "2023-11-14T22:23:20Z",
                "generatorURL": "http://alertd.example:9464/rules/payments",
                "fingerprint": resolved.fingerprint,
            },
        ],
        "alertd": {"reason": "new alerts", "reasonKind": "new_alerts", "notificationId": "n-0001"},
    }


# The types an Alertmanager receiver decodes the payload into (Go's template.Data and template.Alert).
TOP_LEVEL_TYPES = {
    "version": str,
    "groupKey": str,
    "truncatedAlerts": int,
    "status": str,
    "receiver": str,
    "groupLabels": dict,
    "commonLabels": dict,
    "commonAnnotations": dict,
    "externalURL": str,
    "alerts": list,
}
ALERT_TYPES = {
    "status": str,
    "labels": dict,
    "annotations": dict,
    "startsAt": str,
    "endsAt": str,
    "generatorURL": str,
    "fingerprint": str,
}


async def test_keys_and_types_of_every_field(webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient) -> None:
    alert = Alert(fingerprint="abc", rule="NoLabels", labels={}, annotations={}, state=AlertState.RESOLVED, value=None, starts_at=STARTED)
    await notifier(webhook_class, webhook_peer, http).send(make_notification(alert, group_labels={}))

    (payload,) = webhook_peer.payloads
    assert set(payload) - {"alertd"} == set(TOP_LEVEL_TYPES)
    for key, kind in TOP_LEVEL_TYPES.items():
        assert type(payload[key]) is kind, key
    (sent,) = payload["alerts"]
    assert set(sent) == set(ALERT_TYPES)
    for key, kind in ALERT_TYPES.items():
        assert type(sent[key]) is kind, key
    assert payload["status"] == "resolved"
    assert sent["labels"] == {"alertname": "NoLabels"}  # receivers rely on alertname
    assert sent["endsAt"] == "2023-11-14T22:28:20Z"  # no end time known: when the notification was made
    assert all(isinstance(v, str) for m in (payload["groupLabels"], payload["commonLabels"], sent["labels"]) for v in m.values())


async def test_max_alerts_counts_the_rest(webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient) -> None:
    alerts = [make_alert(queue=f"q{i}") for i in range(5)]
    await notifier(webhook_class, webhook_peer, http, max_alerts=2).send(make_notification(*alerts, truncated_alerts=3))
    (payload,) = webhook_peer.payloads
    assert [a["labels"]["queue"] for a in payload["alerts"]] == ["q0", "q1"]
    assert payload["truncatedAlerts"] == 6


async def test_signed_as_standard_webhooks(webhook_class: type[Notifier], http: httpx.AsyncClient) -> None:
    clock = VirtualClock(start=time.time())
    with WebhookPeer(secret=SECRET) as peer:  # answers 401 unless its own verification passes
        await notifier(webhook_class, peer, http, clock=clock, signing_secret=SECRET).send(make_notification())
        (request,) = peer.requests
        assert peer.payloads  # 200: verified

    headers = request.headers
    assert headers["webhook-id"] == "n-0001"
    assert headers["webhook-timestamp"] == str(int(clock.now()))
    # An independent computation, straight from the specification.
    key = base64.b64decode(SECRET.split("_", 1)[1])
    content = b"n-0001." + headers["webhook-timestamp"].encode() + b"." + request.body
    expected = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == expected
    assert verify_signature(SECRET, headers, request.body, now=clock.now())
    assert not verify_signature(SECRET, headers, request.body + b" ", now=clock.now())


async def test_a_retry_keeps_the_webhook_id(webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient) -> None:
    clock = VirtualClock(start=time.time())
    sender = notifier(webhook_class, webhook_peer, http, clock=clock, signing_secret=SECRET)
    webhook_peer.script(503)
    with pytest.raises(RetryableError):
        await sender.send(make_notification())
    clock.advance(30)
    await sender.send(make_notification())
    first, second = webhook_peer.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "n-0001"
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 30
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]


async def test_a_wrong_signature_is_refused(webhook_class: type[Notifier], http: httpx.AsyncClient) -> None:
    other = "whsec_" + base64.b64encode(b"another key of thirty two bytes!").decode()
    with WebhookPeer(secret=SECRET) as peer, pytest.raises(PermanentError, match="401") as caught:
        await notifier(webhook_class, peer, http, signing_secret=other).send(make_notification())
    assert other not in str(caught.value) and other.removeprefix("whsec_") not in str(caught.value)


async def test_custom_headers_arrive_and_stay_secret(
    webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient
) -> None:
    headers = {"Authorization": "Bearer s3cr3t-t0ken", "X-Team": "payments", "User-Agent": "ops-bridge/1.0"}
    sender = notifier(webhook_class, webhook_peer, http, headers=headers)
    assert "s3cr3t-t0ken" not in repr(sender.settings)
    await sender.send(make_notification())
    (request,) = webhook_peer.requests
    assert request.headers["authorization"] == "Bearer s3cr3t-t0ken"
    assert request.headers["x-team"] == "payments"
    assert request.headers["user-agent"] == "ops-bridge/1.0"
    assert request.headers["content-type"] == "application/json"

    webhook_peer.script(Reply(400, {"error": "bad token", "got": "Bearer s3cr3t-t0ken"}))  # a receiver that echoes
    with pytest.raises(PermanentError, match="400") as caught:
        await sender.send(make_notification())
    assert "s3cr3t-t0ken" not in str(caught.value) and "<redacted>" in str(caught.value)


async def test_gone_says_disable_the_endpoint(webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient) -> None:
    webhook_peer.script(410)
    with pytest.raises(PermanentError, match="410") as caught:
        await notifier(webhook_class, webhook_peer, http).send(make_notification())
    gone = type(caught.value)
    assert (gone.__module__, gone.__name__) == ("alertd_webhook.plugin", "EndpointGone")
    assert getattr(caught.value, "disable", False) is True


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        pytest.param(Reply(429, "slow down", {"Retry-After": "12"}), RetryableError, 12, id="429-retry-after"),
        pytest.param(Reply(500, "oops"), RetryableError, None, id="500"),
        pytest.param(Reply(503, "", {"Retry-After": "5"}), RetryableError, 5, id="503-retry-after"),
        pytest.param(Reply(400, "bad request"), PermanentError, None, id="400"),
        pytest.param(Reply(404, "no such hook"), PermanentError, None, id="404"),
        pytest.param(Reply(413, "too large"), PermanentError, None, id="413"),
        pytest.param(Reply(307, "", {"Location": "http://127.0.0.1:9/elsewhere"}), PermanentError, None, id="307-not-followed"),
    ],
)
async def test_answers_decide(
    webhook_class: type[Notifier],
    webhook_peer: WebhookPeer,
    http: httpx.AsyncClient,
    reply: Reply,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    webhook_peer.script(reply)
    with pytest.raises(error, match=str(reply.status)) as caught:
        await notifier(webhook_class, webhook_peer, http).send(make_notification())
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert not getattr(caught.value, "disable", False)
    assert len(webhook_peer.requests) == 1


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_is_delivered(webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient, status: int) -> None:
    webhook_peer.script(Reply(status, b"" if status == 204 else "ok"))
    await notifier(webhook_class, webhook_peer, http).send(make_notification())


async def test_unreachable_is_retryable_and_keeps_the_url_secret(
    webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient
) -> None:
    url = webhook_peer.url + "/hook/t0ken-in-path?key=t0ken-in-query"
    config = webhook_class.Settings.model_validate({"url": url})
    sender = webhook_class("ops-hook", config, NotifierContext(http=http))
    webhook_peer.stop()
    with pytest.raises(RetryableError, match="unreachable") as caught:
        await sender.send(make_notification())
    assert "t0ken" not in str(caught.value)
    assert f"webhook http://127.0.0.1:{webhook_peer_port(url)}/…" in str(caught.value)


async def test_receiver_templates_ride_along(webhook_class: type[Notifier], webhook_peer: WebhookPeer, http: httpx.AsyncClient) -> None:
    sender = notifier(webhook_class, webhook_peer, http, templates={"title": "{{ firing|length }} firing"})
    await sender.send(make_notification())
    await sender.send(make_notification(rendered={"title": "from the pipeline"}))
    first, second = webhook_peer.payloads
    assert first["alertd"]["rendered"] == {"title": "1 firing"}
    assert second["alertd"]["rendered"] == {"title": "from the pipeline"}


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"signing_secret": "not-prefixed-secret-value"}, id="no-prefix"),
        pytest.param({"signing_secret": "whsec_!!!not-base64!!!"}, id="not-base64"),
        pytest.param({"signing_secret": "whsec_" + base64.b64encode(b"short").decode()}, id="too-short"),
        pytest.param({"headers": {"Content-Type": "text/plain-secret-value"}}, id="reserved-header"),
        pytest.param({"headers": {"X-Key": "line\nbreak-secret-value"}}, id="header-injection"),
        pytest.param({"url": "ftp://example.com/secret-value"}, id="not-http"),
        pytest.param({"max_alerts": -1}, id="negative-max-alerts"),
    ],
)
def test_invalid_settings_are_refused_without_echoing_secrets(webhook_class: type[Notifier], bad: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        webhook_class.Settings.model_validate({"url": "https://hooks.example/alertd", **bad})
    assert "secret-value" not in str(caught.value)


@pytest.fixture
def https_peer() -> Iterator[WebhookPeer]:
    """The receiver over HTTPS, with a certificate signed by the test CA (which the system's CAs do not know)."""
    with WebhookPeer(certificate=shared_certificate()) as peer:
        yield peer


async def test_https_to_a_private_ca_with_ca_file(
    webhook_class: type[Notifier], https_peer: WebhookPeer, http: httpx.AsyncClient
) -> None:
    assert https_peer.hook_url.startswith("https://127.0.0.1:")
    sender = notifier(webhook_class, https_peer, http, ca_file=https_peer.ca_file)
    await sender.send(make_notification())
    await sender.send(make_notification())  # the notifier's own client, kept alive between sends
    assert [p["status"] for p in https_peer.payloads] == ["firing", "firing"]
    await sender.close()


async def test_https_without_ca_file_is_refused_and_says_why(
    webhook_class: type[Notifier], https_peer: WebhookPeer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentError, match=r"certificate is not trusted \(.*certificate") as caught:
        await notifier(webhook_class, https_peer, http).send(make_notification())
    assert str(caught.value).startswith(f"webhook https://127.0.0.1:{https_peer.port}/…:")
    assert https_peer.requests == []  # nothing left this side before the certificate was checked


async def test_ca_file_must_be_a_readable_pem_file(webhook_class: type[Notifier], tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="cannot read"):
        webhook_class.Settings.model_validate({"url": "https://hooks.example.com/x", "ca_file": str(tmp_path / "none.pem")})
    (tmp_path / "empty.pem").write_text("not a certificate\n")
    with pytest.raises(pydantic.ValidationError, match="holds no PEM CA certificate"):
        webhook_class.Settings.model_validate({"url": "https://hooks.example.com/x", "ca_file": str(tmp_path / "empty.pem")})
