"""Silences (matchers, a start and an end, who and why) in the state store; the alerts of a flush that no
active silence matches out.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

from alertd.clock import Clock
from alertd.dispatch.matchers import Matchers
from alertd.errors import AlertdError
from alertd.models import Alert
from alertd.notify import NotifyContext, NotifyMetrics, log
from alertd.state.base import SILENCE_ACTIVE, SILENCE_EXPIRED, Silence, StateStore


class SilenceError(AlertdError):
    """A silence cannot be created or changed as asked (bad matchers, an end before the start, unknown id)."""


class Silences:
    """Every silence, kept in the state store and in memory; answers "is this alert silenced, and by what"."""

    def __init__(self, store: StateStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._silences: dict[str, Silence] = {}
        self._matchers: dict[str, Matchers] = {}
        # The silences that match an alert's labels depend only on the set of silences: cached per
        # fingerprint until a silence is added or changed. Whether they are active is checked each time.
        self._version = 0
        self._cache: dict[str, tuple[int, tuple[str, ...]]] = {}
        self.reload()

    def reload(self) -> None:
        """Read every silence from the state store again (another replica may have changed them)."""
        silences = self.store.silences()
        compiled = {}
        for s in silences:
            try:
                compiled[s.id] = Matchers.parse(s.matchers)
            except ValueError as exc:  # written by a newer alertd, or by hand: skip it, say so
                log.error("silence %s has matchers this alertd cannot read, ignored: %s", s.id, exc)
        with self._lock:
            self._silences = {s.id: s for s in silences if s.id in compiled}
            self._matchers = compiled
            self._version += 1

    def add(
        self,
        matchers: list[str],
        *,
        ends_at: float,
        starts_at: float | None = None,
        created_by: str,
        comment: str,
        id: str | None = None,
    ) -> Silence:
        """Create a silence (or replace the one with ``id``); raises SilenceError for bad input."""
        now = self.clock.now()
        try:
            compiled = Matchers.parse(matchers)
        except ValueError as exc:
            raise SilenceError(f"bad matcher: {exc}") from None
        if not compiled:
            raise SilenceError("a silence needs at least one matcher")
        if all(m.matches_empty for m in compiled.matchers):
            raise SilenceError("these matchers match every alert (each matches an empty label); add one that does not")
        start = now if starts_at is None else starts_at
        if ends_at <= start:
            raise SilenceError("a silence must end after it starts")
        if not created_by.strip():
            raise SilenceError("created_by is required: say who silences")
        silence = Silence(
            id=id or uuid.uuid4().hex,
            matchers=tuple(compiled.texts()),
            starts_at=float(start),
            ends_at=float(ends_at),
            created_by=created_by,
            comment=comment,
            created_at=now,
        )
        self.store.silence_put(silence)
        with self._lock:
            self._silences[silence.id] = silence
            self._matchers[silence.id] = compiled
            self._version += 1
        log.info("silence %s by %s until %s: %s (%s)", silence.id, created_by, ends_at, compiled, comment)
        return silence

    def expire(self, id: str) -> Silence:
        """End a silence now (a pending one ends before it started)."""
        now = self.clock.now()
        with self._lock:
            silence = self._silences.get(id)
        if silence is None:
            raise SilenceError(f"no silence {id!r}")
        if silence.status(now) == SILENCE_EXPIRED:
            return silence
        ended = replace(silence, ends_at=now, starts_at=min(silence.starts_at, now))
        self.store.silence_put(ended)
        with self._lock:
            self._silences[id] = ended
            self._version += 1
        log.info("silence %s expired early", id)
        return ended

    def get(self, id: str) -> Silence | None:
        with self._lock:
            return self._silences.get(id)

    def list(self, status: str | None = None) -> list[Silence]:
        now = self.clock.now()
        with self._lock:
            found = list(self._silences.values())
        return sorted((s for s in found if status is None or s.status(now) == status), key=lambda s: s.starts_at)

    def prune(self, before: float) -> int:
        """Forget the silences that ended before ``before``."""
        count = self.store.silence_prune(before)
        if count:
            self.reload()
        return count

    def silenced_by(self, alert: Alert, now: float) -> str:
        """The id of an active silence that matches the alert ("" when none does)."""
        if not self._silences:
            return ""
        fp = alert.fingerprint
        cached = self._cache.get(fp)
        if cached is None or cached[0] != self._version:
            labels = alert.labels
            ids = tuple(sid for sid, m in self._matchers.items() if m.matches(labels))
            cached = (self._version, ids)
            self._cache[fp] = cached
        for sid in cached[1]:
            silence = self._silences.get(sid)
            if silence is not None and silence.status(now) == SILENCE_ACTIVE:
                return sid
        return ""

    def forget(self, fingerprint: str) -> None:
        self._cache.pop(fingerprint, None)


class SilenceStage:
    """Drops the alerts that an active silence matches."""

    def __init__(self, silences: Silences, metrics: NotifyMetrics | None = None) -> None:
        self.silences = silences
        self.metrics = metrics

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        silenced_by = self.silences.silenced_by
        kept = []
        for alert in alerts:
            sid = silenced_by(alert, ctx.now)
            if sid:
                ctx.flush.muted[alert.fingerprint] = f"silence ({sid})"
            else:
                kept.append(alert)
        if len(kept) != len(alerts):
            muted = len(alerts) - len(kept)
            log.debug("%s: %d alerts silenced", ctx.stage_log(), muted)
            if self.metrics is not None:
                self.metrics.muted.labels("silence").inc(muted)
        return kept
