"""The email notifier, installed with pip and found through its entry point, against real SMTP servers (aiosmtpd)."""

from __future__ import annotations

import importlib.metadata
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from alertd.clock import SystemClock
from alertd.config import load_config
from alertd.errors import PermanentError, RetryableError
from alertd.models import Alert, AlertState, fingerprint
from alertd.notifiers.base import Notification, Notifier, NotifierContext
from alertd.notify.pipeline import make_notifiers
from tests.helpers import OFFLINE, write
from tests.peers.smtp import SmtpPeer

STARTED = 1_700_000_000.0
RECIPIENTS = ["oncall@example.com", "Payments team <payments@example.com>", "cto@example.org"]


def make_alert(
    name: str = "PaymentTaskFailed",
    severity: str = "critical",
    *,
    resolved: bool = False,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Alert:
    all_labels = {"alertname": name, "severity": severity, "queue": "payments", **(labels or {})}
    return Alert(
        fingerprint=fingerprint(name, all_labels),
        rule=name,
        labels=all_labels,
        annotations={"summary": f"{name} on payments", "description": "12 tasks failed in 5m", **(annotations or {})},
        state=AlertState.RESOLVED if resolved else AlertState.FIRING,
        value=12.0,
        starts_at=STARTED,
        ends_at=STARTED + 600 if resolved else None,
        generator_url="http://alertd.example:9464/rules/payments",
    )


def make_notification(*alerts: Alert, **overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "receiver": "ops-email",
        "group_key": '{}:{alertname="PaymentTaskFailed"}',
        "group_labels": {"alertname": "PaymentTaskFailed"},
        "alerts": alerts or (make_alert(),),
        "reason": "first notification",
        "created_at": time.time(),
        "external_url": "http://alertd.example:9464",
    }
    return Notification(**(fields | overrides))


def notifier(cls: type[Notifier], peer: SmtpPeer, http: httpx.AsyncClient, **settings: Any) -> Notifier:
    config: dict[str, Any] = {
        "to": RECIPIENTS,
        "from": "alertd <alertd@example.com>",
        "smarthost": peer.smarthost,
        "tls": peer.tls,
        "timeout": "5s",
    }
    if peer.certificate is not None:
        config["ca_file"] = peer.ca_file
    if peer.require_auth:
        config |= {"username": peer.username, "password": peer.password}
    return cls("ops-email", cls.Settings.model_validate(config | settings), NotifierContext(http=http))


def parts(message: EmailMessage) -> dict[str, str]:
    # What arrives over SMTP has CRLF line ends.
    return {part.get_content_type(): part.get_content().replace("\r\n", "\n") for part in message.iter_parts()}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: nobody listens there


def test_found_through_the_entry_point(email_class: type[Notifier]) -> None:
    (entry_point,) = [ep for ep in importlib.metadata.entry_points(group="alertd.notifiers") if ep.name == "email"]
    assert entry_point.value == "alertd_email.plugin"
    assert entry_point.dist is not None and entry_point.dist.name == "alertd-email"
    assert email_class.type_name == "email"
    assert set(email_class.templates) == {"subject", "text", "html"}


def test_settings(email_class: type[Notifier]) -> None:
    base = {"to": ["a@example.com"], "from": "alertd@example.com", "smarthost": "smtp.example.com:587"}
    settings = email_class.Settings.model_validate(base | {"username": "u", "password": "hunter2-secret", "subject": "{{ status }}"})
    assert settings.model_dump(by_alias=True, include={"tls", "from_", "smarthost"}) == {
        "tls": "starttls",
        "from": "alertd@example.com",
        "smarthost": "smtp.example.com:587",
    }
    assert settings.templates == {"subject": "{{ status }}"}  # rendered by the pipeline like any template
    assert "hunter2-secret" not in repr(settings)
    invalid: list[dict[str, Any]] = [
        {"smarthost": "smtp.example.com"},
        {"to": []},
        {"to": ["not an address"]},
        {"tls": "ssl"},
        {"password": "hunter2-secret"},
        {"subject": "a", "templates": {"subject": "b"}},
    ]
    for bad in invalid:
        with pytest.raises(pydantic.ValidationError) as caught:
            email_class.Settings.model_validate(base | bad)
        assert "hunter2-secret" not in str(caught.value)


async def test_starttls_and_auth_deliver_one_multipart_message_to_everyone(
    email_class: type[Notifier], smtp_starttls: SmtpPeer, http: httpx.AsyncClient
) -> None:
    notification = make_notification(make_alert(), make_alert("QueueBacklog", "warning", resolved=True))
    await notifier(email_class, smtp_starttls, http).send(notification)

    (mail,) = smtp_starttls.messages
    assert mail.tls and mail.login == smtp_starttls.username
    assert mail.mail_from == "alertd@example.com"
    assert mail.rcpt_tos == ("oncall@example.com", "payments@example.com", "cto@example.org")
    message = mail.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "[FIRING:1] PaymentTaskFailed"
    assert message["From"] == "alertd <alertd@example.com>"
    assert message["To"] == ", ".join(RECIPIENTS)
    assert message["Message-ID"] == f"<{notification.id}@example.com>"
    assert message["Auto-Submitted"] == "auto-generated"
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert "[FIRING] PaymentTaskFailed on payments" in body["text/plain"]
    assert "[RESOLVED] QueueBacklog on payments" in body["text/plain"]
    assert "12 tasks failed in 5m" in body["text/html"]
    assert '<a href="http://alertd.example:9464/rules/payments">Source</a>' in body["text/html"]


async def test_implicit_tls(email_class: type[Notifier], smtp_implicit: SmtpPeer, http: httpx.AsyncClient) -> None:
    await notifier(email_class, smtp_implicit, http).send(make_notification())
    (mail,) = smtp_implicit.wait_for(1)
    assert mail.tls and mail.login == smtp_implicit.username
    assert len(mail.rcpt_tos) == 3


async def test_plain_relay_without_auth(email_class: type[Notifier], smtp_plain: SmtpPeer, http: httpx.AsyncClient) -> None:
    await notifier(email_class, smtp_plain, http).send(make_notification())
    (mail,) = smtp_plain.messages
    assert not mail.tls and mail.login is None


async def test_html_is_escaped(email_class: type[Notifier], smtp_starttls: SmtpPeer, http: httpx.AsyncClient) -> None:
    alert = make_alert(
        labels={"job": "<script>alert('x')</script>"},
        annotations={"summary": "Tom & Jerry <b>bold</b>", "runbook_url": 'https://r.example/?a=1&b="2"'},
    )
    await notifier(email_class, smtp_starttls, http).send(make_notification(alert))
    body = parts(smtp_starttls.messages[0].message)
    html = body["text/html"]
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "job=&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "Tom &amp; Jerry &lt;b&gt;bold&lt;/b&gt;" in html
    assert 'href="https://r.example/?a=1&amp;b=&#34;2&#34;"' in html
    assert "job=<script>alert('x')</script>" in body["text/plain"]  # plain text stays plain


async def test_subject_setting_and_pipeline_rendering(
    email_class: type[Notifier], smtp_starttls: SmtpPeer, http: httpx.AsyncClient
) -> None:
    sender = notifier(email_class, smtp_starttls, http, subject="{{ alerts|length }} alert(s) for {{ receiver }}\nsecond line")
    await sender.send(make_notification())
    rendered = {"subject": "From the pipeline", "text": "plain", "html": "<p>rich</p>"}
    await sender.send(make_notification(rendered=rendered))
    first, second = smtp_starttls.wait_for(2)
    assert first.message["Subject"] == "1 alert(s) for ops-email second line"  # one line, never a header injection
    assert second.message["Subject"] == "From the pipeline"
    assert parts(second.message) == {"text/plain": "plain\n", "text/html": "<p>rich</p>\n"}


async def test_wrong_password_is_permanent(email_class: type[Notifier], smtp_starttls: SmtpPeer, http: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentError, match="535") as caught:
        await notifier(email_class, smtp_starttls, http, password="wrong-password-123").send(make_notification())
    assert "wrong-password-123" not in str(caught.value)
    assert smtp_starttls.auth_failures >= 1 and smtp_starttls.messages == []  # one try per AUTH mechanism


async def test_server_down_is_retryable(email_class: type[Notifier], closed_port: int, http: httpx.AsyncClient) -> None:
    settings = email_class.Settings.model_validate(
        {"to": ["a@example.com"], "from": "alertd@example.com", "smarthost": f"127.0.0.1:{closed_port}", "tls": "none"}
    )
    with pytest.raises(RetryableError, match="unreachable"):
        await email_class("ops", settings, NotifierContext(http=http)).send(make_notification())


async def test_a_hung_server_is_retryable_within_the_timeout(
    email_class: type[Notifier], silent_port: int, http: httpx.AsyncClient
) -> None:
    settings = email_class.Settings.model_validate(
        {"to": ["a@example.com"], "from": "alertd@example.com", "smarthost": f"127.0.0.1:{silent_port}", "timeout": "300ms"}
    )
    started = time.monotonic()
    with pytest.raises(RetryableError, match=r"did not answer within 0\.3s"):
        await email_class("ops", settings, NotifierContext(http=http)).send(make_notification())
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        pytest.param("451 4.3.0 Try again later", RetryableError, id="451-retryable"),
        pytest.param("452 4.3.1 Insufficient system storage", RetryableError, id="452-retryable"),
        pytest.param("554 5.7.1 Message rejected as spam", PermanentError, id="554-permanent"),
        pytest.param("552 5.3.4 Message too big", PermanentError, id="552-permanent"),
    ],
)
async def test_smtp_replies_decide(
    email_class: type[Notifier], smtp_starttls: SmtpPeer, http: httpx.AsyncClient, reply: str, error: type[Exception]
) -> None:
    smtp_starttls.script(reply)
    with pytest.raises(error, match=reply.split()[0]) as caught:
        await notifier(email_class, smtp_starttls, http).send(make_notification())
    assert reply.split(" ", 2)[2] in str(caught.value)


