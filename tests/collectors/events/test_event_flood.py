"""`alertd run` against a flood of real events, about 1,000 a second from Celery's own EventDispatcher sent the
way a prefork worker sends them (task events 24 to a message, heartbeats at once), with a payment failure from
another worker in the middle: the failure is paged, every event is counted, none is counted lost and the
stream never reconnects."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from celery import Celery

from alertd.collectors.events.clocks import CLOCK_SLACK
from tests.alertd_process import AlertdProcess, until_seen
from tests.collectors.events.junk import HOST, send_failure
from tests.e2e.conftest import metrics, write_config
from tests.peers.pagerduty import PagerDutyPeer
from tests.services import RedisServer, wait_until

pytestmark = pytest.mark.integration

RATE = 1000  # events a second
FLOOD = 4.0  # seconds
HEARTBEAT_EVERY = 0.5  # seconds


class Flood(threading.Thread):
    """One busy worker: tasks received, started and succeeded at RATE events a second for FLOOD seconds."""

    def __init__(self, broker_url: str) -> None:
        super().__init__(daemon=True)
        self.app = Celery("flood", broker=broker_url, set_as_current=False)  # its own event clock
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                d = self.app.events.Dispatcher(conn, hostname="busy@flood", enabled=True, buffer_while_offline=False,
                                               buffer_group=["task"], buffer_limit=24)
                start = time.monotonic()
                next_heartbeat = 0.0
                n = 0
                while (elapsed := time.monotonic() - start) < FLOOD:
                    if elapsed >= next_heartbeat:
                        d.send("worker-heartbeat", freq=HEARTBEAT_EVERY, active=8, processed=n, loadavg=[1, 1, 1])
                        next_heartbeat += HEARTBEAT_EVERY
                        self.sent += 1
                    uuid = f"f-{n}"
                    d.send("task-received", uuid=uuid, name=f"tasks.report.build_{n % 20}", args="()",
                           kwargs="{}", retries=0)
                    d.send("task-started", uuid=uuid)
                    d.send("task-succeeded", uuid=uuid, result="None", runtime=0.01)
                    n += 1
                    self.sent += 3
                    ahead = self.sent / RATE - (time.monotonic() - start)
                    if ahead > 0:
                        d.flush()  # a prefork worker flushes on its next loop turn
                        time.sleep(ahead)  # pacing the publisher, not waiting for a condition
                d.flush()
                d.send("worker-heartbeat", freq=HEARTBEAT_EVERY, active=0, processed=n, loadavg=[1, 1, 1])
                self.sent += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_a_payment_failure_in_a_flood_of_real_events_is_paged_and_nothing_is_lost(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    app = Celery("payments", broker=redis_server.url, set_as_current=False)
    with PagerDutyPeer() as pagerduty, AlertdProcess(
        write_config(tmp_path, redis_server.url, "celery", pagerduty.enqueue_url)
    ) as alertd, app.connection_for_write() as conn:
        alertd.started()
        url = alertd.url

        def counted() -> float:
            return sum(v for k, v in metrics(url).items() if k.startswith("alertd_events_total{"))

        dispatcher = app.events.Dispatcher(conn, hostname=HOST, enabled=True, buffer_while_offline=False)
        # The subscription takes effect a moment after the stream connects: one event, resent until seen.
        until_seen(lambda: dispatcher.send("task-started", uuid="u-prime"), lambda: counted() >= 1)
        baseline = counted()

        idle_at = time.time()
        send_failure(app, conn, 0, "tasks.payment.refund")
        pagerduty.wait_for(1, timeout=10)
        paged_idle = time.time() - idle_at

        flood = Flood(redis_server.url)
        flood.start()
        wait_until(lambda: flood.sent >= RATE * FLOOD / 2, timeout=FLOOD * 2, interval=0.01, what="mid-flood")
        failed_at = time.time()
        send_failure(app, conn, 1, "tasks.payment.capture")
        pagerduty.wait_for(2, timeout=10)
        paged_flood = time.time() - failed_at
        flood.join(FLOOD + 30)
        assert flood.error is None and not flood.is_alive()

        wait_until(lambda: counted() - baseline == flood.sent + 4, timeout=15,
                   what=f"{flood.sent} flood events and the failures' 4 counted")
        assert "Payment task tasks.payment.capture failed: CardDeclined" in pagerduty.events[1]["payload"]["summary"]

        # A known gap after the flood: once it is counted, every gap the flood left has settled before it, so
        # the count is this gap's alone. The sender's clock first catches up with the flood's last heartbeat,
        # as gossip would have it, so that gossip cannot explain the gap.
        app.clock.adjust(flood.app.clock.value)
        dispatcher.send("task-started", uuid="u-before-gap")
        before = app.clock.value
        app.clock.adjust(before + 30)
        dispatcher.send("task-started", uuid="u-after-gap")
        missing = app.clock.value - before - 1
        wait_until(lambda: metrics(url).get("alertd_events_lost_total", 0) > 0, timeout=10, what="the gap counted")
        seen = metrics(url)
        assert seen.get("alertd_events_lost_total") == missing - CLOCK_SLACK
        assert seen.get("alertd_event_stream_reconnects_total") == 0
        assert "may not have arrived" in alertd.output()  # logged, and (an estimate) never paged
        assert "AlertdEventsLost" not in "".join(str(e) for e in pagerduty.events)
        assert "reconnected" not in alertd.output()
        print(f"\n{flood.sent} events in {FLOOD:g}s, none lost; payment failure paged {1000 * paged_idle:.0f} ms "
              f"after it was sent when idle, {1000 * paged_flood:.0f} ms in the flood")
        assert alertd.stop() == 0
