"""A storm: N failures of one task sent within about ten seconds, through a real prefork worker to alertd and a
loopback PagerDuty. Reports how many pages went out (the aim is one), the time to the first page, alertd's
event lag (its own ``alertd_event_lag_seconds`` histogram, read from ``/metrics``) and its peak memory and CPU.
Run ``python bench/bench_storm.py [--failures 10000] [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_time_to_page import config  # noqa: E402
from tests.alertd_process import AlertdProcess  # noqa: E402
from tests.peers.pagerduty import PagerDutyPeer  # noqa: E402
from tests.services import start_redis, wait_until  # noqa: E402
from tests.workers import start_worker  # noqa: E402


def samples(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for s in family.samples:
            key = s.name + "".join(f";{k}={v}" for k, v in sorted(s.labels.items()))
            out[key] = s.value
    return out


def lag_quantile(m: dict[str, float], q: float) -> float:
    buckets = sorted((float(k.split("le=")[1]), v) for k, v in m.items()
                     if k.startswith("alertd_event_lag_seconds_bucket"))
    total = buckets[-1][1]
    return next(le for le, count in buckets if count >= q * total)


def proc_status(pid: int) -> tuple[int, float]:
    """(VmHWM in KiB, CPU seconds) of a process."""
    hwm = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmHWM"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return hwm, (int(fields[11]) + int(fields[12])) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--failures", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    redis = start_redis()
    worker = start_worker(redis.url, "storm", concurrency=4)
    peer = PagerDutyPeer().start()
    workdir = Path(tempfile.mkdtemp(prefix="alertd-bench-storm-"))
    cfg = config(workdir, redis.url, worker.queue, peer.enqueue_url)
    cfg.write_text(cfg.read_text().replace('window = "2s"', 'window = "5m"'))
    (workdir / "rules" / "tasks.toml").write_text(
        (workdir / "rules" / "tasks.toml").read_text().replace('window = "2s"', 'window = "5m"'))
    alertd = AlertdProcess(cfg)
    try:
        alertd.start().started()
        url = alertd.url
        time.sleep(1.0)  # the event subscription takes effect a moment after "connected"
        assert alertd.proc is not None
        hwm0, cpu0 = proc_status(alertd.proc.pid)
        started = time.time()
        for i in range(args.failures):
            worker.send("tasks.fail", "ValueError", "storm")
            ahead = started + (i + 1) * args.seconds / args.failures - time.time()
            if ahead > 0:
                time.sleep(ahead)
        sent = time.time() - started
        events = "alertd_events_total;type=task-failed"
        wait_until(lambda: samples(url).get(events, 0) >= args.failures, timeout=300, interval=0.5,
                   what="alertd to have every task-failed event")
        drained = time.time() - started
        time.sleep(3)  # group_interval is 1 s: any further page would have been sent by now
        m = samples(url)
        hwm, cpu = proc_status(alertd.proc.pid)
        triggers = [r for r in peer.requests if r.json and r.json.get("event_action") == "trigger"]
        first = min(r.time for r in triggers) - started if triggers else float("nan")
        print(f"storm: {args.failures} failures of tasks.fail sent in {sent:.1f}s; alertd had them all after "
              f"{drained:.1f}s")
        print(f"  pages (PagerDuty triggers): {len(triggers)}; first page {first * 1000:.0f} ms after the first send")
        print(f"  event lag (worker event timestamp -> ingested): p50 <= {lag_quantile(m, 0.5) * 1000:.1f} ms, "
              f"p99 <= {lag_quantile(m, 0.99) * 1000:.1f} ms (histogram bucket bounds)")
        print(f"  alertd peak memory (VmHWM) {hwm / 1024:.0f} MiB (before the storm {hwm0 / 1024:.0f} MiB); "
              f"CPU {cpu - cpu0:.1f}s during the storm")
    finally:
        alertd.kill()
        peer.stop()
        worker.kill()
        redis.stop()


if __name__ == "__main__":
    main()
