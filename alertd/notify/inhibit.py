"""Every alert (as it changes) and the inhibit rules in; the alerts of a flush that no firing source mutes out.

A rule mutes a target alert while an alert matching its source matchers fires with the same values of the
``equal`` labels (a label missing on both sides counts as equal). An alert never mutes itself, and an alert
that matches both sides of a rule is only muted by a source that does not match the target side too
(Alertmanager's rule, so that two such alerts do not mute each other).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from alertd.dispatch.config import InhibitRuleConfig
from alertd.models import Alert
from alertd.notify import NotifyContext, NotifyMetrics, log

EqualKey = tuple[str, ...]


class _Rule:
    __slots__ = ("both", "equal", "index", "name", "source", "target")

    def __init__(self, number: int, config: InhibitRuleConfig) -> None:
        self.name = f"inhibit_rules[{number}]"
        self.source = config.source_matchers
        self.target = config.target_matchers
        self.equal = tuple(config.equal)
        # Firing sources by their values of the equal labels: a target finds its sources in one lookup.
        # Each value maps a fingerprint to whether that source also matches the target side.
        self.index: dict[EqualKey, dict[str, bool]] = {}

    def key(self, labels: Mapping[str, str]) -> EqualKey:
        get = labels.get
        return tuple(get(name, "") for name in self.equal)


class Inhibitor:
    """Keeps an index of the firing source alerts of every rule, updated as alerts come in."""

    def __init__(self, rules: Sequence[InhibitRuleConfig]) -> None:
        self.rules = [_Rule(i, r) for i, r in enumerate(rules)]
        # Per fingerprint, worked out once (labels never change): the rules it is a source / target of.
        self._sources_of: dict[str, tuple[tuple[_Rule, EqualKey, bool], ...]] = {}
        self._targets_of: dict[str, tuple[tuple[_Rule, EqualKey, bool], ...]] = {}
        self._indexed: set[str] = set()

    def observe(self, alerts: Iterable[Alert]) -> None:
        """Take note of alerts as they are now: a firing source starts muting, a resolved one stops."""
        if not self.rules:
            return
        for alert in alerts:
            fp = alert.fingerprint
            if alert.resolved:
                if fp in self._indexed:
                    self._drop(fp)
                continue
            if fp in self._indexed:
                continue
            sources = self._sources(alert)
            if sources:
                for rule, key, both in sources:
                    rule.index.setdefault(key, {})[fp] = both
                self._indexed.add(fp)

    def forget(self, fingerprints: Iterable[str]) -> None:
        for fp in fingerprints:
            if fp in self._indexed:
                self._drop(fp)
            self._sources_of.pop(fp, None)
            self._targets_of.pop(fp, None)

    def _drop(self, fp: str) -> None:
        self._indexed.discard(fp)
        for rule, key, _both in self._sources_of.get(fp, ()):
            holders = rule.index.get(key)
            if holders is not None:
                holders.pop(fp, None)
                if not holders:
                    del rule.index[key]

    def _sources(self, alert: Alert) -> tuple[tuple[_Rule, EqualKey, bool], ...]:
        found = self._sources_of.get(alert.fingerprint)
        if found is None:
            labels = alert.labels
            found = tuple(
                (rule, rule.key(labels), rule.target.matches(labels))
                for rule in self.rules
                if rule.source.matches(labels)
            )
            self._sources_of[alert.fingerprint] = found
        return found

    def _targets(self, alert: Alert) -> tuple[tuple[_Rule, EqualKey, bool], ...]:
        found = self._targets_of.get(alert.fingerprint)
        if found is None:
            labels = alert.labels
            found = tuple(
                (rule, rule.key(labels), rule.source.matches(labels))
                for rule in self.rules
                if rule.target.matches(labels)
            )
            self._targets_of[alert.fingerprint] = found
        return found

    def inhibited_by(self, alert: Alert) -> str:
        """The rule that mutes the alert now ("" when none does)."""
        if not self.rules:
            return ""
        fp = alert.fingerprint
        for rule, key, also_source in self._targets(alert):
            holders = rule.index.get(key)
            if not holders:
                continue
            for source_fp, source_both in holders.items():
                if source_fp == fp or (also_source and source_both):
                    continue
                return rule.name
        return ""


class InhibitStage:
    """Drops the alerts that a firing source alert inhibits."""

    def __init__(self, inhibitor: Inhibitor, metrics: NotifyMetrics | None = None) -> None:
        self.inhibitor = inhibitor
        self.metrics = metrics

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        if not self.inhibitor.rules:
            return alerts
        kept = []
        inhibited_by = self.inhibitor.inhibited_by
        for alert in alerts:
            rule = inhibited_by(alert)
            if rule:
                ctx.flush.muted[alert.fingerprint] = f"inhibition ({rule})"
            else:
                kept.append(alert)
        if len(kept) != len(alerts):
            muted = len(alerts) - len(kept)
            log.debug("%s: %d alerts inhibited", ctx.stage_log(), muted)
            if self.metrics is not None:
                self.metrics.muted.labels("inhibition").inc(muted)
        return kept
