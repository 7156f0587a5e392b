"""Slack incoming webhooks: a notification in, one Block Kit message posted (or a retryable/permanent error) out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from importlib.metadata import version
from urllib.parse import urlsplit

from jinja2 import TemplateError
from pydantic import ConfigDict, Field, SecretStr, field_validator

from alertd.errors import PermanentError
from alertd.hookspecs import hookimpl
from alertd.notifiers.base import Notification, Notifier, RateBudget, ReceiverSettings, destination_key
from alertd.notifiers.http import post, public_url, raise_for_status
from alertd.notifiers.templates import render_templates
from alertd.templating.env import make_environment
from alertd_slack.message import build_message

USER_AGENT = f"alertd-slack/{version('alertd-slack')}"


def _template(name: str) -> str:
    return resources.files("alertd_slack").joinpath("templates", name).read_text(encoding="utf-8")


class SlackSettings(ReceiverSettings):
    """A ``type = "slack"`` receiver."""

    # A validation error must not echo the webhook URL back into a log.
    model_config = ConfigDict(hide_input_in_errors=True)

    webhook_url: SecretStr = Field(description="the incoming webhook's URL (a secret: its path is the token)")
    channel: str | None = Field(None, description="override the webhook's channel, where Slack still allows it")
    username: str | None = Field(None, description="override the webhook's display name")
    icon_emoji: str | None = Field(None, description='override the webhook\'s icon, e.g. ":rotating_light:"')
    title_link: str | None = Field(None, description="where the message links to; default: alertd's external_url")

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("webhook_url must be an https:// URL")
        return value


class SlackNotifier(Notifier):
    """Posts one message per notification to a Slack incoming webhook."""

    type_name = "slack"
    Settings = SlackSettings
    templates = {"title": _template("title.j2"), "text": _template("text.j2")}
    # Slack: one message per second per incoming webhook, "short bursts" above it allowed.
    rate_budget = RateBudget(rate=1.0, burst=2)
    settings: SlackSettings

    def destination(self) -> str:
        return destination_key("slack", self.settings.webhook_url.get_secret_value())

    async def send(self, notification: Notification) -> None:
        texts = notification.rendered or self._render_defaults(notification)
        payload = build_message(
            notification,
            texts,
            title_link=self.settings.title_link or notification.external_url,
            channel=self.settings.channel,
            username=self.settings.username,
            icon_emoji=self.settings.icon_emoji,
        )
        url = self.settings.webhook_url.get_secret_value()
        service = f"Slack webhook {public_url(url)}"
        secrets = (url, urlsplit(url).path)
        response = await post(
            self.context.http,
            url,
            json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
            {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
            timeout=self.settings.timeout,
            service=service,
            secrets=secrets,
        )
        # Slack answers 200 "ok"; its errors are words such as "invalid_blocks" or "channel_is_archived".
        raise_for_status(response, service=service, secrets=secrets, now=self.context.clock.now())

    def _render_defaults(self, notification: Notification) -> Mapping[str, str]:
        # Only when used directly: the pipeline hands over ``rendered`` (or a minimal message of its own).
        try:
            return render_templates(make_environment(), self.templates | self.settings.templates, notification)
        except TemplateError as exc:
            raise PermanentError(f"rendering the Slack templates failed: {exc}") from exc


@hookimpl
def register_notifiers() -> list[type[Notifier]]:
    return [SlackNotifier]
