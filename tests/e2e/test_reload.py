"""Reloading a running alertd: a bad rule file keeps the old rules working (and says so, as an alert); a good
one is swapped in, and alerts whose rule still exists keep their state."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.alertd_process import AlertdProcess, until_seen
from tests.e2e.conftest import actions, firing, write_config
from tests.peers.pagerduty import PagerDutyPeer
from tests.services import wait_until
from tests.workers import CeleryWorker

pytestmark = pytest.mark.integration

EXTRA_RULE = """
[[groups]]
name = "extra"
[[groups.rules]]
name = "AlwaysOn"
select = "alertd_event_stream_up"
condition = "value >= 0"
severity = "info"
summary = "the event stream is watched"
"""


def summaries(peer: PagerDutyPeer) -> list[tuple[str, str]]:
    return [(e["event_action"], e.get("payload", {}).get("summary", "")) for e in peer.events]


def test_a_bad_rule_file_keeps_the_old_rules_working_and_raises_an_alert(
    tmp_path: Path, worker: CeleryWorker, pagerduty: PagerDutyPeer
) -> None:
    cfg = write_config(tmp_path, worker.broker_url, worker.queue, pagerduty.enqueue_url, window="60s")
    db = tmp_path / "state.db"
    rules = tmp_path / "rules" / "payments.toml"
    good = rules.read_text()
    with AlertdProcess(cfg) as alertd:
        alertd.started()
        rules.write_text(good.replace('condition = "value > 0"', 'condition = "value >"'))  # a syntax error
        alertd.signal(signal.SIGHUP)
        failed = alertd.wait_for_line("reload (SIGHUP) failed; the running configuration stays")
        assert "payments.toml" in alertd.output()[alertd.output().index(failed):]
        # The rule that was running before still pages.
        until_seen(lambda: worker.send("tasks.payment.refund", 1), lambda: firing(db, "PaymentTaskFailed"))
        wait_until(lambda: any("Payment task" in s for _, s in summaries(pagerduty)), timeout=10,
                   what="the payment page")
        # The failed reload is an alert of its own, paged like any other.
        wait_until(lambda: any("configuration reload failed" in s for _, s in summaries(pagerduty)), timeout=10,
                   what="the AlertdReloadFailed page")
        # Over HTTP too: 400 with the errors, the old rules still listed.
        response = httpx.post(f"{alertd.url}/-/reload", timeout=10)
        assert response.status_code == 400
        assert "payments.toml" in response.json()["message"]

        # Fixed, and a rule added: the reload swaps them in; the firing payment alert keeps its state.
        rules.write_text(good)
        (tmp_path / "rules" / "extra.toml").write_text(EXTRA_RULE)
        response = httpx.post(f"{alertd.url}/-/reload", timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True and response.json()["rules"] == 2
        wait_until(lambda: firing(db, "AlwaysOn"), timeout=10, what="the new rule firing")
        assert firing(db, "PaymentTaskFailed")
        wait_until(lambda: "resolve" in actions(pagerduty), timeout=10, what="AlertdReloadFailed resolved")
        assert alertd.stop() == 0
    payment_triggers = [s for a, s in summaries(pagerduty) if a == "trigger" and "Payment task" in s]
    assert len(payment_triggers) == 1, summaries(pagerduty)
    assert actions(pagerduty).count("resolve") == 1  # only the reload alert resolved
