"""One incident, end to end: a payment task raising in a real worker pages PagerDuty once and resolves once, and
neither a SIGTERM with a page still undelivered nor a SIGKILL in the middle makes a page go missing or twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.alertd_process import AlertdProcess, until_seen
from tests.e2e.conftest import actions, evaluations, firing, outbox, write_config
from tests.peers import Reply
from tests.peers.pagerduty import PagerDutyPeer
from tests.services import wait_until
from tests.workers import CeleryWorker

pytestmark = pytest.mark.integration


def fail_payment(worker: CeleryWorker, db: Path) -> float:
    """Make tasks.payment.refund raise in the worker until alertd has it firing; returns when it was sent."""
    return until_seen(lambda: worker.send("tasks.payment.refund", 7), lambda: firing(db, "PaymentTaskFailed"))


def test_a_payment_failure_makes_exactly_one_trigger_and_its_resolution_one_resolve(
    tmp_path: Path, worker: CeleryWorker, pagerduty: PagerDutyPeer
) -> None:
    cfg = write_config(tmp_path, worker.broker_url, worker.queue, pagerduty.enqueue_url)
    with AlertdProcess(cfg) as alertd:
        alertd.started()
        sent = fail_payment(worker, tmp_path / "state.db")
        pagerduty.wait_for(1, timeout=10)
        paged = time.time()
        trigger = pagerduty.events[0]
        assert trigger["event_action"] == "trigger"
        assert trigger["payload"]["severity"] == "critical"
        assert "Payment task tasks.payment.refund failed: RefundDeclined" in trigger["payload"]["summary"]
        # The window is 4 s: the alert resolves once the failure is out of it, and PagerDuty hears it once.
        wait_until(lambda: actions(pagerduty) == ["trigger", "resolve"], timeout=20, what="the resolve")
        assert pagerduty.events[1]["dedup_key"] == trigger["dedup_key"]
        assert pagerduty.incidents[trigger["dedup_key"]] == "resolved"
        assert alertd.stop() == 0
    assert actions(pagerduty) == ["trigger", "resolve"]
    print(f"payment failure to PagerDuty trigger: {paged - sent:.3f}s")


def test_sigterm_leaves_an_undelivered_page_in_the_outbox_and_the_restart_delivers_it_once(
    tmp_path: Path, worker: CeleryWorker, pagerduty: PagerDutyPeer
) -> None:
    # The event counters live in memory: after a restart the failure is no longer in the window, and
    # keep_firing_for is what keeps the incident open across it (as it should in production).
    cfg = write_config(tmp_path, worker.broker_url, worker.queue, pagerduty.enqueue_url, window="60s", keep="60s")
    db = tmp_path / "state.db"
    pagerduty.script(*([Reply(503, "")] * 1000))  # PagerDuty is having a bad day: every attempt is retried
    with AlertdProcess(cfg) as first:
        first.started()
        fail_payment(worker, db)
        pagerduty.wait_for(2, timeout=10)  # the first attempt and at least one retry
        assert first.stop() == 0
        stopped = first.wait_for_line("alertd stopped after")
    assert "1 notification(s) left in the outbox" in stopped
    assert outbox(db) == [("pending", "pager")]
    assert actions(pagerduty) == []

    pagerduty.reset()  # PagerDuty is back
    with AlertdProcess(cfg) as second:
        second.wait_for_line("resuming 1 undelivered notification(s) from the outbox")
        wait_until(lambda: outbox(db) == [("delivered", "pager")], timeout=10, what="the outbox row delivered")
        # Several evaluations later the alert is still firing and nothing more has been sent.
        done = evaluations(second.url)
        wait_until(lambda: evaluations(second.url) >= done + 5, timeout=10, what="five more evaluations")
        assert firing(db, "PaymentTaskFailed")
        assert actions(pagerduty) == ["trigger"]
        assert outbox(db) == [("delivered", "pager")]
        assert second.stop() == 0


def test_sigkill_in_the_middle_of_an_incident_and_a_restart_send_no_duplicate_page(
    tmp_path: Path, worker: CeleryWorker, pagerduty: PagerDutyPeer
) -> None:
    cfg = write_config(tmp_path, worker.broker_url, worker.queue, pagerduty.enqueue_url, window="10s")
    db = tmp_path / "state.db"
    with AlertdProcess(cfg) as first:
        first.started()
        fail_payment(worker, db)
        pagerduty.wait_for(1, timeout=10)
        # Killed once the page is recorded as delivered (a kill between PagerDuty's answer and that record
        # sends the page again after the restart, with the same dedup_key: the same incident).
        wait_until(lambda: outbox(db) == [("delivered", "pager")], timeout=10, what="the delivery recorded")
        first.signal(signal.SIGKILL)
        assert first.proc is not None and first.proc.wait(10) == -signal.SIGKILL
    assert actions(pagerduty) == ["trigger"]
    with AlertdProcess(cfg) as second:
        second.wait_for_line("alertd starting")
        # The restarted alertd takes the incident over: still firing, already paged; then it resolves, once.
        wait_until(lambda: actions(pagerduty) == ["trigger", "resolve"], timeout=25, what="the resolve")
        assert second.stop() == 0
    assert actions(pagerduty) == ["trigger", "resolve"]
    assert "Traceback" not in (tmp_path / "alertd.log").read_text()