async def test_a_refused_recipient_is_reported_and_the_others_still_get_it(
    email_class: type[Notifier], http: httpx.AsyncClient
) -> None:
    with SmtpPeer(refuse=["cto@example.org"]) as peer:
        with pytest.raises(PermanentError, match=r"cto@example\.org: 550") as caught:
            await notifier(email_class, peer, http).send(make_notification())
        assert "delivered to 2" in str(caught.value)
        (mail,) = peer.messages
        assert mail.rcpt_tos == ("oncall@example.com", "payments@example.com")


async def test_every_recipient_refused_is_permanent(email_class: type[Notifier], http: httpx.AsyncClient) -> None:
    with SmtpPeer(refuse=["nobody@example.com"]) as peer, pytest.raises(PermanentError, match="refused every recipient"):
        await notifier(email_class, peer, http, to=["nobody@example.com"]).send(make_notification())


async def test_an_untrusted_certificate_is_permanent(
    email_class: type[Notifier], smtp_starttls: SmtpPeer, http: httpx.AsyncClient
) -> None:
    sender = notifier(email_class, smtp_starttls, http, ca_file=None)  # the system's CAs do not know the test CA
    with pytest.raises(PermanentError, match="certificate is not trusted"):
        await sender.send(make_notification())
    await notifier(email_class, smtp_starttls, http, ca_file=None, insecure_skip_verify=True).send(make_notification())
    assert len(smtp_starttls.messages) == 1


