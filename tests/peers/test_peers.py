"""The loopback peers answer as the services document, and their scripting and waiting work as promised."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import threading
import time
from typing import Any

import httpx
import pytest

from tests.peers import HttpPeer, Reply
from tests.peers.pagerduty import PagerDutyPeer
from tests.peers.slack import SlackPeer
from tests.peers.smtp import SmtpPeer
from tests.peers.webhook import WebhookPeer

ROUTING_KEY = "0123456789abcdef0123456789abcdef"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_script_then_normal_answers_and_every_request_recorded() -> None:
    with HttpPeer() as peer:
        peer.script(500, Reply(429, "slow down", {"Retry-After": "1"}))
        statuses = [httpx.post(peer.url + "/x", json={"n": i}).status_code for i in range(3)]
        assert statuses == [500, 429, 200]
        requests = peer.wait_for(3, timeout=1)
        assert [r.json for r in requests] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert requests[0].headers["content-type"] == "application/json"
        assert requests[0].time <= requests[1].time <= requests[2].time
        assert [reply.status for _, reply in peer.exchanges if reply] == [500, 429, 200]
        peer.reset()
        assert peer.requests == []


def test_wait_for_returns_as_soon_as_requests_arrive_and_times_out_otherwise() -> None:
    with HttpPeer() as peer:
        threading.Timer(0.1, lambda: httpx.post(peer.url, content=b"late")).start()
        started = time.monotonic()
        (request,) = peer.wait_for(1, timeout=5)
        assert request.body == b"late" and time.monotonic() - started < 2
        with pytest.raises(TimeoutError, match="1 of 2 requests"):
            peer.wait_for(2, timeout=0.1)


async def test_wait_for_async_does_not_block_the_loop() -> None:
    with HttpPeer() as peer:
        async with httpx.AsyncClient() as client:
            await client.post(peer.url, content=b"x")
        assert len(await peer.wait_for_async(1, timeout=1)) == 1


@pytest.mark.parametrize(
    ("payload", "status", "body"),
    [
        pytest.param({"text": "hello"}, 200, "ok", id="text"),
        pytest.param({"blocks": [section("x" * 3000)]}, 200, "ok", id="section-at-limit"),
        pytest.param({"blocks": [section("x" * 3001)]}, 400, "invalid_blocks", id="section-too-long"),
        pytest.param({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}, 400, "invalid_blocks", id="header-too-long"),
        pytest.param({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}, 400, "invalid_blocks", id="header-not-plain"),
        pytest.param({"blocks": [section("x")] * 25, "attachments": [{"blocks": [section("y")] * 26}]}, 400, "invalid_blocks", id="51-blocks"),
        pytest.param({"blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}]}, 400, "invalid_blocks", id="context-11-elements"),
        pytest.param({"username": "alertd"}, 400, "no_text", id="no-text"),
    ],
)
def test_slack_validates_like_slack(payload: dict[str, Any], status: int, body: str) -> None:
    with SlackPeer() as slack:
        response = httpx.post(slack.webhook_url, json=payload)
        assert (response.status_code, response.text) == (status, body)
        assert len(slack.messages) == (1 if status == 200 else 0)


def test_slack_refuses_what_is_not_json_or_not_its_webhook() -> None:
    with SlackPeer() as slack:
        assert httpx.post(slack.webhook_url, content=b"payload=x").text == "invalid_payload"
        assert httpx.post(slack.url + "/services/T/B/other", json={"text": "x"}).status_code == 404
        slack.script(429)
        limited = httpx.post(slack.webhook_url, json={"text": "x"})
        assert (limited.status_code, limited.text, limited.headers["retry-after"]) == (429, "rate_limited", "1")


def event(action: str = "trigger", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"routing_key": ROUTING_KEY, "event_action": action, "dedup_key": "k1"}
    if action == "trigger":
        body["payload"] = {"summary": "s", "source": "alertd", "severity": "critical"}
    for key, value in changes.items():
        if key.startswith("payload_"):
            body["payload"][key.removeprefix("payload_")] = value
        else:
            body[key] = value
    return body


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(event(routing_key="short"), "routing_key", id="routing-key"),
        pytest.param(event(event_action="escalate"), "event_action", id="action"),
        pytest.param(event("resolve", dedup_key=None), "dedup_key", id="resolve-without-key"),
        pytest.param(event(payload_summary="s" * 1025), "payload.summary", id="summary-1025"),
        pytest.param(event(payload_severity="high"), "payload.severity", id="severity"),
        pytest.param(event(payload_source=""), "payload.source", id="source"),
        pytest.param(event(payload_custom_details="x" * (512 * 1024)), "too large", id="over-512kb"),
    ],
)
def test_pagerduty_refuses_invalid_events(body: dict[str, Any], error: str) -> None:
    with PagerDutyPeer() as pagerduty:
        response = httpx.post(pagerduty.enqueue_url, content=json.dumps(body))
        assert response.status_code == 400
        answer = response.json()
        assert answer["status"] == "invalid event" and answer["message"] == "Event object is invalid"
        assert any(error in e for e in answer["errors"])
        assert pagerduty.incidents == {}


def test_pagerduty_tracks_incidents() -> None:
    with PagerDutyPeer() as pagerduty:
        for action in ("trigger", "acknowledge", "resolve"):
            response = httpx.post(pagerduty.enqueue_url, json=event(action))
            assert response.status_code == 202
            assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "k1"}
            assert pagerduty.incidents == {"k1": {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}[action]}
        assert [e["event_action"] for e in pagerduty.events] == ["trigger", "acknowledge", "resolve"]


def test_webhook_verifies_standard_webhooks_signatures() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    with WebhookPeer(secret=secret) as hook:
        body = b'{"version":"4"}'
        timestamp = str(int(time.time()))
        signed = hmac.new(b"k" * 32, b"id1." + timestamp.encode() + b"." + body, hashlib.sha256).digest()
        headers = {"webhook-id": "id1", "webhook-timestamp": timestamp, "webhook-signature": "v1," + base64.b64encode(signed).decode()}
        assert httpx.post(hook.hook_url, content=body, headers=headers).status_code == 200
        assert httpx.post(hook.hook_url, content=body + b" ", headers=headers).status_code == 401
        stale = headers | {"webhook-timestamp": str(int(time.time()) - 3600)}
        assert httpx.post(hook.hook_url, content=body, headers=stale).status_code == 401
        assert hook.payloads == [{"version": "4"}]


def test_smtp_starttls_auth_and_scripted_replies() -> None:
    with SmtpPeer() as peer:
        context = ssl.create_default_context(cafile=peer.ca_file)
        with smtplib.SMTP(peer.host, peer.port) as client, pytest.raises(smtplib.SMTPSenderRefused):  # STARTTLS first
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nx")
        with smtplib.SMTP(peer.host, peer.port) as client:
            client.starttls(context=context)
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login(peer.username, "wrong")
            client.login(peer.username, peer.password)
            peer.script("451 4.3.0 Try again later")
            with pytest.raises(smtplib.SMTPDataError) as caught:
                client.sendmail("a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nx")
            assert caught.value.smtp_code == 451
            client.sendmail("a@example.com", ["b@example.com", "c@example.com"], b"Subject: y\r\n\r\ny")
        (mail,) = peer.wait_for(1)
        assert mail.rcpt_tos == ("b@example.com", "c@example.com") and mail.tls and mail.login == peer.username
        assert mail.message["Subject"] == "y"


async def test_stop_cuts_pooled_connections_and_start_comes_back_on_the_same_port() -> None:
    with SlackPeer() as slack:
        url, port = slack.webhook_url, slack.port
        async with httpx.AsyncClient() as client:
            assert (await client.post(url, json={"text": "before"})).status_code == 200
            slack.stop()
            with pytest.raises(httpx.TransportError):
                await client.post(url, json={"text": "while down"})  # not answered by a lingering keep-alive thread
            slack.start()
            assert slack.port == port
            assert (await client.post(url, json={"text": "after"})).status_code == 200
        assert [m["text"] for m in slack.messages] == ["before", "after"]


def test_smtp_comes_back_on_the_same_port() -> None:
    peer = SmtpPeer(tls="none", require_auth=False).start()
    try:
        port = peer.port
        peer.stop()
        with pytest.raises(OSError):
            smtplib.SMTP(peer.host, port, timeout=1)
        peer.start()
        assert peer.port == port
        with smtplib.SMTP(peer.host, port) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: back\r\n\r\nx")
        assert peer.wait_for(1)[0].message["Subject"] == "back"
    finally:
        peer.stop()
