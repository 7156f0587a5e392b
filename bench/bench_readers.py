"""Readers never delay a page: time to page a payment failure while 5,000 alerts fire and 20 clients poll the
API and the dashboard back to back, against the same daemon with no reader, in one run. Also the API's own
latency for the 5,000 alerts. Run ``python bench/bench_readers.py [--alerts 5000] [--clients 20]
[--seconds 60]``.

The daemon is ``alertd run`` in a subprocess with a real Celery worker and a loopback PagerDuty, configured
as in ``bench_time_to_page.py``; the 5,000 alerts come from a real Pushgateway (one gauge per queue) and go to a
console receiver in one group, so that only the payment failures reach PagerDuty. The readers run in a
process of their own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_time_to_page import EXCEPTIONS, config, latencies, triggers  # noqa: E402
from tests.alertd_process import AlertdProcess  # noqa: E402
from tests.peers.pagerduty import PagerDutyPeer  # noqa: E402
from tests.services import start_pushgateway, start_redis, wait_until  # noqa: E402
from tests.workers import start_worker  # noqa: E402

BACKLOG = """
[[groups]]
name = "backlog"
interval = "5s"
[[groups.rules]]
name = "Backlog"
select = "bench_backlog"
condition = "value > 0"
severity = "warning"
summary = "queue {{ labels.queue }} holds {{ value }}"
"""

READERS = """
import asyncio, json, sys, time
import httpx

async def client(url, until, n, out):
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        i = n
        while time.monotonic() < until:
            path = "/api/v1/alerts" if i % 2 == 0 else "/"
            started = time.perf_counter()
            r = await c.get(path)
            out.append((path, r.status_code, time.perf_counter() - started, len(r.content)))
            i += 1

async def main(url, clients, seconds):
    out = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(client(url, until, n, out) for n in range(clients)))
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


# Added to bench_time_to_page's configuration: the Pushgateway the backlog comes from, and its alerts to a
# console receiver in one group, so that only the payment failures reach PagerDuty.
EXTRA = """
[collectors.pushgateway]
url = "{pushgateway}"
interval = "5s"
[receivers.log]
type = "console"
path = "{log}"
[[route.routes]]
matchers = ['alertname="Backlog"']
receiver = "log"
group_by = ["alertname"]
group_wait = "0s"
"""


def quantiles(values: list[float]) -> str:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:.1f} ms   p99 {q[98] * 1000:.1f} ms   max {values[-1] * 1000:.1f} ms"


def pages(peer: PagerDutyPeer, worker: object, failures: int, pace: float, offset: int) -> list[float]:
    """Send ``failures`` payment failures, ``pace`` apart; the time from each send to its trigger."""
    before = len(triggers(peer))
    sent: list[tuple[str, float]] = []
    for i in range(failures):
        exc = EXCEPTIONS[(offset + i) % len(EXCEPTIONS)]
        sent.append((exc, time.time()))
        worker.send("tasks.fail", exc, "bench")  # type: ignore[attr-defined]
        time.sleep(pace)
    wait_until(lambda: len(triggers(peer)) >= before + failures, timeout=60, what="every page")
    return latencies(sent, triggers(peer)[before:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pace", type=float, default=0.5, help="seconds between payment failures")
    args = parser.parse_args()
    redis = start_redis()
    worker = start_worker(redis.url, "readers", concurrency=2)
    peer = PagerDutyPeer().start()
    gateway = start_pushgateway()
    exposition = "".join(f'bench_backlog{{queue="q{i}"}} 1\n' for i in range(args.alerts))
    httpx.put(f"{gateway.url}/metrics/job/bench", content=exposition).raise_for_status()
    workdir = Path(tempfile.mkdtemp(prefix="alertd-bench-readers-"))
    extra = EXTRA.format(pushgateway=gateway.url, log=workdir / "backlog.log")
    alertd = AlertdProcess(config(workdir, redis.url, worker.queue, peer.enqueue_url, extra=extra,
                                  extra_rules={"backlog.toml": BACKLOG}))
    try:
        alertd.start().started()
        url = alertd.url

        def firing() -> int:
            alerts = httpx.get(f"{url}/api/v1/alerts", params={"state": "firing", "filter": 'alertname="Backlog"',
                                                               "limit": 1}, timeout=30).json()
            return int(alerts["total"])

        wait_until(lambda: firing() >= args.alerts, timeout=120, what=f"{args.alerts} firing alerts")
        time.sleep(1.0)  # the event subscription takes effect a moment after "connected"
        failures = int(args.seconds / args.pace)
        alone = pages(peer, worker, failures, args.pace, 0)
        readers = subprocess.Popen([sys.executable, "-c", READERS, url, str(args.clients), str(args.seconds)],
                                   stdout=subprocess.PIPE, text=True)
        busy = pages(peer, worker, failures, args.pace, failures)
        out, _ = readers.communicate(timeout=args.seconds + 120)
        answers = json.loads(out)
        print(f"{args.alerts} firing alerts; {failures} payment failures {args.pace} s apart in each phase")
        print(f"  time to page, no reader:            {quantiles(alone)}")
        print(f"  time to page, {args.clients} readers polling: {quantiles(busy)}")
        for path in ("/api/v1/alerts", "/"):
            mine = [a for a in answers if a[0] == path]
            bad = sum(1 for a in mine if a[1] != 200)
            print(f"  {path:<15} {len(mine)} answers ({bad} not 200, {mine[0][3] / 1e6:.1f} MB each): "
                  f"{quantiles([a[2] for a in mine])}")
    finally:
        alertd.kill()
        gateway.stop()
        peer.stop()
        worker.kill()
        redis.stop()


if __name__ == "__main__":
    main()
