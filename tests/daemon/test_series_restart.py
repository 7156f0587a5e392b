"""Series that survive a restart: an alert that lives on recent samples (a payment failure seen through the
event stream) stays firing across a graceful restart, and pages once; after an outage longer than
outage_tolerance it resolves, as the docs say. The saved form is bounded, versioned and read defensively."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from alertd.daemon import Daemon, build
from alertd.models import AlertState, Sample
from alertd.series import persist
from alertd.series.store import SeriesStore
from tests.helpers import OFFLINE, write

RULES = """
[[groups]]
name = "tasks"
[[groups.rules]]
name = "PaymentTaskFailed"
select = 'celery_task_failures_total{task_name=~"tasks\\\\.payment\\\\..*"}'
function = "increase"
window = "5m"
aggregate = "sum"
by = ["task_name"]
condition = "value > 0"
"""


def config(tmp_path: Path, tolerance: str = "5m") -> Path:
    write(tmp_path / "rules" / "tasks.toml", RULES)
    state = f'url = "state.db"\noutage_tolerance = "{tolerance}"'
    return write(tmp_path / "alertd.toml", OFFLINE.replace('url = "memory://"', state) + f"""
[receivers.console]
type = "console"
path = "{tmp_path / 'pages.log'}"
[route]
receiver = "console"
group_wait = "0s"
group_by = ["alertname", "task_name"]
""")


def failure(count: float, at: float) -> Sample:
    return Sample("celery_task_failures_total", {"task_name": "tasks.payment.charge", "worker": "w1"}, count, at)


def state_of(daemon: Daemon) -> list[AlertState]:
    return [r.state for r in daemon.engine.alerts()]


async def first_run(cfg: Path) -> None:
    daemon = build(str(cfg))
    now = time.time()
    daemon.ingest([failure(0.0, now - 30), failure(1.0, now - 1)])
    daemon.evaluate_all()
    assert state_of(daemon) == [AlertState.FIRING]
    assert daemon.pipeline is not None
    await daemon.pipeline.tick()
    await daemon.stop(grace=5)


async def test_a_graceful_restart_keeps_an_event_driven_alert_firing_and_pages_once(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    await first_run(cfg)
    again = build(str(cfg))
    try:
        assert again.series.sample_count == 2
        again.evaluate_all()
        assert state_of(again) == [AlertState.FIRING]  # not resolved for want of the samples
        assert again.pipeline is not None
        await again.pipeline.tick()
    finally:
        await again.stop(grace=5)
    headers = [line for line in (tmp_path / "pages.log").read_text().splitlines() if line.startswith("===")]
    assert headers == ["=== [FIRING] PaymentTaskFailed to console (first notification) ==="]  # once, no resolve


async def test_after_a_longer_outage_the_series_are_not_restored_and_the_alert_resolves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path, tolerance="0s")
    await first_run(cfg)
    caplog.set_level(logging.INFO, "alertd.series.persist")
    again = build(str(cfg))
    try:
        assert again.series.sample_count == 0
        assert "more than [state] outage_tolerance" in caplog.text
        again.evaluate_all()
        assert state_of(again) == [AlertState.RESOLVED]
    finally:
        await again.stop(grace=5)


def test_the_saved_form_round_trips_and_is_bounded() -> None:
    store = SeriesStore(retention=600)
    now = time.time()
    for i in range(20):
        store.add_many([Sample("m", {"i": str(i)}, float(v), now - 300 + v + i) for v in range(10)])
    store.add_many([Sample("unread", {}, 1.0, now), Sample("m", {"i": "old"}, 1.0, now - 3600)])
    taken = persist.take(store, ["m"], now, max_samples=55)
    assert taken.left_out == 15 and len(taken.series) == 5  # the freshest series first; "old" is past retention
    assert sorted(int(labels["i"]) for _, labels, _, _ in taken.series) == [15, 16, 17, 18, 19]
    fresh = SeriesStore(retention=600)
    restored = persist.restore(fresh, persist.encode(taken), now + 10, tolerance=60)
    assert restored is not None and (restored.series, restored.samples) == (5, 50)
    assert [s.values for s in fresh.by_name("m") if s.labels["i"] == "19"] == [[float(v) for v in range(10)]]


@pytest.mark.parametrize("text, message", [
    ("not base85 at all ~~~", "not a saved series form"),
    (persist.base64.b85encode(persist.zlib.compress(b'{"format": 99, "saved_at": 1}')).decode(),
     "saved series of format 99, this alertd reads format 1"),
    (persist.base64.b85encode(persist.zlib.compress(b'{"format": 1}')).decode(), "saved series without a time"),
    (persist.base64.b85encode(persist.zlib.compress(b'{"format": 1, "saved_at": 1, "series": [["m", {}, [1], []]]}'))
     .decode(), "a saved series is malformed"),
])
def test_a_saved_form_that_does_not_fit_is_a_log_line_never_a_crash(
    text: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = SeriesStore()
    assert persist.restore(store, text, time.time(), tolerance=10**9) is None
    assert message in caplog.text and store.sample_count == 0
