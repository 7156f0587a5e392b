"""Build a notification pipeline from a few lines of configuration, with a recording notifier per receiver."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alertd.config.model import Config
from alertd.models import Alert, AlertState
from alertd.notify.pipeline import NotificationPipeline, build_pipeline
from alertd.state.base import StateStore
from alertd.testing import (
    MemoryStateStore,
    RecordingNotifier,
    VirtualClock,
    make_alert,
    make_notifier_context,
    run_until,
)

START = 1_700_000_000.0  # a Tuesday, 22:13:20 UTC


@dataclass
class Harness:
    pipeline: NotificationPipeline
    clock: VirtualClock
    store: StateStore
    notifiers: dict[str, RecordingNotifier]
    alerts: dict[str, Alert] = field(default_factory=dict)

    def __getitem__(self, receiver: str) -> RecordingNotifier:
        return self.notifiers[receiver]

    @property
    def now(self) -> float:
        return self.clock.now()

    def fire(self, name: str = "TestAlert", **labels: str) -> Alert:
        alert = make_alert(name=name, labels=labels, starts_at=self.now)
        self.alerts[alert.fingerprint] = alert
        self.pipeline.put([alert])
        return alert

    def fire_many(self, alerts: list[Alert]) -> None:
        for a in alerts:
            self.alerts[a.fingerprint] = a
        self.pipeline.put(alerts)

    def resolve(self, alert: Alert) -> Alert:
        done = make_alert(name=alert.name, labels=dict(alert.labels), starts_at=alert.starts_at,
                          state=AlertState.RESOLVED, ends_at=self.now)
        self.alerts[done.fingerprint] = done
        self.pipeline.put([done])
        return done

    async def at(self, seconds: float) -> None:
        """Run the pipeline until START + seconds."""
        await run_until(self.pipeline, self.clock, START + seconds)

    async def tick(self) -> None:
        await self.pipeline.tick()


def harness(
    settings: Mapping[str, Any],
    *,
    receivers: tuple[str, ...] = (),
    store: StateStore | None = None,
    clock: VirtualClock | None = None,
    notifiers: Mapping[str, RecordingNotifier] | None = None,
) -> Harness:
    """``settings``: the notification sections of alertd.toml as a dict; receivers default to type recording."""
    data = dict(settings)
    names = set(receivers) | set(data.get("receivers", {})) | _named(data)
    data["receivers"] = {n: data.get("receivers", {}).get(n, {"type": "recording"}) for n in names}
    config = Config.model_validate(data)
    clock = clock or VirtualClock(START)
    store = store if store is not None else MemoryStateStore()
    recs = dict(notifiers or {})
    for n in names:
        recs.setdefault(n, RecordingNotifier(n, context=make_notifier_context(clock)))
    for rec in recs.values():
        rec.context.clock = clock
    pipeline = build_pipeline(config, recs, store, clock, rng=random.Random(7))
    return Harness(pipeline, clock, store, recs)


def _named(value: Any) -> set[str]:
    """Every receiver that routes, fallbacks and escalation levels name."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, v in value.items():
            if key in ("receiver", "fallback") and isinstance(v, str):
                found.add(v)
            else:
                found |= _named(v)
    elif isinstance(value, list):
        for v in value:
            found |= _named(v)
    return found
