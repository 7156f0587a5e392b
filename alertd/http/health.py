"""``GET /health/celery``: is the Celery cluster healthy, judged from what the collectors last saw.

Unhealthy when the broker is down or nobody has reached it within the series lookback, or when no worker is
up. Queue depths and active tasks are reported, not judged: rules do that with thresholds of their own. No
broadcast is made for a health check; it reads the series store, so it answers in microseconds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from alertd.series.selector import Selector

if TYPE_CHECKING:
    from alertd.daemon.core import Daemon


def _latest(daemon: Daemon, name: str, now: float) -> list[tuple[dict[str, str], float]]:
    """The current value of every series of ``name``: the newest sample, if within the lookback and not stale."""
    out = []
    for series in daemon.series.select(Selector(name, ())):
        newest = series.newest()
        if newest is None or now - newest[0] > daemon.series.lookback or newest[1] != newest[1]:
            continue
        out.append((dict(series.labels), newest[1]))
    return out


def celery_health(daemon: Daemon) -> dict[str, Any]:
    now = daemon.clock.now()
    reasons: list[str] = []
    broker = _latest(daemon, "celery_broker_up", now)
    latency = _latest(daemon, "celery_broker_latency_seconds", now)
    broker_up = bool(broker) and all(v == 1 for _, v in broker)
    if not broker:
        reasons.append("broker: no recent data (is the broker collector running?)")
    elif not broker_up:
        reasons.append("broker unreachable")
    active = {labels.get("worker", ""): v for labels, v in _latest(daemon, "celery_worker_active_tasks", now)}
    workers = [
        {"name": labels.get("worker", ""), "up": v == 1, "active_tasks": active.get(labels.get("worker", ""))}
        for labels, v in sorted(_latest(daemon, "celery_worker_up", now), key=lambda lv: lv[0].get("worker", ""))
    ]
    if not any(w["up"] for w in workers):
        reasons.append("no worker is up" if workers else "no worker seen (are workers running with -E?)")
    missing = {labels.get("queue", "") for labels, v in _latest(daemon, "celery_queue_missing", now) if v == 1}
    depths: dict[str, dict[str, Any]] = {
        labels.get("queue", ""): {"name": labels.get("queue", ""), "depth": v, "missing": False}
        for labels, v in _latest(daemon, "celery_queue_depth", now)
    }
    for name in missing:
        depths[name] = {"name": name, "depth": None, "missing": True}
    return {
        "status": "unhealthy" if reasons else "healthy",
        "reasons": reasons,
        "broker": {"up": broker_up, "latency_seconds": latency[0][1] if latency else None},
        "workers": workers,
        "queues": sorted(depths.values(), key=lambda q: q["name"]),
        "checked_at": time.time(),
    }
