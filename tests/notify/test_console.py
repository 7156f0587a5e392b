"""The built-in console notifier: one readable block per notification, on stdout or appended to a file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from alertd.errors import RetryableError
from alertd.models import AlertState
from alertd.notifiers.console import ConsoleNotifier, ConsoleSettings
from alertd.testing import make_alert, make_notification, make_notifier_context

NOTIFICATION = make_notification(
    [
        make_alert(name="CriticalQueueBacklog", labels={"queue": "critical", "severity": "critical"},
                   annotations={"summary": "Critical queue depth exceeds 500"}),
        make_alert(name="CriticalQueueBacklog", labels={"queue": "urgent", "severity": "critical"},
                   state=AlertState.RESOLVED, annotations={}),
    ],
    receiver="console",
    group_labels={"alertname": "CriticalQueueBacklog"},
    truncated_alerts=3,
)


async def test_prints_a_readable_block(capsys: pytest.CaptureFixture[str]) -> None:
    notifier = ConsoleNotifier("console", ConsoleSettings(), make_notifier_context())
    await notifier.send(NOTIFICATION)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "=== [FIRING] CriticalQueueBacklog to console (first notification) ===",
        'group: alertname="CriticalQueueBacklog"',
        "- [firing] CriticalQueueBacklog (critical): Critical queue depth exceeds 500",
        "- [resolved] CriticalQueueBacklog (critical): alertname=CriticalQueueBacklog, queue=urgent, severity=critical",
        "... and 3 more",
    ]


async def test_prints_what_the_pipeline_rendered_and_appends_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "notifications.log"
    notifier = ConsoleNotifier("console", ConsoleSettings(path=str(path)), make_notifier_context())
    await notifier.send(replace(NOTIFICATION, rendered={"text": "one"}))
    await notifier.send(replace(NOTIFICATION, rendered={"text": "two\n"}))
    assert path.read_text() == "one\ntwo\n"


async def test_an_unwritable_file_is_retryable(tmp_path: Path) -> None:
    notifier = ConsoleNotifier("console", ConsoleSettings(path=str(tmp_path / "missing" / "x.log")),
                               make_notifier_context())
    with pytest.raises(RetryableError, match="cannot append"):
        await notifier.send(NOTIFICATION)
