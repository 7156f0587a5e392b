"""Webhooks: a notification in, Alertmanager's JSON payload POSTed (signed, if asked) or an error out."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from importlib.metadata import version
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
from jinja2 import TemplateError
from pydantic import ConfigDict, Field, SecretStr, field_validator

from alertd.config.secrets import SECRET
from alertd.errors import PermanentError
from alertd.hookspecs import hookimpl
from alertd.notifiers.base import Notification, Notifier, NotifierContext, ReceiverSettings, destination_key
from alertd.notifiers.http import post, public_url, raise_for_status
from alertd.notifiers.templates import render_templates
from alertd.notifiers.tls import CaFile, client_context
from alertd.templating.env import make_environment
from alertd_webhook.payload import build_payload

USER_AGENT = f"alertd-webhook/{version('alertd-webhook')}"
SECRET_PREFIX = "whsec_"
# Headers the notifier sets itself: the body's type and length, and the signature's three.
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "webhook-id", "webhook-timestamp", "webhook-signature"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class EndpointGone(PermanentError):
    """The endpoint answered 410 Gone: it was removed on purpose, and every later attempt will fail too.

    ``disable`` tells the pipeline to stop sending to this receiver and to raise an alert about it.
    """

    disable: ClassVar[bool] = True


class WebhookSettings(ReceiverSettings):
    """A ``type = "webhook"`` receiver."""

    # A validation error must not echo a header value or the signing secret back into a log.
    model_config = ConfigDict(hide_input_in_errors=True)

    url: str = Field(
        description="where to POST (a secret: its path and query may hold a token, and are never shown)",
        json_schema_extra=SECRET,
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description='extra request headers, e.g. {Authorization = "Bearer ${TOKEN}"} (secrets)'
    )
    signing_secret: SecretStr | None = Field(
        None, description="sign each request as Standard Webhooks do: whsec_ followed by a base64 key (a secret)"
    )
    max_alerts: int = Field(0, ge=0, description="send at most this many alerts (the rest are counted); 0: all")
    ca_file: CaFile = Field(
        None, description="an https url: trust the CA certificates in this PEM file instead of the system's (a private CA)"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or not urlsplit(value).hostname:
            raise ValueError("url must be an http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"the {name} header is set by the notifier")
            if "\r" in secret.get_secret_value() or "\n" in secret.get_secret_value():
                raise ValueError(f"the value of the {name} header has a line break")
        return value

    @field_validator("signing_secret")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing_key(value.get_secret_value())
        return value


def signing_key(secret: str) -> bytes:
    """The HMAC key in a ``whsec_`` secret; ValueError (naming no part of it) when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"signing_secret must start with {SECRET_PREFIX} followed by a base64 key")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"signing_secret must be {SECRET_PREFIX} followed by a base64 key") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("signing_secret's key must be 24 to 64 bytes (32 to 88 base64 characters)")
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks' ``webhook-signature``: v1, then base64(HMAC-SHA256 of "{id}.{timestamp}.{body}")."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest()).decode()


class WebhookNotifier(Notifier):
    """POSTs Alertmanager's webhook payload, so that receivers written for Alertmanager work unchanged."""

    type_name = "webhook"
    Settings = WebhookSettings
    # No templates of its own: the payload is data. A receiver's ``templates`` arrive rendered in alertd.rendered.
    templates: ClassVar[dict[str, str]] = {}
    settings: WebhookSettings

    def __init__(self, name: str, settings: WebhookSettings, context: NotifierContext) -> None:
        super().__init__(name, settings, context)
        # With a private CA, a client of its own that trusts it (and only it); otherwise the shared one.
        self._http = httpx.AsyncClient(verify=client_context(settings.ca_file)) if settings.ca_file else context.http

    async def close(self) -> None:
        if self._http is not self.context.http:
            await self._http.aclose()

    def destination(self) -> str:
        # The URL is the endpoint a 429 speaks for; no budget by default (set the receiver's rate_limit).
        return destination_key("webhook", self.settings.url)

    async def send(self, notification: Notification) -> None:
        settings = self.settings
        rendered = notification.rendered or self._render(notification)
        payload = build_payload(notification, max_alerts=settings.max_alerts, rendered=rendered)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        custom = {name: value.get_secret_value() for name, value in settings.headers.items()}
        headers = {"Content-Type": "application/json"}
        if not any(name.lower() == "user-agent" for name in custom):
            headers["User-Agent"] = USER_AGENT
        headers |= custom
        if settings.signing_secret is not None:
            # The same webhook-id on every attempt of one notification: receivers deduplicate on it.
            timestamp = int(self.context.clock.now())
            headers["webhook-id"] = notification.id
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = signature(settings.signing_secret.get_secret_value(), notification.id, timestamp, body)

        service = f"webhook {public_url(settings.url)}"
        secrets = self._secrets()
        response = await post(
            self._http, settings.url, body, headers, timeout=settings.timeout, service=service, secrets=secrets
        )
        if response.status_code == 410:
            raise EndpointGone(f"{service} answered 410: the endpoint is gone; disable this receiver or fix its url")
        raise_for_status(response, service=service, secrets=secrets, now=self.context.clock.now())

    def _render(self, notification: Notification) -> Mapping[str, str]:
        templates = self.templates | self.settings.templates
        if not templates:
            return {}
        try:
            return render_templates(make_environment(), templates, notification)
        except TemplateError as exc:
            raise PermanentError(f"rendering the webhook templates failed: {exc}") from exc

    def _secrets(self) -> list[str]:
        parts = urlsplit(self.settings.url)
        found = [self.settings.url, parts.path, parts.query, parts.password or ""]
        found += [value.get_secret_value() for value in self.settings.headers.values()]
        if self.settings.signing_secret is not None:
            secret = self.settings.signing_secret.get_secret_value()
            found += [secret, secret.removeprefix(SECRET_PREFIX)]
        return found


@hookimpl
def register_notifiers() -> list[type[Notifier]]:
    return [WebhookNotifier]
