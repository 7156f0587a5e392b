"""A loaded configuration in, one run of every enabled collector out (``alertd collect``)."""

from __future__ import annotations

import asyncio
import math

from alertd.clock import Clock, SystemClock
from alertd.collectors.base import Collector, CollectorContext, CollectorRun, CollectorRunner
from alertd.config import LoadedConfig
from alertd.models import Sample


def build_collectors(loaded: LoadedConfig, context: CollectorContext) -> list[Collector]:
    return [
        collector
        for name, settings in sorted(loaded.collector_settings.items())
        if settings.enabled
        for collector in loaded.collector_types[name].instances(settings, context)
    ]


def make_context(loaded: LoadedConfig, clock: Clock | None = None) -> CollectorContext:
    celery = loaded.config.celery
    app = None
    if celery.app:
        from alertd.celery_app import import_app

        app = import_app(celery.app)
    return CollectorContext(
        broker_url=celery.broker_url,
        queues=list(celery.queues),
        broker_transport_options=dict(celery.broker_transport_options),
        celery_app=app,
        clock=clock or SystemClock(),
    )


async def collect_once(loaded: LoadedConfig, only: set[str] | None = None) -> list[CollectorRun]:
    """Run every enabled collector (or those of the types named in ``only``) once, side by side, and close them."""
    collectors = [
        c for c in build_collectors(loaded, make_context(loaded)) if only is None or {c.name, c.type_name} & only
    ]
    try:
        return list(await asyncio.gather(*(CollectorRunner(c).run() for c in collectors)))
    finally:
        for c in collectors:
            await c.close()


def format_sample(sample: Sample) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
    value = sample.value
    shown = repr(value) if math.isnan(value) or math.isinf(value) or value != int(value) else str(int(value))
    return f"{sample.name}{{{labels}}} {shown}"


def format_runs(runs: list[CollectorRun]) -> str:
    lines = []
    for run in sorted(runs, key=lambda r: r.collector):
        status = "ok" if run.ok else f"FAILED: {run.error}"
        lines.append(f"# {run.collector}: {status} ({run.duration * 1000:.1f} ms, {len(run.samples)} samples)")
        lines.extend(format_sample(s) for s in sorted(run.samples, key=lambda s: (s.name, sorted(s.labels.items()))))
    return "\n".join(lines)
