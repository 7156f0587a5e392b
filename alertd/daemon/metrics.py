"""alertd's own Prometheus metrics, served at ``GET /metrics``: one registry for the daemon and its pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from alertd import __version__
from alertd.models import AlertState

# Collection and evaluation take milliseconds; a broadcast to the workers takes a second or more.
_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# An event is ingested in about a millisecond; seconds mean the loop or the broker is behind.
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _AlertsByState(Collector):
    """``alertd_alerts{state}``, counted when scraped, never stale."""

    def __init__(self, count: Callable[[], dict[AlertState, int]]) -> None:
        self.count = count

    def describe(self) -> Iterator[GaugeMetricFamily]:  # registering must not count (the daemon is half built)
        yield GaugeMetricFamily("alertd_alerts", "Alerts known to alertd, by state", labels=["state"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("alertd_alerts", "Alerts known to alertd, by state", labels=["state"])
        counts = self.count()
        for state in (AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED):
            family.add_metric([state.value], counts.get(state, 0))
        yield family


class DaemonMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        Gauge("alertd_build_info", "alertd's version", ["version"], registry=r).labels(__version__).set(1)
        self.started = Gauge("alertd_start_time_seconds", "When this alertd process started", registry=r)
        self.collector_duration = Histogram(
            "alertd_collector_duration_seconds", "Time one collection took", ["collector"],
            buckets=_DURATION_BUCKETS, registry=r,
        )
        self.collector_errors = Counter(
            "alertd_collector_errors", "Collections that failed", ["collector"], registry=r
        )
        self.evaluation_duration = Histogram(
            "alertd_evaluation_duration_seconds",
            "Time one evaluation took (group: a rule group on its interval, or 'events' when an event woke it)",
            ["group"], buckets=_DURATION_BUCKETS, registry=r,
        )
        self.last_evaluation = Gauge(
            "alertd_last_evaluation_timestamp_seconds", "When the last evaluation finished", registry=r
        )
        self.events = Counter("alertd_events", "Celery events received", ["type"], registry=r)
        self.event_lag = Histogram(
            "alertd_event_lag_seconds", "Time from a Celery event's timestamp (worker clock) to its ingestion",
            buckets=_LAG_BUCKETS, registry=r,
        )
        self.reloads = Counter("alertd_reloads", "Configuration reloads", ["result"], registry=r)
        self.reload_success = Gauge(
            "alertd_config_last_reload_successful", "1 if the last reload succeeded (or there was none)", registry=r
        )
        self.reload_success.set(1)
        self.reload_time = Gauge(
            "alertd_config_last_reload_success_timestamp_seconds", "When the running configuration was loaded",
            registry=r,
        )
        self.http_refused = Counter(
            "alertd_http_requests_refused", "HTTP requests the guard refused (host, cross-site, origin, "
            "content-type, token, remote)", ["reason"], registry=r,
        )
        self.deadman_pings = Counter(
            "alertd_deadman_pings", "Dead man's switch pings", ["result"], registry=r
        )

    def count_alerts(self, count: Callable[[], dict[AlertState, int]]) -> None:
        self.registry.register(_AlertsByState(count))
