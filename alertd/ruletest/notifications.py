"""A rule test's notification settings and the engine's alerts at each test time in; the notifications each
receiver would get (through the real pipeline, on the virtual clock, with a recording stand-in per receiver),
compared with the test's expectations, out.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from alertd.alerts.engine import RuleEngine
from alertd.config.load import collector_types, config_secrecy, notifier_types, reference_errors
from alertd.config.model import Config
from alertd.config.secrets import substitute
from alertd.dispatch.matchers import Matchers
from alertd.durations import format_duration
from alertd.errors import ConfigError, ConfigErrors
from alertd.models import AlertState
from alertd.notifiers.base import Notification, Notifier, ReceiverSettings
from alertd.notify.pipeline import NotificationPipeline, build_pipeline
from alertd.ruletest.model import ExpectedNotification, NotificationExpectation, RuleTest, TestFile
from alertd.sources import Document, load_document, validation_errors
from alertd.state.memory import MemoryStateStore
from alertd.testing import RecordingNotifier, VirtualClock, run_until


@functools.cache
def _plugin_manager() -> Any:
    from alertd.plugins import make_plugin_manager

    return make_plugin_manager()


class _AnyEnv(dict[str, str]):
    """Environment for loading a configuration in a test: an unset ``${VAR}`` reads as a placeholder, so
    secrets need not be present to test routing."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return os.environ.get(key, f"<{key}>")


def load_settings(path: str, spec: TestFile) -> Config:
    """The notification settings a test file names; raises ConfigErrors with file and line."""
    if spec.config is not None:
        doc = load_document(Path(path).parent / spec.config)
        pm = _plugin_manager()
        secrecy = config_secrecy(doc.data, notifier_types(pm), collector_types(pm))
        data, _ = substitute(doc, secrecy, _AnyEnv())
    else:
        doc = load_document(path)
        data = spec.notification_settings
    checked = Document(doc.path, data, doc.lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors(exc, checked)) from None
    errors = reference_errors(config, checked)
    if errors:
        raise ConfigErrors(errors)
    return config


def stand_ins(config: Config, types: Mapping[str, type[Notifier]]) -> dict[str, RecordingNotifier]:
    """A recording notifier per receiver that renders the real notifier's templates (and the receiver's)."""
    out: dict[str, RecordingNotifier] = {}
    for name, receiver in config.receivers.items():
        real = types.get(receiver.type)
        if real is None:
            raise ConfigError(f"receiver {name}: unknown type {receiver.type!r}; installed: {', '.join(sorted(types))}")
        cls = type(f"Recording{real.__name__}", (RecordingNotifier,), {"templates": dict(real.templates)})
        templates = receiver.notifier_settings().get("templates") or {}
        out[name] = cls(name, ReceiverSettings(templates=templates))
    return out


