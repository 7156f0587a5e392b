"""One cause, one page: the private broker dies and comes back under ``alertd run``; the webhook peer gets one
page and one resolve, while the alerts the outage causes fire inhibited by the inhibition that ships.

The shipped health rules and the shipped inhibit rules are used as they are, only with the durations shrunk
(the group interval, ``for`` and ``keep_firing_for``: seconds where they ship minutes) so that the outage lasts seconds, not minutes.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alertd_process import ROOT, AlertdProcess
from tests.e2e.conftest import evaluations
from tests.peers.webhook import WebhookPeer
from tests.services import RedisServer, wait_until

pytestmark = pytest.mark.integration

SHRUNK = {'\ninterval = "15s"': '\ninterval = "0.25s"', '\nfor = "30s"': '\nfor = "1s"', '\nfor = "1m"': '\nfor = "2s"',
          '\nfor = "90s"': '\nfor = "3s"', '\nkeep_firing_for = "1m"': '\nkeep_firing_for = "2s"'}
CAUSED = ("EventStreamDown", "CollectorFailing")


def shipped_inhibit_rules() -> str:
    """The ``[[inhibit_rules]]`` of config.example.toml, as TOML."""
    rules = tomllib.loads((ROOT / "config.example.toml").read_text())["inhibit_rules"]
    return "".join(
        "\n[[inhibit_rules]]\n" + "".join(f"{key} = {json.dumps(rule[key])}\n" for key in rule) for rule in rules
    )


def write_config(workdir: Path, broker_url: str, hook_url: str) -> Path:
    text = (ROOT / "rules" / "alertd-health.toml").read_text()
    for old, new in SHRUNK.items():
        assert old in text, old
        text = text.replace(old, new)
    (workdir / "rules").mkdir()
    (workdir / "rules" / "alertd-health.toml").write_text(text)
    cfg = workdir / "alertd.toml"
    cfg.write_text(f"""
rule_files = ["rules/*.toml"]
evaluation_interval = "0.25s"
shutdown_grace = "2s"
[state]
url = "state.db"
[celery]
broker_url = "{broker_url}"
queues = ["celery"]
[events]
tick_interval = "0.2s"
reconnect_max = "0.5s"
[collectors.broker]
interval = "0.25s"
timeout = "0.5s"
[collectors.queues]
interval = "0.25s"
timeout = "0.5s"
discover_queues = false
[collectors.workers]
enabled = false
[collectors.inspect]
enabled = false
[http]
listen = "127.0.0.1:0"
[reload]
watch = false
[receivers.hook]
type = "webhook"
url = "{hook_url}"
[route]
receiver = "hook"
group_by = ["alertname"]
group_wait = "0s"
group_interval = "0.5s"
[notify]
retry_base = "0.2s"
retry_max = "1s"
{shipped_inhibit_rules()}
""")
    return cfg


def active(url: str) -> dict[str, list[dict[str, Any]]]:
    """Pending and firing alerts from the API, by alertname."""
    out: dict[str, list[dict[str, Any]]] = {}
    for alert in httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["alerts"]:
        out.setdefault(alert["labels"]["alertname"], []).append(alert)
    return out


def pages(peer: WebhookPeer) -> list[tuple[str, list[str]]]:
    """(status, alertnames) of every notification the peer accepted, oldest first."""
    return [(p["status"], [a["labels"]["alertname"] for a in p["alerts"]]) for p in peer.payloads]


@pytest.fixture
def peer() -> Iterator[WebhookPeer]:
    with WebhookPeer() as hook:
        yield hook


def test_a_broker_outage_pages_once_and_resolves_once(tmp_path: Path, redis_server: RedisServer, peer: WebhookPeer) -> None:
    cfg = write_config(tmp_path, redis_server.url, peer.hook_url)
    with AlertdProcess(cfg) as alertd:
        alertd.started()
        url = alertd.url
        wait_until(lambda: evaluations(url) > 4, timeout=15, what="a few evaluations with the broker up")
        assert active(url) == {} and peer.payloads == []

        redis_server.process.kill()  # the private broker, and nothing gets to clean up
        redis_server.process.wait(10)

        def all_firing() -> dict[str, list[dict[str, Any]]] | None:
            now = active(url)
            ok = all(any(a["state"] == "firing" for a in now.get(name, [])) for name in ("CeleryBrokerDown", *CAUSED))
            return now if ok else None

        during = wait_until(all_firing, timeout=30, interval=0.1, what="the outage's alerts to fire")
        assert isinstance(during, dict)
        broker = during["CeleryBrokerDown"][0]
        assert broker["inhibited_by"] == []
        caused = [a for name in CAUSED for a in during[name]]
        assert {a["labels"].get("collector") for a in during["CollectorFailing"]} == {"queues"}
        for alert in caused:
            assert alert["state"] == "firing" and len(alert["inhibited_by"]) == 1, alert
        wait_until(lambda: pages(peer), timeout=10, what="the page")
        # The caused alerts have fired for a few evaluations: they would have paged by now, had they not been muted.
        seen = evaluations(url)
        wait_until(lambda: evaluations(url) > seen + 8, timeout=15, what="more evaluations during the outage")

        redis_server.start()
        wait_until(lambda: not active(url), timeout=30, interval=0.1, what="every alert to resolve")
        wait_until(lambda: len(pages(peer)) >= 2, timeout=10, what="the resolve")
        # Nothing follows: a late page of a caused alert would come within a few group intervals.
        seen = evaluations(url)
        wait_until(lambda: evaluations(url) > seen + 12, timeout=15, what="evaluations after the outage")

    assert pages(peer) == [("firing", ["CeleryBrokerDown"]), ("resolved", ["CeleryBrokerDown"])]
    assert "Traceback" not in alertd.output()
