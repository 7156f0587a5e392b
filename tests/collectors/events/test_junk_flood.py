"""`alertd run` against a flood of junk on celeryev (about 1,000 messages a second, published with kombu) with
real failures from Celery's EventDispatcher among it: none of the real ones is lost, the payment failure is
paged, every piece of junk is counted, and the event stream never reconnects."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from celery import Celery
from celery.events import get_exchange
from kombu import Producer

from alertd.collectors.events import validate
from tests.alertd_process import AlertdProcess, until_seen
from tests.collectors.events.junk import HOST, junk_messages, send_failure
from tests.e2e.conftest import metrics, write_config
from tests.peers.pagerduty import PagerDutyPeer
from tests.services import RedisServer, wait_until

pytestmark = pytest.mark.integration

RATE = 1000  # junk messages a second
FLOOD = 4.0  # seconds
FAILURES = 40
HUGE_EVERY = 1.0  # seconds between 2 MB bodies: at RATE they would be 2 GB/s, not a test of alertd


class Flood(threading.Thread):
    """Publishes junk at RATE for FLOOD seconds, each kind in turn; counts what it sent by reason."""

    def __init__(self, app: Celery) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.sent: Counter[str | None] = Counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                producer = Producer(conn.default_channel, exchange=get_exchange(conn, name="celeryev"))
                start = time.monotonic()
                last_huge = -HUGE_EVERY
                n = 0
                while (elapsed := time.monotonic() - start) < FLOOD:
                    kinds = junk_messages(time.time())
                    reason, publish = kinds[n % len(kinds)]
                    n += 1
                    if reason == validate.TOO_LARGE:
                        if elapsed - last_huge < HUGE_EVERY:
                            continue
                        last_huge = elapsed
                    producer.publish(routing_key="task.failed", **publish)
                    self.sent[reason] += 1
                    ahead = self.sent.total() / RATE - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)  # pacing the publisher, not waiting for a condition
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_junk_at_1000_a_second_loses_no_real_failure_and_the_payment_still_pages(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    app = Celery("flood", broker=redis_server.url, set_as_current=False)
    with PagerDutyPeer() as pagerduty, AlertdProcess(
        write_config(tmp_path, redis_server.url, "celery", pagerduty.enqueue_url)
    ) as alertd, app.connection_for_write() as conn:
        alertd.started()
        url = alertd.url
        dispatcher = app.events.Dispatcher(conn, hostname=HOST, enabled=True, buffer_while_offline=False)

        def failed() -> float:
            return metrics(url).get('alertd_events_total{type="task-failed"}', 0.0)

        # The subscription takes effect a moment after the stream connects: one failure, resent until seen.
        until_seen(lambda: dispatcher.send("task-failed", uuid="u-prime", exception="Boom()"), lambda: failed() >= 1)
        baseline = failed()

        flood = Flood(app)
        flood.start()
        for n in range(FAILURES):
            send_failure(app, conn, n, "tasks.payment.capture" if n == FAILURES // 2 else f"tasks.report.build_{n}")
            time.sleep(FLOOD / FAILURES)  # spreading the real failures over the flood
        flood.join(FLOOD + 30)
        assert flood.error is None and not flood.is_alive()

        wait_until(lambda: failed() - baseline == FAILURES, timeout=15, what=f"{FAILURES} real failures counted")
        expected = {r: n for r, n in flood.sent.items() if r is not None}
        wait_until(lambda: all(metrics(url).get(f'alertd_events_malformed_total{{reason="{r}"}}') == n
                               for r, n in expected.items()), timeout=15, what=f"junk counted as {expected}")
        pagerduty.wait_for(1, timeout=10)
        seen = metrics(url)
        assert seen.get('alertd_events_total{type="other"}') == flood.sent[None]
        assert "Payment task tasks.payment.capture failed: CardDeclined" in pagerduty.events[0]["payload"]["summary"]
        out = alertd.output()
        assert "event stream from" not in out and "reconnected" not in out, "the junk cost a reconnection"
        print(f"\njunk sent {flood.sent.total()} in {FLOOD:g}s ({dict(flood.sent)}); "
              f"{FAILURES} of {FAILURES} real failures counted, the payment failure paged")
        assert alertd.stop() == 0
