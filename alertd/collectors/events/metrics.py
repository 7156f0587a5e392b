"""The event stream's own Prometheus metrics: junk dropped and label values held back, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from alertd.collectors.events.validate import REASONS

LABELS = ("task_name", "exception_type", "worker")


class EventStreamMetrics:
    """Made once per registry: they outlive the consumers that a reload rebuilds."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = r
        self.malformed = Counter(
            "alertd_events_malformed", "Messages or events from the event exchange dropped as malformed, by reason",
            ["reason"], registry=r,
        )
        self.label_overflow = Counter(
            "alertd_event_label_overflow",
            "Label values from the event stream held back by max_label_values (counted as __overflow__)",
            ["label"], registry=r,
        )
        self.lost = Counter(
            "alertd_events_lost",
            "Events that never arrived, by the gaps in their senders' event clocks (a lower bound: docs/celery.md)",
            registry=r,
        )
        self.reconnects = Counter(
            "alertd_event_stream_reconnects",
            "Times the event stream was connected again after it dropped: events sent meanwhile are lost",
            registry=r,
        )
        for reason in REASONS:  # every reason reads 0 from the start, so rate() sees the first one
            self.malformed.labels(reason)
        for label in LABELS:
            self.label_overflow.labels(label)

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels or None) or 0.0
