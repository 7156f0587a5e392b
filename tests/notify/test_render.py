"""Rendering: receiver templates override the notifier's, the context, and a template that fails at run time."""

from __future__ import annotations

from typing import ClassVar

from alertd.notifiers.base import ReceiverSettings
from alertd.notify.render import TEMPLATE_FAILED
from alertd.testing import RecordingNotifier, make_alert
from tests.notify.helpers import harness

ROUTE = {"receiver": "chat", "group_wait": "0s"}


class ChatNotifier(RecordingNotifier):
    type_name = "chat"
    templates: ClassVar[dict[str, str]] = {
        "title": "[{{ status | upper }}] {{ group_labels.alertname }}",
        "text": "{% for a in alerts %}{{ a.annotations.summary }}{% endfor %}",
    }


def chat(templates: dict[str, str] | None = None) -> ChatNotifier:
    return ChatNotifier("chat", ReceiverSettings(templates=templates or {}))


async def test_defaults_are_rendered_and_the_receiver_overrides_by_name() -> None:
    h = harness({"route": ROUTE}, notifiers={"chat": chat({"text": "{{ reason }}: {{ firing | length }} firing"})})
    h.fire("Backlog", queue="critical")
    await h.tick()
    [n] = h["chat"].sent
    assert n.rendered == {"title": "[FIRING] Backlog", "text": "first notification: 1 firing"}


async def test_a_failing_template_still_sends_a_minimal_message_and_raises_an_internal_alert() -> None:
    h = harness({"route": ROUTE}, notifiers={"chat": chat({"text": "{{ alerts[0].labels.nope }}"})})
    h.fire("PaymentTaskFailed", task_name="tasks.payment.charge")
    await h.tick()
    [n] = h["chat"].sent
    assert n.rendered["title"] == "[FIRING] PaymentTaskFailed"
    assert "PaymentTaskFailed" in n.rendered["text"]
    assert "the 'text' template of receiver 'chat' failed: UndefinedError" in n.rendered["text"]
    metrics = h.pipeline.metrics
    assert metrics.value("alertd_template_failures_total", receiver="chat", template="text") == 1
    [internal] = h.pipeline.internal.firing()
    assert internal.labels["alertname"] == TEMPLATE_FAILED
    assert internal.labels["template"] == "text"


async def test_a_template_that_works_again_resolves_its_internal_alert() -> None:
    h = harness({"route": ROUTE}, notifiers={"chat": chat({"text": "{{ alerts[0].labels.queue }}"})})
    h.fire("NoQueue")
    await h.tick()
    assert len(h.pipeline.internal.firing()) == 1
    h.fire("WithQueue", queue="q")
    await h.tick()
    assert h.pipeline.internal.firing() == []
    assert [a.resolved for a in h.pipeline.internal.alerts()] == [True]


async def test_long_groups_are_truncated_firing_first() -> None:
    h = harness({"route": {**ROUTE, "group_by": ["alertname"]}, "notify": {"max_alerts": 10}})
    h.fire_many([make_alert(name="Storm", labels={"i": str(i)}, starts_at=h.now) for i in range(25)])
    await h.tick()
    [n] = h["chat"].sent
    assert len(n.alerts) == 10 and n.truncated_alerts == 15


async def test_rendered_text_is_cut_to_the_limit() -> None:
    h = harness({"route": ROUTE, "notify": {"max_rendered_length": 100}},
                notifiers={"chat": chat({"text": "{{ 'x' * 1000 }}"})})
    h.fire("Long")
    await h.tick()
    assert len(h["chat"].sent[0].rendered["text"]) == 100
    assert h["chat"].sent[0].rendered["text"].endswith("…")
