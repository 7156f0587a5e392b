"""The event stream at a busy cluster's rate: the highest sustained rate, CPU per 10,000 events/s, and memory.

Producers in their own processes send what prefork workers send (task-received, task-started and
task-succeeded, 24 to a message, and a heartbeat every 2 s each) with Celery's own EventDispatcher, to a
private redis-server; ``alertd run`` (the shipped rules, no asyncio debug mode) consumes them. Each step runs
the producers for ``--seconds`` at one rate, then reads alertd's ``/metrics``:

- loss: events sent against ``alertd_events_total`` once the stream has drained (at most 10 s);
- lag: the p99 of ``alertd_event_lag_seconds`` over the step (event timestamp to ingestion; bucket bound);
- CPU: alertd's CPU seconds over the step, per second, in cores;
- reconnects and counted lost: ``alertd_event_stream_reconnects_total`` and ``alertd_events_lost_total``,
  where the build has them.

A rate is sustained with under 1% loss and a p99 lag under 1 s. ``--root`` runs alertd from another checkout
(the baseline); ``--soak N`` instead holds ``--rates``' first rate for N seconds and prints RSS every minute.

Run ``python bench/bench_event_rate.py [--rates 5000,10000,...] [--seconds 10] [--root DIR] [--soak 300]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.peers.pagerduty import PagerDutyPeer  # noqa: E402
from tests.services import start_redis, wait_until  # noqa: E402

PRODUCERS = 2
HEARTBEAT = 2.0


def produce(broker: str, n: int, rate: float, seconds: float, sent: mp.Value,  # type: ignore[valid-type]
            ready: mp.Barrier) -> None:  # type: ignore[valid-type]
    """One busy worker's events at ``rate`` a second for ``seconds``; its own app, so its own event clock."""
    from celery import Celery

    app = Celery(f"producer{n}", broker=broker, set_as_current=False)
    with app.connection_for_write() as conn:
        d = app.events.Dispatcher(conn, hostname=f"busy{n}@bench", enabled=True, buffer_while_offline=False,
                                  buffer_group=["task"], buffer_limit=24)
        ready.wait()
        start = time.monotonic()
        count, task, next_heartbeat = 0, 0, 0.0
        while (elapsed := time.monotonic() - start) < seconds:
            if elapsed >= next_heartbeat:
                d.send("worker-heartbeat", freq=HEARTBEAT, active=8, processed=task, loadavg=[1, 1, 1])
                next_heartbeat += HEARTBEAT
                count += 1
            for _ in range(8):  # 24 events: one message
                uuid = f"p{n}-{task}"
                d.send("task-received", uuid=uuid, name=f"tasks.report.build_{task % 50}", args="()", kwargs="{}",
                       retries=0)
                d.send("task-started", uuid=uuid)
                d.send("task-succeeded", uuid=uuid, result="None", runtime=0.01)
                task += 1
                count += 3
            ahead = count / rate - (time.monotonic() - start)
            if ahead > 0:
                d.flush()
                time.sleep(ahead)
        d.flush()
    with sent.get_lock():
        sent.value += count


