"""The collector contract: settings in, samples out, and the wrapper that times and reports each run."""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from alertd.clock import Clock, SystemClock
from alertd.durations import Duration, Interval
from alertd.models import Sample

log = logging.getLogger(__name__)


class CollectorSettings(BaseModel):
    """Settings every collector has; a collector's own ``Settings`` subclasses this."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval: Interval = 15.0
    timeout: Duration = 5.0


@dataclass
class CollectorContext:
    """What every collector may read: the Celery connection settings and the clock."""

    broker_url: str = "redis://127.0.0.1:6379/0"
    queues: Sequence[str] = ("celery",)
    broker_transport_options: dict[str, Any] = field(default_factory=dict)
    celery_app: Any = None
    clock: Clock = field(default_factory=SystemClock)


class Collector(abc.ABC):
    """A source of samples, run by the scheduler every ``settings.interval`` within ``settings.timeout``.

    ``collect`` raises on failure (preferably ``CollectorError``); the runner turns that into the
    ``alertd_collector_success`` sample and one log line, and the other collectors go on.
    """

    type_name: ClassVar[str]
    Settings: ClassVar[type[CollectorSettings]] = CollectorSettings
    # A collector that needs a setting with no sane default (a URL) runs only when configured.
    default_enabled: ClassVar[bool] = True

    def __init__(self, settings: CollectorSettings, context: CollectorContext) -> None:
        self.settings = settings
        self.context = context

    @classmethod
    def instances(cls, settings: CollectorSettings, context: CollectorContext) -> list[Collector]:
        """The collectors one ``[collectors.<type>]`` section makes: one, or one per target that section lists
        (each then has its own name, runner, interval and ``alertd_collector_success``, and fails alone)."""
        return [cls(settings, context)]

    @property
    def name(self) -> str:
        return self.type_name

    def failure_samples(self, error: str) -> list[Sample]:
        """What a failed run still reports besides the runner's own samples (a target's ``up`` at 0)."""
        return []

    @abc.abstractmethod
    async def collect(self) -> list[Sample]:
        """Read the outside world once and return what was read."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most collectors hold nothing open
        """Release connections. Called once at shutdown or when a reload replaces the collector."""


@dataclass
class CollectorRun:
    collector: str
    ok: bool
    duration: float
    samples: list[Sample]
    error: str | None = None


class CollectorRunner:
    """Runs one collector under its timeout and adds the samples that say how the run went.

    Emits ``alertd_collector_success`` (1 or 0), ``alertd_collector_duration_seconds``,
    ``alertd_collector_interval_seconds`` and, after a success, ``alertd_collector_last_success_timestamp_seconds``
    (repeated on failures so that a rule can compute how far behind the collector is).
    """

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.last_success: float | None = None
        self.last_error: str | None = None

    async def run(self) -> CollectorRun:
        c = self.collector
        clock = c.context.clock
        started = time.perf_counter()
        samples: list[Sample] = []
        error: str | None = None
        try:
            samples = await asyncio.wait_for(c.collect(), timeout=c.settings.timeout)
        except TimeoutError:
            error = f"timed out after {c.settings.timeout:g}s"
        except Exception as exc:  # a collector must never take the daemon down
            error = f"{type(exc).__name__}: {exc}"
        duration = time.perf_counter() - started
        now = clock.now()
        if error is None:
            self.last_success = now
            if self.last_error is not None:
                log.info("collector %s recovered", c.name)
        elif error != self.last_error:
            log.warning("collector %s failed: %s", c.name, error)
        self.last_error = error
        labels = {"collector": c.name}
        samples = list(samples) if error is None else c.failure_samples(error)
        samples.append(Sample("alertd_collector_success", labels, 0.0 if error else 1.0, now))
        samples.append(Sample("alertd_collector_duration_seconds", labels, duration, now))
        samples.append(Sample("alertd_collector_interval_seconds", labels, c.settings.interval, now))
        if self.last_success is not None:
            samples.append(Sample("alertd_collector_last_success_timestamp_seconds", labels, self.last_success, now))
        return CollectorRun(c.name, error is None, duration, samples, error)
