"""Decision tables for what mutes an alert: inhibit rules, silences and time intervals."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from alertd.dispatch.config import InhibitRuleConfig, TimeRangeConfig
from alertd.models import Alert, AlertState
from alertd.notify.inhibit import Inhibitor
from alertd.notify.silence import SilenceError, Silences
from alertd.notify.timewindow import TimeIntervals, TimeRange
from alertd.state.base import Silence
from alertd.testing import MemoryStateStore, VirtualClock, make_alert

BROKER_RULE = {"source_matchers": ['alertname="CeleryBrokerDown"'],
               "target_matchers": ['alertname=~"QueueBacklog|WorkerLost"'], "equal": ["cluster"]}
SYMMETRIC = {"source_matchers": ['severity="critical"'], "target_matchers": ['severity=~"critical|warning"']}


def alert(name: str, state: str = "firing", **labels: str) -> Alert:
    return make_alert(name=name, labels=labels, state=AlertState(state), starts_at=0.0)


@pytest.mark.parametrize(
    ("rules", "sources", "target", "inhibited"),
    [
        ([BROKER_RULE], [alert("CeleryBrokerDown", cluster="eu")], alert("QueueBacklog", cluster="eu"), True),
        ([BROKER_RULE], [alert("CeleryBrokerDown", cluster="us")], alert("QueueBacklog", cluster="eu"), False),
        ([BROKER_RULE], [alert("CeleryBrokerDown")], alert("WorkerLost"), True),  # both missing: equal
        ([BROKER_RULE], [alert("CeleryBrokerDown", cluster="eu")], alert("WorkerLost"), False),
        ([BROKER_RULE], [alert("CeleryBrokerDown", "resolved", cluster="eu")], alert("QueueBacklog", cluster="eu"), False),
        ([BROKER_RULE], [], alert("QueueBacklog", cluster="eu"), False),
        ([BROKER_RULE], [alert("CeleryBrokerDown", cluster="eu")], alert("PaymentFailed", cluster="eu"), False),
        ([SYMMETRIC], [], alert("A", severity="critical"), False),  # not by itself
        ([SYMMETRIC], [alert("B", severity="critical")], alert("A", severity="critical"), False),  # both sides
        ([SYMMETRIC], [alert("B", severity="critical")], alert("A", severity="warning"), True),
    ],
    ids=["same-cluster", "other-cluster", "label-missing-on-both", "missing-on-one", "resolved-source", "no-source",
         "not-a-target", "not-itself", "two-sided-do-not-mute-each-other", "one-sided"],
)
def test_inhibition(rules: list[dict[str, Any]], sources: list[Alert], target: Alert, inhibited: bool) -> None:
    inhibitor = Inhibitor([InhibitRuleConfig.model_validate(r) for r in rules])
    inhibitor.observe([*sources, target])
    assert bool(inhibitor.inhibited_by(target)) is inhibited


def test_a_source_that_resolves_stops_inhibiting() -> None:
    inhibitor = Inhibitor([InhibitRuleConfig.model_validate(BROKER_RULE)])
    source, target = alert("CeleryBrokerDown", cluster="eu"), alert("QueueBacklog", cluster="eu")
    inhibitor.observe([source, target])
    assert inhibitor.inhibited_by(target) == "inhibit_rules[0]"
    inhibitor.observe([alert("CeleryBrokerDown", "resolved", cluster="eu")])
    assert inhibitor.inhibited_by(target) == ""
    inhibitor.observe([source])
    assert inhibitor.inhibited_by(target) == "inhibit_rules[0]"
    inhibitor.forget([source.fingerprint])
    assert inhibitor.inhibited_by(target) == ""


@pytest.fixture
def silences() -> Silences:
    return Silences(MemoryStateStore(), VirtualClock(1000.0))


@pytest.mark.parametrize(
    ("matchers", "labels", "at", "silenced"),
    [
        (['queue="critical"'], {"queue": "critical"}, 1500.0, True),
        (['queue="critical"'], {"queue": "default"}, 1500.0, False),
        (['queue=~"crit.*"', 'team!="payments"'], {"queue": "critical", "team": "platform"}, 1500.0, True),
        (['queue=~"crit.*"', 'team!="payments"'], {"queue": "critical", "team": "payments"}, 1500.0, False),
        (['queue="critical"'], {"queue": "critical"}, 1100.0, False),  # pending
        (['queue="critical"'], {"queue": "critical"}, 3000.0, False),  # expired
    ],
    ids=["match", "no-match", "all-matchers", "one-fails", "pending", "expired"],
)
def test_silence(silences: Silences, matchers: list[str], labels: dict[str, str], at: float, silenced: bool) -> None:
    s = silences.add(matchers, starts_at=1200.0, ends_at=2000.0, created_by="alice", comment="")
    a = make_alert(labels=labels)
    assert (silences.silenced_by(a, at) == s.id) is silenced


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"matchers": ['queue="x'], "ends_at": 2000.0}, "bad matcher"),
        ({"matchers": [], "ends_at": 2000.0}, "at least one matcher"),
        ({"matchers": ['queue=~".*"'], "ends_at": 2000.0}, "match every alert"),
        ({"matchers": ['queue="x"'], "ends_at": 900.0}, "end after it starts"),
        ({"matchers": ['queue="x"'], "ends_at": 2000.0, "created_by": ""}, "say who"),
    ],
    ids=["bad-matcher", "no-matchers", "matches-everything", "ends-in-the-past", "nobody"],
)
def test_bad_silences(silences: Silences, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SilenceError, match=message):
        silences.add(**{"created_by": "alice", "comment": "", **kwargs})


def test_silence_cache_follows_changes(silences: Silences) -> None:
    a = make_alert(labels={"queue": "critical"})
    assert silences.silenced_by(a, 1000.0) == ""
    s = silences.add(['queue="critical"'], ends_at=5000.0, created_by="alice", comment="")
    assert silences.silenced_by(a, 1000.0) == s.id
    silences.expire(s.id)
    assert silences.silenced_by(a, 1000.0) == ""
    assert [x.id for x in silences.list("expired")] == [s.id]



BERLIN_OFFICE = {"weekdays": ["monday:friday"], "times": ["09:00-17:00"], "location": "Europe/Berlin"}


@pytest.mark.parametrize(
    ("spec", "when", "inside"),
    [
        (BERLIN_OFFICE, "2026-03-02T08:30:00+00:00", True),  # Monday 09:30 in Berlin (CET)
        (BERLIN_OFFICE, "2026-03-02T07:30:00+00:00", False),  # 08:30 in Berlin
        (BERLIN_OFFICE, "2026-07-06T15:30:00+00:00", False),  # 17:30 in Berlin (CEST)
        (BERLIN_OFFICE, "2026-07-06T14:59:00+00:00", True),  # 16:59 in Berlin
        (BERLIN_OFFICE, "2026-03-07T10:00:00+00:00", False),  # Saturday
        ({"times": ["22:00-24:00"]}, "2026-03-07T23:59:00+00:00", True),
        ({"days_of_month": ["-1"]}, "2026-02-28T12:00:00+00:00", True),  # last day of February
        ({"days_of_month": ["-1"]}, "2026-02-27T12:00:00+00:00", False),
        ({"months": ["december"], "days_of_month": ["24:26"]}, "2026-12-25T12:00:00+00:00", True),
        ({"years": ["2027:2030"]}, "2026-12-25T12:00:00+00:00", False),
        ({}, "2026-12-25T12:00:00+00:00", True),
    ],
    ids=["office-hours", "before-office", "after-office-summer-time", "end-exclusive-summer", "weekend",
         "until-midnight", "last-day", "not-last-day", "christmas", "years", "empty-is-always"],
)
def test_time_ranges(spec: dict[str, Any], when: str, inside: bool) -> None:
    moment = datetime.datetime.fromisoformat(when).timestamp()
    assert TimeRange.compile(TimeRangeConfig.model_validate(spec)).contains(moment) is inside


def test_mute_and_active_intervals_say_why() -> None:
    intervals = TimeIntervals({"office": [TimeRangeConfig.model_validate(BERLIN_OFFICE)],
                               "freeze": [TimeRangeConfig.model_validate({"months": ["december"]})]})
    monday = datetime.datetime.fromisoformat("2026-03-02T08:30:00+00:00").timestamp()
    night = datetime.datetime.fromisoformat("2026-03-02T22:30:00+00:00").timestamp()
    assert intervals.mutes([], ["office"], monday) == ""
    assert intervals.mutes([], ["office"], night) == "outside active time intervals office"
    assert intervals.mutes(["freeze"], [], monday) == ""
    xmas = datetime.datetime.fromisoformat("2026-12-01T08:30:00+00:00").timestamp()
    assert intervals.mutes(["freeze"], ["office"], xmas) == "inside mute time interval freeze"


def test_a_stored_silence_re2_cannot_read_is_skipped_and_named(caplog: pytest.LogCaptureFixture) -> None:
    # Written by an alertd that compiled regexes with Python's re, which took lookaheads.
    store = MemoryStateStore()
    store.silence_put(Silence("old", ('queue=~"(?!bulk).*"', 'team="x"'), 900.0, 2000.0, "alice", "", 900.0))
    store.silence_put(Silence("new", ('queue=~"crit.*"',), 900.0, 2000.0, "alice", "", 900.0))
    with caplog.at_level("ERROR"):
        silences = Silences(store, VirtualClock(1000.0))
    assert [s.id for s in silences.list()] == ["new"]
    assert silences.silenced_by(make_alert(labels={"queue": "critical", "team": "x"}), 1000.0) == "new"
    assert any("silence old has matchers this alertd cannot read" in r.getMessage()
               and "invalid perl operator: (?!" in r.getMessage() for r in caplog.records), caplog.text
