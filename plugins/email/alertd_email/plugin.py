"""Email through an SMTP smarthost: a notification in, one multipart message to every recipient (or an error) out."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from importlib import resources
from typing import Literal, NoReturn, Self

import aiosmtplib
from jinja2 import TemplateError
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from alertd.errors import PermanentError, RetryableError
from alertd.hookspecs import hookimpl
from alertd.notifiers.base import Notification, Notifier, ReceiverSettings
from alertd.notifiers.templates import render_templates
from alertd.notifiers.tls import CaFile, certificate_error, client_context
from alertd.templating.env import make_environment
from alertd_email.message import address, build_message

MAX_REPLY = 500


def _template(name: str) -> str:
    return resources.files("alertd_email").joinpath("templates", name).read_text(encoding="utf-8")


class EmailSettings(ReceiverSettings):
    """A ``type = "email"`` receiver."""

    # ``from`` is a keyword in Python; the file says ``from``. A validation error never echoes the password.
    model_config = ConfigDict(hide_input_in_errors=True, populate_by_name=True)

    to: list[str] = Field(min_length=1, description='recipients, e.g. ["oncall@example.com", "Ops <ops@example.com>"]')
    from_: str = Field(alias="from", description='the sender, e.g. "alertd <alertd@example.com>"')
    smarthost: str = Field(description='the SMTP server as host:port, e.g. "smtp.example.com:587"')
    tls: Literal["starttls", "implicit", "none"] = Field(
        "starttls", description="starttls (port 587), implicit (TLS from the first byte, port 465) or none"
    )
    username: str | None = Field(None, description="log in with this user (after TLS is up)")
    password: SecretStr | None = Field(None, description="the user's password (a secret)")
    subject: str | None = Field(None, description="a Jinja template for the subject (the same as templates.subject)")
    hello: str | None = Field(None, description="the name given in EHLO; default: this host's name")
    ca_file: CaFile = Field(
        None, description="trust the CA certificates in this PEM file instead of the system's (a private CA)"
    )
    insecure_skip_verify: bool = Field(False, description="do not verify the server's certificate (testing only)")

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for recipient in value:
            if "@" not in address(recipient):
                raise ValueError(f"{recipient!r} is not an email address")
        return value

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str) -> str:
        if "@" not in address(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("smarthost")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"smarthost must be host:port, e.g. smtp.example.com:587, not {value!r}")
        return value

    @model_validator(mode="after")
    def _subject_and_login(self) -> Self:
        if self.subject is not None:
            if "subject" in self.templates:
                raise ValueError("give subject or templates.subject, not both")
            # The pipeline renders ``templates``; the subject setting is one of them under another name.
            self.templates = {**self.templates, "subject": self.subject}
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username")
        return self

    @property
    def host(self) -> str:
        return self.smarthost.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.smarthost.rpartition(":")[2])


class EmailNotifier(Notifier):
    """Sends one email per notification, with a plain-text and an HTML part, to every recipient at once."""

    type_name = "email"
    Settings = EmailSettings
    templates = {"subject": _template("subject.j2"), "text": _template("text.j2"), "html": _template("html.j2")}
    settings: EmailSettings

    def destination(self) -> str:
        # The smarthost is what a busy answer speaks for; no budget by default (set the receiver's rate_limit).
        return f"smtp:{self.settings.smarthost}"

    async def send(self, notification: Notification) -> None:
        settings = self.settings
        texts = notification.rendered or self._render_defaults(notification)
        message = build_message(notification, texts, sender=settings.from_, to=settings.to)
        recipients = [address(r) for r in settings.to]
        smtp = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.tls == "implicit",
            start_tls=settings.tls == "starttls",
            tls_context=(
                client_context(settings.ca_file, verify=not settings.insecure_skip_verify) if settings.tls != "none" else None
            ),
            local_hostname=settings.hello,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            timeout=settings.timeout or None,
        )
        try:
            async with asyncio.timeout(settings.timeout or None):
                await smtp.connect()  # and STARTTLS, and AUTH when a username is set
                refused, _ = await smtp.send_message(message, sender=address(settings.from_), recipients=recipients)
        except Exception as exc:
            self._raise(exc)
        finally:
            await _close(smtp)
        if refused:
            # Delivered to the others: another attempt would send them a duplicate, so this is final.
            reasons = "; ".join(f"{rcpt}: {reply.code} {reply.message}" for rcpt, reply in refused.items())
            raise PermanentError(f"{self._where}: delivered to {len(recipients) - len(refused)}, refused {reasons}")

    @property
    def _where(self) -> str:
        return f"SMTP {self.settings.smarthost}"

    def _raise(self, exc: Exception) -> NoReturn:
        """SMTP's own answer decides where there is one: 4xx try again, 5xx do not."""
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            replies = exc.recipients
            reasons = "; ".join(f"{r.recipient}: {r.code} {_clip(r.message)}" for r in replies)
            error: type[RetryableError | PermanentError] = (
                RetryableError if any(400 <= r.code < 500 for r in replies) else PermanentError
            )
            raise error(f"{self._where} refused every recipient: {reasons}") from None
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            message = f"{self._where} answered {exc.code} {_clip(exc.message)}"
            if 400 <= exc.code < 500:
                raise RetryableError(message) from None
            raise PermanentError(message) from None
        problem = certificate_error(exc)
        if problem is not None:
            raise PermanentError(
                f"{self._where}: the server's certificate is not trusted ({problem.verify_message}); see ca_file"
            ) from None
        if isinstance(exc, TimeoutError | aiosmtplib.SMTPTimeoutError):
            raise RetryableError(f"{self._where} did not answer within {self.settings.timeout:g}s") from None
        if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected | OSError):
            raise RetryableError(f"{self._where} unreachable: {_clip(str(exc))}") from None
        if isinstance(exc, aiosmtplib.SMTPException):
            # No STARTTLS, no AUTH, no SMTPUTF8 where the settings need it: the server will not change its mind.
            raise PermanentError(f"{self._where}: {_clip(str(exc))}") from None
        raise exc

    def _render_defaults(self, notification: Notification) -> Mapping[str, str]:
        # Only when used directly: the pipeline hands over ``rendered`` (or a minimal message of its own).
        try:
            return render_templates(make_environment(), self.templates | self.settings.templates, notification)
        except TemplateError as exc:
            raise PermanentError(f"rendering the email templates failed: {exc}") from exc


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REPLY else text[:MAX_REPLY] + "…"


async def _close(smtp: aiosmtplib.SMTP) -> None:
    if not smtp.is_connected:
        return
    try:
        await asyncio.wait_for(smtp.quit(), timeout=1.0)
    except Exception:  # the message is already accepted (or the error already decided); QUIT is a courtesy
        smtp.close()


@hookimpl
def register_notifiers() -> list[type[Notifier]]:
    return [EmailNotifier]
