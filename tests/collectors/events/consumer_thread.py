"""An EventConsumer on its own loop in a thread, with a sink that records every sample: for the tests here."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from alertd.collectors.base import CollectorContext
from alertd.collectors.events import EventConsumer, EventSettings
from alertd.models import Sample, labels_key
from alertd.notify import InternalAlerts
from tests.services import wait_until

MULTIPLIER = 2.0
TICK = 0.2


class Recorder:
    """The sink: every sample with the wall time it arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[float, Sample]] = []

    def __call__(self, samples: list[Sample]) -> None:
        now = time.time()
        with self.lock:
            self.received.extend((now, s) for s in samples)

    def matching(self, name: str, **labels: str) -> list[tuple[float, Sample]]:
        want = labels_key(labels)
        with self.lock:
            return [(at, s) for at, s in self.received if s.name == name and labels_key(s.labels) == want]

    def latest(self, name: str, **labels: str) -> float | None:
        found = self.matching(name, **labels)
        return found[-1][1].value if found else None

    def first_arrival(self, name: str, value: float, **labels: str) -> float | None:
        return next((at for at, s in self.matching(name, **labels) if s.value == value), None)


class ConsumerThread:
    """An EventConsumer on its own event loop in a thread, so that the test can poll synchronously."""

    def __init__(self, broker_url: str, *, observe: Callable[[dict[str, Any]], None] | None = None,
                 internal: InternalAlerts | None = None, app: Any = None, **settings: Any) -> None:
        self.sink = Recorder()
        defaults: dict[str, Any] = {"heartbeat_multiplier": MULTIPLIER, "tick_interval": TICK,
                                    "reconnect_min": 0.2, "reconnect_max": 1.0}
        context = CollectorContext(broker_url=broker_url, celery_app=app)
        self.consumer = EventConsumer(EventSettings(**{**defaults, **settings}), context, self.sink, observe=observe,
                                      internal=internal)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.consumer.run()), daemon=True)

    def __enter__(self) -> ConsumerThread:
        self.thread.start()
        wait_until(lambda: self.sink.latest("alertd_event_stream_up") == 1, timeout=10, what="the event stream")
        return self

    def __exit__(self, *exc: object) -> None:
        self.consumer.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the consumer did not stop"

    def wait_value(self, name: str, value: float, timeout: float, **labels: str) -> float:
        """Poll until ``name{labels}`` has been ``value``; returns the wall time the sample arrived."""
        found = wait_until(lambda: self.sink.first_arrival(name, value, **labels), timeout=timeout,
                           interval=0.01, what=f"{name}{labels} == {value}")
        assert isinstance(found, float)
        return found
