"""The outbox: written before the send, marked delivered after, and resumed after a restart or a kill -9."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from alertd.errors import RetryableError
from alertd.models import AlertState
from alertd.notifiers.base import Notification
from alertd.notify.outbox import decode_notification, encode_notification
from alertd.state.base import OUTBOX_DELIVERED, OUTBOX_PENDING
from alertd.state.sqlite import SQLiteStateStore
from alertd.testing import RecordingNotifier, VirtualClock, make_alert, make_notification
from tests.notify.helpers import START, harness

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, Any] = {
    "route": {"receiver": "ops", "group_by": ["alertname"], "group_wait": "0s", "group_interval": "5m",
              "routes": [{"matchers": ['team="payments"'], "receiver": "pager"}]},
}


def test_payload_round_trip() -> None:
    alerts = [
        make_alert(name="A", labels={"queue": "fila-é", "emoji": "🔥"}, value=math.inf, starts_at=1.5),
        make_alert(name="B", state=AlertState.RESOLVED, starts_at=1.0, ends_at=2.0, value=None,
                   generator_url="http://x/alerts/1", extra={"k": "v"}),
    ]
    n = make_notification(alerts, rendered={"text": "hello\nworld"}, truncated_alerts=3, external_url="http://x")
    assert decode_notification(encode_notification(n)) == n


class Blocking(RecordingNotifier):
    """An endpoint that never answers: the send is in flight when the process goes away."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.entered = asyncio.Event()

    async def send(self, notification: Notification) -> None:
        self.attempts.append(notification)
        self.entered.set()
        await asyncio.sleep(3600)


async def test_a_restart_delivers_what_was_left_and_repeats_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    clock = VirtualClock(START)
    store = SQLiteStateStore(db)
    pager = Blocking("pager")
    first = harness(SETTINGS, store=store, clock=clock, notifiers={"pager": pager})
    first.fire("QueueBacklog")
    paid = first.fire("PaymentTaskFailed", team="payments")
    task = asyncio.create_task(first.tick())
    await pager.entered.wait()
    task.cancel()  # the process stops with the pager's send in flight
    await asyncio.gather(task, return_exceptions=True)
    assert len(first["ops"].sent) == 1
    [pending] = store.outbox_pending()
    assert pending.receiver == "pager" and pending.status == OUTBOX_PENDING
    store.close()

    clock.advance(30)
    store = SQLiteStateStore(db)
    second = harness(SETTINGS, store=store, clock=clock)
    assert second.pipeline.resume() == 1
    # The rule engine reports the same alerts again after its own restart.
    second.pipeline.put(list(first.alerts.values()))
    await second.at(3600)
    assert [n.id for n in second["pager"].sent] == [pending.id]
    assert second["pager"].sent[0].alerts[0].fingerprint == paid.fingerprint
    assert second["ops"].sent == [], "what was delivered before the restart is not delivered again"
    assert store.outbox_pending() == []
    assert store.outbox_get(pending.id).status == OUTBOX_DELIVERED  # type: ignore[union-attr]
    store.close()


async def test_retries_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    clock = VirtualClock(START)
    store = SQLiteStateStore(db)
    first = harness(SETTINGS, store=store, clock=clock,
                    notifiers={"ops": RecordingNotifier("ops").fail_forever(RetryableError("503", retry_after=60))})
    first.fire("QueueBacklog")
    await first.at(200)
    [row] = store.outbox_pending()
    assert row.attempts >= 3 and row.last_error == "503"
    store.close()
    store = SQLiteStateStore(db)
    second = harness(SETTINGS, store=store, clock=clock)
    second.pipeline.resume()
    await second.at(400)
    assert [n.id for n in second["ops"].sent] == [row.id]
    store.close()


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from alertd.state.sqlite import SQLiteStateStore
    from alertd.testing import VirtualClock
    from tests.notify.helpers import START, harness
    from tests.notify.test_outbox import SETTINGS, Blocking

    async def main():
        store = SQLiteStateStore(sys.argv[1])
        pager = Blocking("pager")
        h = harness(SETTINGS, store=store, clock=VirtualClock(START), notifiers={"pager": pager})
        h.fire("QueueBacklog")
        for i in range(3):
            h.fire("PaymentTaskFailed", team="payments", task=str(i))
        asyncio.ensure_future(h.pipeline.serve(asyncio.Event()))  # as the daemon runs it: a lane per receiver
        await pager.entered.wait()
        print("in flight", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_process_killed_with_notifications_in_its_outbox_delivers_them_after_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), timeout=30)  # type: ignore[union-attr]
        assert line.strip() == "in flight", child.stderr.read() if child.stderr else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    store = SQLiteStateStore(db)
    pending = store.outbox_pending()
    assert [r.receiver for r in pending] == ["pager"]
    h = harness(SETTINGS, store=store, clock=VirtualClock(START + 5))
    h.pipeline.resume()
    h.pipeline.put([make_alert(name="QueueBacklog", starts_at=START)])
    await h.at(600)
    assert [n.id for n in h["pager"].sent] == [pending[0].id]
    assert len(h["pager"].sent[0].alerts) == 3
    assert h["ops"].sent == [], "QueueBacklog was delivered before the kill"
    store.close()
