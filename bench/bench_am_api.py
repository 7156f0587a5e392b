"""``GET /api/v2/alerts`` (Alertmanager's API, as amtool and Grafana call it) with 10,000 firing alerts: latency
of the whole answer over loopback. Run ``python bench/bench_am_api.py [--alerts 10000] [--requests 200]``.

The daemon runs in this process (memory state store, one rule firing for each of ``--alerts`` queues, a
console receiver); the client is a process of its own, asking one request at a time, three ways:

- ``same query``: the same URL again, answered from the snapshot's cache of serialized answers;
- ``new query``: a different filter each time (each keeps every alert), so the answer is filtered, mapped
  to Alertmanager's shape and serialized again, from the same snapshot;
- ``after a change``: a silence is posted before each request, so the snapshot itself is rebuilt too
  (only the GET is timed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alertd.config.model import HttpSettings  # noqa: E402
from alertd.daemon import build  # noqa: E402
from alertd.http.server import start_http_server  # noqa: E402
from alertd.models import Sample  # noqa: E402
from tests.helpers import OFFLINE  # noqa: E402

TOKEN = "bench"
RULES = """
[[groups]]
name = "backlog"
[[groups.rules]]
name = "Backlog"
select = "bench_backlog"
condition = "value > 0"
severity = "warning"
summary = "queue {{ labels.queue }} holds {{ value }}"
"""

CLIENT = """
import json, sys, time
from datetime import datetime, timedelta, timezone
import httpx

url, requests, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def when(**d):
    return (datetime.now(timezone.utc) + timedelta(**d)).isoformat().replace("+00:00", "Z")
out = {}
with httpx.Client(base_url=url, timeout=60, headers={"Authorization": "Bearer " + token}) as c:
    for mode in ("same query", "new query", "after a change"):
        times = []
        for i in range(requests):
            params = {"filter": f'queue!="none{i}"'} if mode == "new query" else {}
            if mode == "after a change":
                c.post("/api/v2/silences", json={
                    "matchers": [{"name": "queue", "value": f"none{i}", "isRegex": False}], "startsAt": when(),
                    "endsAt": when(hours=1), "createdBy": "bench", "comment": ""}).raise_for_status()
            started = time.perf_counter()
            r = c.get("/api/v2/alerts", params=params)
            times.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text
            size = len(r.content)
            count = len(r.json()) if i == 0 else count
        out[mode] = {"times": times, "bytes": size, "alerts": count}
print(json.dumps(out))
"""


def quantiles(values: list[float]) -> str:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:6.1f} ms   p99 {q[98] * 1000:6.1f} ms   max {values[-1] * 1000:6.1f} ms"


async def run(alerts: int, requests: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="alertd-bench-am-api-"))
    (workdir / "rules").mkdir()
    (workdir / "rules" / "backlog.toml").write_text(RULES)
    cfg = workdir / "alertd.toml"
    cfg.write_text(OFFLINE + f"""
[receivers.log]
type = "console"
path = "{workdir / 'pages.log'}"
[route]
receiver = "log"
group_by = ["alertname", "queue"]
""")
    daemon = build(str(cfg))
    now = time.time()
    daemon.ingest([Sample("bench_backlog", {"queue": f"q{i}"}, 1.0, now) for i in range(alerts)])
    daemon.evaluate_all()
    server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0", token=TOKEN))
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, server.url, str(requests), TOKEN, stdout=asyncio.subprocess.PIPE)
        out, _ = await client.communicate()
        assert client.returncode == 0
        results = json.loads(out)
    finally:
        await server.close()
        await daemon.close()
    print(f"GET /api/v2/alerts, {alerts} firing alerts, {requests} requests each, one at a time:")
    for mode, got in results.items():
        print(f"  {mode:<15} {got['alerts']} alerts, {got['bytes'] / 1e6:.1f} MB: {quantiles(got['times'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.alerts, args.requests))


if __name__ == "__main__":
    main()