async def test_starttls_required_but_not_offered_is_permanent(
    email_class: type[Notifier], smtp_plain: SmtpPeer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentError, match="STARTTLS"):
        await notifier(email_class, smtp_plain, http, tls="starttls").send(make_notification())
    assert smtp_plain.messages == []


def _configured(tmp_path: Path, peer: SmtpPeer, http: httpx.AsyncClient, *, ca_file: bool = True) -> Notifier:
    """The email receiver as ``alertd.toml`` gives it: the password in a file, the private CA next to the file."""
    shutil.copy(peer.ca_file, tmp_path / "smtp-ca.pem")
    (tmp_path / "smtp-password").write_text(peer.password + "\n")
    trust = 'ca_file = "smtp-ca.pem"\n' if ca_file else ""
    cfg = write(tmp_path / "alertd.toml", OFFLINE + f"""
[route]
receiver = "mail"
[receivers.mail]
type = "email"
to = ["oncall@example.com"]
from = "alertd <alertd@example.com>"
smarthost = "{peer.smarthost}"
tls = "{peer.tls}"
username = "{peer.username}"
password_file = "smtp-password"
""" + trust)
    loaded = load_config(cfg)
    return make_notifiers(loaded, http, SystemClock())["mail"]


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_a_private_ca_from_the_configuration_file(
    request: pytest.FixtureRequest, tmp_path: Path, http: httpx.AsyncClient, tls: str
) -> None:
    peer: SmtpPeer = request.getfixturevalue(f"smtp_{tls}")
    sender = _configured(tmp_path, peer, http)
    assert sender.settings.ca_file == str(tmp_path / "smtp-ca.pem")  # kept as ca_file, relative to the config file
    await sender.send(make_notification())
    (mail,) = peer.messages
    assert mail.tls and mail.login == peer.username  # verified TLS, then the password from the file


async def test_without_the_private_ca_the_server_is_not_trusted(
    tmp_path: Path, smtp_starttls: SmtpPeer, http: httpx.AsyncClient
) -> None:
    sender = _configured(tmp_path, smtp_starttls, http, ca_file=False)
    with pytest.raises(PermanentError, match=r"the server's certificate is not trusted \(.+\); see ca_file"):
        await sender.send(make_notification())
    assert smtp_starttls.messages == []
