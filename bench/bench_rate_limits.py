"""Twenty alert groups firing at once to one Slack webhook, with the Slack plugin's default budget.

Run: .venv/bin/python bench/bench_rate_limits.py [--groups 20]
The loopback Slack enforces Slack's limit (one message per second per webhook, bursts of 3) and answers 429
with Retry-After 1 over it. Prints the time until every message was accepted, the answers 429 and the
requests that came before a Retry-After had passed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alertd.clock import SystemClock  # noqa: E402
from alertd.config.model import Config  # noqa: E402
from alertd.models import Alert, AlertState, fingerprint  # noqa: E402
from alertd.notifiers.base import NotifierContext  # noqa: E402
from alertd.notify.pipeline import build_pipeline  # noqa: E402
from alertd.plugins import make_plugin_manager  # noqa: E402
from alertd.state.sqlite import SQLiteStateStore  # noqa: E402
from tests.peers.slack import SlackPeer  # noqa: E402


async def run(groups: int) -> None:
    types = {c.type_name: c for found in make_plugin_manager().hook.register_notifiers() for c in found}
    slack = types["slack"]
    with SlackPeer() as peer, tempfile.TemporaryDirectory() as d:
        peer.throttle(rate=1.0, burst=3, retry_after=1.0)
        config = Config.model_validate({
            "receivers": {"ops": {"type": "slack", "webhook_url": peer.webhook_url}},
            "route": {"receiver": "ops", "group_by": ["alertname"], "group_wait": "0s"},
        })
        clock = SystemClock()
        async with httpx.AsyncClient() as http:
            notifier = slack("ops", slack.Settings.model_validate({"webhook_url": peer.webhook_url}),
                             NotifierContext(http=http, clock=clock))
            store = SQLiteStateStore(Path(d) / "state.db")
            pipeline = build_pipeline(config, {"ops": notifier}, store, clock)
            now = clock.now()
            alerts = []
            for i in range(groups):
                labels = {"alertname": f"QueueBacklog{i}", "severity": "warning"}
                alerts.append(Alert(fingerprint("bench", labels), "bench", labels, {"summary": f"queue {i}"},
                                    AlertState.FIRING, 1.0, now))
            stop = asyncio.Event()
            server = asyncio.create_task(pipeline.serve(stop, max_sleep=0.05))
            started = time.perf_counter()
            pipeline.put(alerts, complete=True)
            while len(peer.messages) < groups:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            stop.set()
            await server
            await pipeline.close()
            store.close()
        refused = sum(1 for _, reply in peer.exchanges if reply is not None and reply.status == 429)
        print(f"{groups} groups at once to one Slack webhook (1/s, bursts of 3), the plugin's default budget")
        print(f"  all {groups} delivered after {elapsed:.1f}s; answers 429: {refused}; "
              f"Retry-After violations: {peer.violations}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.groups))


if __name__ == "__main__":
    main()
