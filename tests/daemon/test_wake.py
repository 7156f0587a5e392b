"""An event wakes the rules that read it, and the pipeline hears only what those rules decided: a payment
failure must not cost a pass over thousands of unrelated firing alerts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from alertd.daemon import build
from alertd.models import Alert, Sample
from tests.helpers import OFFLINE, write

RULES = """
[[groups]]
name = "backlog"
[[groups.rules]]
name = "QueueDeep"
select = "queue_depth"
condition = "value > 10"
[[groups]]
name = "payments"
[[groups.rules]]
name = "PaymentFailed"
select = 'celery_task_failures_total{task_name="pay"}'
condition = "value > 0"
"""
CONFIG = OFFLINE + """
[receivers.console]
type = "console"
path = "pages.log"
[route]
receiver = "console"
group_by = ["alertname"]
"""


async def test_an_event_puts_only_the_alerts_of_the_rules_it_woke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "rules" / "r.toml", RULES)
    daemon = build(str(write(tmp_path / "alertd.toml", CONFIG)))
    try:
        now = time.time()
        daemon.ingest([Sample("queue_depth", {"queue": f"q{i}"}, 50.0, now) for i in range(2000)])
        daemon.evaluate_all()
        assert daemon.pipeline is not None
        puts: list[tuple[list[str], bool]] = []
        real = daemon.pipeline.put

        def spy(alerts: Iterable[Alert], *, complete: bool = False) -> None:
            alerts = list(alerts)
            puts.append(([a.labels["alertname"] for a in alerts], complete))
            real(alerts, complete=complete)

        monkeypatch.setattr(daemon.pipeline, "put", spy)
        daemon.wake([Sample("celery_task_failures_total", {"task_name": "pay"}, 1.0, time.time())])
        assert puts == [(["PaymentFailed"], False)]
        daemon.evaluate_all()  # the full pass still hands over every alert, and says it is complete
        names, complete = puts[-1]
        assert complete, puts[1:]
        assert names.count("QueueDeep") == 2000 and "PaymentFailed" in names, set(names)
    finally:
        await daemon.close()