def metrics(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for s in family.samples:
            out[s.name + "".join(f";{k}={v}" for k, v in sorted(s.labels.items()))] = s.value
    return out


def received(m: dict[str, float]) -> float:
    return sum(v for k, v in m.items() if k.startswith("alertd_events_total;"))


def lag_p99(before: dict[str, float], after: dict[str, float]) -> float:
    buckets = sorted((float(k.split("le=")[1]), v - before.get(k, 0.0)) for k, v in after.items()
                     if k.startswith("alertd_event_lag_seconds_bucket"))
    total = buckets[-1][1]
    return next((le for le, count in buckets if count >= 0.99 * total), float("inf")) if total else float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def start_alertd(root: Path, broker: str, workdir: Path, pagerduty: str) -> tuple[subprocess.Popen[str], str]:
    cfg = workdir / "alertd.toml"
    cfg.write_text(f"""
rule_files = ["{root}/rules/*.toml"]
[state]
url = "state.db"
[celery]
broker_url = "{broker}"
[collectors.inspect]
enabled = false
[http]
listen = "127.0.0.1:0"
[reload]
watch = false
[receivers.pager]
type = "pagerduty"
url = "{pagerduty}"
routing_key = "R0UT1NGKEY0123456789abcdef012345"
[route]
receiver = "pager"
""")
    log = workdir / "alertd.log"
    proc = subprocess.Popen([sys.executable, "-m", "alertd", "run", "-c", str(cfg)], cwd=workdir, text=True,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            env={**os.environ, "PYTHONPATH": str(root)})
    line = wait_until(lambda: next((x for x in log.read_text().splitlines() if "HTTP on " in x), None), timeout=60,
                      what="alertd's HTTP line")
    url = str(line).split("HTTP on ", 1)[1].split()[0]
    wait_until(lambda: "event stream connected" in log.read_text(), timeout=30, what="the event stream")
    return proc, url


def step(url: str, pid: int, broker: str, rate: float, seconds: float) -> bool:
    sent_value, ready = mp.Value("q", 0), mp.Barrier(PRODUCERS + 1)
    procs = [mp.Process(target=produce, args=(broker, n, rate / PRODUCERS, seconds, sent_value, ready))
             for n in range(PRODUCERS)]
    for p in procs:
        p.start()
    before = metrics(url)
    ready.wait()  # the producers have started Python and connected: the clock starts with their first event
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    for p in procs:
        p.join()
    took, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    sent = int(sent_value.value)
    want = received(before) + sent
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and received(metrics(url)) < want:
        time.sleep(0.2)
    after = metrics(url)
    got = received(after) - received(before)
    loss = 1 - got / sent if sent else 0.0
    lag = lag_p99(before, after)
    cores = cpu / took
    reconnects = after.get("alertd_event_stream_reconnects_total", float("nan")) - before.get(
        "alertd_event_stream_reconnects_total", float("nan"))
    counted_lost = after.get("alertd_events_lost_total", float("nan")) - before.get("alertd_events_lost_total",
                                                                                   float("nan"))
    ok = loss < 0.01 and lag < 1.0
    print(f"{rate:>7,.0f}/s asked, {sent / took:>7,.0f}/s sent: loss {100 * loss:5.2f}%  lag p99 <= {lag:g} s  "
          f"CPU {100 * cores:4.0f}% of a core ({100 * cores / (sent / took / 10_000):4.1f}% per 10,000/s)  "
          f"reconnects {reconnects:g}  counted lost {counted_lost:g}  RSS {rss_mib(pid):.0f} MiB  {'sustained' if ok else 'NOT sustained'}",
          flush=True)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="5000,10000,15000,20000,25000,30000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--soak", type=float, default=0.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    redis = start_redis()
    peer = PagerDutyPeer().start()
    workdir = Path(tempfile.mkdtemp(prefix="alertd-bench-rate-"))
    proc, url = start_alertd(args.root.resolve(), redis.url, workdir, peer.enqueue_url)
    try:
        print(f"alertd from {args.root.resolve()}, RSS at start {rss_mib(proc.pid):.0f} MiB", flush=True)
        if args.soak:
            elapsed = 0.0
            while elapsed < args.soak:
                step(url, proc.pid, redis.url, rates[0], 60.0)
                elapsed += 60.0
                print(f"  after {elapsed / 60:.0f} min at {rates[0]:,.0f}/s: RSS {rss_mib(proc.pid):.0f} MiB", flush=True)
            return
        failed = 0
        for rate in rates:
            failed = 0 if step(url, proc.pid, redis.url, rate, args.seconds) else failed + 1
            if failed == 2:
                break
    finally:
        proc.kill()
        proc.wait()
        peer.stop()
        redis.stop()


if __name__ == "__main__":
    main()
