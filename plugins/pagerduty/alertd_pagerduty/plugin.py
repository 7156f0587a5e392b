"""PagerDuty Events API v2: a notification in, one trigger/acknowledge/resolve event (or an error) out."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from importlib.metadata import version

from jinja2 import TemplateError
from pydantic import ConfigDict, Field, SecretStr, field_validator

from alertd.errors import PermanentError
from alertd.hookspecs import hookimpl
from alertd.notifiers.base import Notification, Notifier, RateBudget, ReceiverSettings, destination_key
from alertd.notifiers.http import post, public_url, raise_for_status
from alertd.notifiers.templates import render_templates
from alertd.templating.env import make_environment
from alertd_pagerduty.event import build_event, encode, event_action

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
USER_AGENT = f"alertd-pagerduty/{version('alertd-pagerduty')}"


def _template(name: str) -> str:
    return resources.files("alertd_pagerduty").joinpath("templates", name).read_text(encoding="utf-8")


class PagerDutySettings(ReceiverSettings):
    """A ``type = "pagerduty"`` receiver."""

    # ``class`` is a keyword in Python; the file says ``class``. A validation error never echoes the key.
    model_config = ConfigDict(hide_input_in_errors=True, populate_by_name=True)

    routing_key: SecretStr = Field(description="the integration key of an Events API v2 integration (32 characters)")
    url: str = Field(EVENTS_URL, description="the Events API v2 endpoint (an EU account: events.eu.pagerduty.com)")
    source: str = Field("alertd", description="payload.source: the affected system (a host name, a cluster)")
    component: str | None = Field(None, description="payload.component: the affected part, e.g. payments-worker")
    group: str | None = Field(None, description="payload.group: a logical grouping, e.g. celery")
    class_: str | None = Field(None, alias="class", description="payload.class: the kind of event, e.g. queue")

    @field_validator("routing_key")
    @classmethod
    def _thirty_two_characters(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if len(key) != 32 or not key.isalnum():
            raise ValueError("routing_key must be the 32-character integration key of an Events API v2 integration")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("url must be an https:// URL")
        return value


class PagerDutyNotifier(Notifier):
    """Sends one Events API v2 event per notification; one alert group is one PagerDuty incident."""

    type_name = "pagerduty"
    Settings = PagerDutySettings
    templates = {"summary": _template("summary.j2")}
    # The Events API v2 takes about 120 events a minute per routing key: 110 a minute and a burst of 10 stay
    # under it in any 60-second window.
    rate_budget = RateBudget(rate=110 / 60, burst=10)
    settings: PagerDutySettings

    def destination(self) -> str:
        return destination_key("pagerduty", self.settings.url, self.settings.routing_key.get_secret_value())

    async def send(self, notification: Notification) -> None:
        # Acknowledge and resolve carry no text: a broken template must not keep an incident open.
        needs_text = event_action(notification) == "trigger" and not notification.rendered
        texts = self._render_defaults(notification) if needs_text else notification.rendered
        routing_key = self.settings.routing_key.get_secret_value()
        event = build_event(
            notification,
            texts,
            routing_key=routing_key,
            source=self.settings.source,
            component=self.settings.component,
            group=self.settings.group,
            class_=self.settings.class_,
        )
        service = f"PagerDuty {public_url(self.settings.url)}"
        response = await post(
            self.context.http,
            self.settings.url,
            encode(event),
            {"Content-Type": "application/json", "User-Agent": USER_AGENT},
            timeout=self.settings.timeout,
            service=service,
            secrets=(routing_key,),
        )
        # 202 "Event processed"; 400 "Invalid event" with the reasons; 429 and 5xx are worth another try.
        raise_for_status(response, service=service, secrets=(routing_key,), now=self.context.clock.now())

    def _render_defaults(self, notification: Notification) -> Mapping[str, str]:
        # Only when used directly: the pipeline hands over ``rendered`` (or a minimal message of its own).
        try:
            return render_templates(make_environment(), self.templates | self.settings.templates, notification)
        except TemplateError as exc:
            raise PermanentError(f"rendering the PagerDuty templates failed: {exc}") from exc


@hookimpl
def register_notifiers() -> list[type[Notifier]]:
    return [PagerDutyNotifier]