class NotificationRun:
    """One rule test's pipeline on a virtual clock, stepped along with the rule engine."""

    def __init__(self, config: Config, notifiers: Mapping[str, RecordingNotifier], test: RuleTest) -> None:
        self.clock = VirtualClock(0.0)
        self.notifiers = notifiers
        self.loop = asyncio.new_event_loop()
        self.pipeline: NotificationPipeline = build_pipeline(config, notifiers, MemoryStateStore(), self.clock)
        self.test = test
        self.checked: dict[str, int] = {}
        self._silences = sorted(test.silences, key=lambda s: s.at)
        self._acks = sorted(test.acks, key=lambda a: a.at)

    @classmethod
    def create(cls, path: str, spec: TestFile, test: RuleTest, pm: Any = None) -> NotificationRun:
        config = load_settings(path, spec)
        for exp in test.notifications:
            if exp.receiver not in config.receivers:
                raise ConfigError(f"at {format_duration(exp.at)}: no receiver named {exp.receiver!r}")
        return cls(config, stand_ins(config, notifier_types(pm or _plugin_manager())), test)

    @property
    def times(self) -> set[float]:
        return {*(e.at for e in self.test.notifications), *(s.at for s in self.test.silences),
                *(a.at for a in self.test.acks)}

    def step(self, now: float, engine: RuleEngine) -> list[str]:
        """Run the pipeline up to ``now`` with the engine's alerts; return the failed expectations at ``now``."""
        return self.loop.run_until_complete(self._step(now, engine))

    async def _step(self, now: float, engine: RuleEngine) -> list[str]:
        await run_until(self.pipeline, self.clock, now)
        while self._silences and self._silences[0].at <= now:
            s = self._silences.pop(0)
            self.pipeline.silences.add(s.matchers, ends_at=now + s.duration, created_by="alertd test", comment=s.comment)
        alerts = [engine.to_alert(r) for r in engine.alerts([AlertState.FIRING, AlertState.RESOLVED])]
        while self._acks and self._acks[0].at <= now:
            a = self._acks.pop(0)
            matchers = Matchers.parse(a.matchers)
            for alert in alerts:
                if not alert.resolved and matchers.matches(alert.labels):
                    expires = None if a.expires is None else now + a.expires
                    self.pipeline.acks.ack(alert.fingerprint, by=a.by, expires_at=expires)
        self.pipeline.put(alerts, complete=True)
        await self.pipeline.tick()
        failures = []
        for exp in self.test.notifications:
            if exp.at == now:
                failures.extend(self._compare(exp))
        return failures

    def close(self) -> None:
        self.loop.run_until_complete(self.pipeline.close())
        self.loop.close()

    def _compare(self, exp: NotificationExpectation) -> list[str]:
        sent = self.notifiers[exp.receiver].sent
        got = sent[self.checked.get(exp.receiver, 0):]
        self.checked[exp.receiver] = len(sent)
        unmatched = list(got)
        problems = []
        for want in exp.notifications:
            found = next((n for n in unmatched if not _differences(want, n)), None)
            if found is None:
                closest = min(unmatched, key=lambda n: len(_differences(want, n)), default=None)
                why = "; ".join(_differences(want, closest)) if closest is not None else "nothing was sent"
                problems.append(f"expected {_describe_expected(want)} not sent ({why})")
            else:
                unmatched.remove(found)
        problems.extend(f"unexpected {_describe(n)}" for n in unmatched)
        if not problems:
            return []
        lines = [f"at {format_duration(exp.at)}: notifications to {exp.receiver} differ"]
        lines.extend(f"  {p}" for p in problems)
        lines.append(f"  got {len(got)}:" if got else "  got: (none)")
        lines.extend(f"    - {_describe(n)}" for n in got)
        return ["\n".join(lines)]


def _differences(want: ExpectedNotification, n: Notification) -> list[str]:
    out = []
    if want.group_labels is not None and dict(n.group_labels) != want.group_labels:
        out.append(f"group labels {dict(n.group_labels)}")
    if want.status is not None and n.status != want.status:
        out.append(f"status {n.status}")
    if want.reason is not None and n.reason != want.reason:
        out.append(f"reason {n.reason!r}")
    if want.alerts is not None:
        remaining = list(n.alerts)
        for wa in want.alerts:
            hit = next(
                (a for a in remaining
                 if (wa.name is None or a.name == wa.name)
                 and all(a.labels.get(k) == v for k, v in wa.labels.items())
                 and (wa.status is None or (a.resolved == (wa.status == "resolved")))),
                None,
            )
            if hit is None:
                out.append(f"no alert like {wa.name or ''}{wa.labels or ''}")
            else:
                remaining.remove(hit)
        if remaining:
            out.append(f"{len(remaining)} more alert(s): {', '.join(sorted(a.name for a in remaining))}")
    if want.contains is not None:
        wanted = {"": want.contains} if isinstance(want.contains, str) else want.contains
        for name, text in wanted.items():
            texts: Sequence[str] = list(n.rendered.values()) if not name else [n.rendered.get(name, "")]
            if not any(text in t for t in texts):
                out.append(f"rendered {name or 'text'} does not contain {text!r}")
    return out


def _describe_expected(want: ExpectedNotification) -> str:
    parts = [f"{k}={v!r}" for k, v in want.model_dump(exclude_none=True).items()]
    return "{" + ", ".join(parts) + "}"


def _describe(n: Notification) -> str:
    alerts = ", ".join(sorted(f"{a.name}[{'resolved' if a.resolved else 'firing'}]" for a in n.alerts))
    return f"{n.status} {dict(n.group_labels)} reason={n.reason!r} alerts=[{alerts}]"
