"""Notifications delivered per second to a loopback webhook receiver, with retries on.

Run: .venv/bin/python bench/bench_delivery.py [--groups 500] [--fail-every 5]
500 groups (one alert each) go through the whole pipeline (route, dedup, render, outbox in SQLite, retry) to
the webhook notifier and a loopback HTTP server that answers 500 to every Nth request, so every Nth attempt
is retried after a backoff. Prints notifications delivered per second, attempts, and the time to the last one.
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
from tests.peers.webhook import WebhookPeer  # noqa: E402


async def run(groups: int, fail_every: int) -> None:
    types = {c.type_name: c for found in make_plugin_manager().hook.register_notifiers() for c in found}
    webhook = types["webhook"]
    with WebhookPeer() as peer, tempfile.TemporaryDirectory() as d:
        peer.script(*([500] + [200] * (fail_every - 1)) * (groups // fail_every + 1))
        config = Config.model_validate({
            "receivers": {"hook": {"type": "webhook", "url": peer.hook_url}},
            "route": {"receiver": "hook", "group_by": ["group"], "group_wait": "0s"},
            "notify": {"retry_base": "20ms", "retry_max": "200ms"},
        })
        clock = SystemClock()
        async with httpx.AsyncClient() as http:
            notifier = webhook("hook", webhook.Settings.model_validate({"url": peer.hook_url}),
                               NotifierContext(http=http, clock=clock))
            store = SQLiteStateStore(Path(d) / "state.db")
            pipeline = build_pipeline(config, {"hook": notifier}, store, clock)
            now = clock.now()
            alerts = []
            for i in range(groups):
                labels = {"alertname": "Bench", "group": f"g{i}", "severity": "warning"}
                alerts.append(Alert(fingerprint("bench", labels), "bench", labels, {"summary": f"group {i}"},
                                    AlertState.FIRING, 1.0, now))
            stop = asyncio.Event()
            server = asyncio.create_task(pipeline.serve(stop, max_sleep=0.05))
            started = time.perf_counter()
            pipeline.put(alerts, complete=True)
            while sum(1 for _, reply in peer.exchanges if reply is not None and reply.status < 300) < groups:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            stop.set()
            await server
            await pipeline.close()
            store.close()
        attempts = len(peer.exchanges)
        print(f"{groups} notifications to a loopback webhook, every {fail_every}th attempt answered 500 and retried")
        print(f"  delivered: {groups} in {elapsed:.2f}s = {groups / elapsed:.0f} notifications/s")
        print(f"  attempts: {attempts} ({attempts - groups} retried)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--fail-every", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.groups, args.fail_every))


if __name__ == "__main__":
    main()
