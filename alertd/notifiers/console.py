"""A notification in; one readable block of text on stdout (or appended to a file) out. For demos and tests."""

from __future__ import annotations

import sys
from pathlib import Path

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field

from alertd.errors import PermanentError, RetryableError
from alertd.notifiers.base import Notification, Notifier, ReceiverSettings
from alertd.notifiers.templates import render_templates

TEXT_TEMPLATE = """\
=== [{{ status | upper }}] {{ group_labels.alertname | default('alerts') }} \
to {{ receiver }} ({{ reason }}) ===
group: {% for k, v in group_labels | dictsort %}{{ k }}="{{ v }}"{% if not loop.last %}, {% endif %}{% endfor %}
{% for a in alerts -%}
- [{{ a.status }}] {{ a.name }}{% if a.severity %} ({{ a.severity }}){% endif %}: \
{{ a.annotations.summary | default(a.labels | dictsort | map('join', '=') | join(', ')) }}
{% endfor -%}
{% if truncated_alerts %}... and {{ truncated_alerts }} more
{% endif -%}
"""


class ConsoleSettings(ReceiverSettings):
    """A ``type = "console"`` receiver."""

    path: str | None = Field(None, description="append to this file instead of writing to stdout")


class ConsoleNotifier(Notifier):
    """Writes each notification as a block of text: the rendered ``text`` template."""

    type_name = "console"
    Settings = ConsoleSettings
    templates = {"text": TEXT_TEMPLATE}
    settings: ConsoleSettings

    async def send(self, notification: Notification) -> None:
        text = notification.rendered.get("text")
        if text is None:
            try:
                text = render_templates(_env(), self.templates | self.settings.templates, notification)["text"]
            except (TemplateError, KeyError) as exc:
                raise PermanentError(f"rendering the console text failed: {exc}") from exc
        block = text if text.endswith("\n") else text + "\n"
        if self.settings.path is None:
            sys.stdout.write(block)
            sys.stdout.flush()
            return
        try:
            with Path(self.settings.path).open("a", encoding="utf-8") as out:
                out.write(block)
        except OSError as exc:  # a full disk or a missing folder may be fixed: try again later
            raise RetryableError(f"cannot append to {self.settings.path}: {exc.strerror or exc}") from exc


def _env() -> SandboxedEnvironment:
    # Only when used directly: the pipeline hands over ``rendered``.
    from alertd.templating.env import make_environment

    return make_environment()
