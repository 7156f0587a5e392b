from __future__ import annotations

from pathlib import Path

from alertd.alerts.engine import RuleEngine
from alertd.models import AlertState, Sample
from alertd.series.store import SeriesStore
from alertd.state.sqlite import SQLiteStateStore
from tests.helpers import ruleset

RULES = """
[[groups]]
name = "q"
[[groups.rules]]
name = "Backlog"
select = "depth"
condition = "value > 10"
for = "60s"
keep_firing_for = "2m"
summary = "{{ labels.queue }} has {{ value | int }}"
"""


def feed(store: SeriesStore, t: float, depth: float, queue: str = "a") -> None:
    store.add(Sample("depth", {"queue": queue}, depth, t))


def test_for_survives_a_restart(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, RULES)
    db = tmp_path / "state.db"
    series = SeriesStore()
    engine = RuleEngine(rules, series, SQLiteStateStore(db))
    feed(series, 0, 50)
    assert [t.to_state for t in engine.evaluate(0).transitions] == [AlertState.PENDING]
    feed(series, 30, 50)
    engine.evaluate(30)
    engine.state.close()

    # A new process: same file, fresh series store; the pending alert keeps its start time.
    series2 = SeriesStore()
    engine2 = RuleEngine(rules, series2, SQLiteStateStore(db))
    assert [r.state for r in engine2.alerts()] == [AlertState.PENDING]
    feed(series2, 60, 50)
    transitions = engine2.evaluate(60).transitions
    assert [(t.from_state, t.to_state) for t in transitions] == [(AlertState.PENDING, AlertState.FIRING)]
    history = engine2.state.history(transitions[0].fingerprint)
    assert [h.to_state for h in history] == [AlertState.FIRING, AlertState.PENDING]
    assert history[0].annotations == {"summary": "a has 50"}


def test_keep_firing_for_survives_a_restart(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, RULES)
    db = tmp_path / "state.db"
    series = SeriesStore()
    engine = RuleEngine(rules, series, SQLiteStateStore(db))
    for t in (0, 60):
        feed(series, t, 50)
        engine.evaluate(t)
    feed(series, 90, 1)
    engine.evaluate(90)  # condition false, held up by keep_firing_for
    assert [r.state for r in engine.alerts()] == [AlertState.FIRING]
    engine.state.close()

    engine2 = RuleEngine(rules, SeriesStore(), SQLiteStateStore(db))
    assert not engine2.evaluate(150).transitions  # 90s after the last true evaluation: still held
    resolved = engine2.evaluate(181).transitions
    assert [t.to_state for t in resolved] == [AlertState.RESOLVED]


def test_each_label_set_is_its_own_alert_with_a_stable_fingerprint(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, RULES.replace('for = "60s"', 'for = "0s"'))
    series = SeriesStore()
    engine = RuleEngine(rules, series, SQLiteStateStore(tmp_path / "s.db"))
    feed(series, 0, 50, "a")
    feed(series, 0, 70, "b")
    feed(series, 0, 5, "c")
    engine.evaluate(0)
    firing = {r.labels["queue"]: r.fingerprint for r in engine.alerts([AlertState.FIRING])}
    assert set(firing) == {"a", "b"}
    other = RuleEngine(rules, SeriesStore(), SQLiteStateStore(tmp_path / "other.db"))
    other.series.add(Sample("depth", {"queue": "a"}, 99, 0))
    other.evaluate(0)
    assert [r.fingerprint for r in other.alerts()] == [firing["a"]]


def test_a_vanished_series_resolves_its_alert(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, RULES.replace('for = "60s"', 'for = "0s"').replace('keep_firing_for = "2m"', ""))
    series = SeriesStore(lookback=60)
    engine = RuleEngine(rules, series, SQLiteStateStore(tmp_path / "s.db"))
    feed(series, 0, 50)
    engine.evaluate(0)
    assert [t.to_state for t in engine.evaluate(61).transitions] == [AlertState.RESOLVED]


def test_a_rule_that_fails_at_run_time_does_not_stop_the_others(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        [[rules]]
        name = "Broken"
        select = "depth"
        value = "1 / (value - value)"
        condition = "value > 0"

        [[rules]]
        name = "Fine"
        select = "depth"
        condition = "value > 10"
        """,
    )
    series = SeriesStore()
    engine = RuleEngine(rules, series, SQLiteStateStore(tmp_path / "s.db"))
    feed(series, 0, 50)
    result = engine.evaluate(0)
    assert "ZeroDivisionError" in result.errors["rules/Broken"]
    assert [t.labels["alertname"] for t in result.transitions] == ["Fine"]


def test_replacing_rules_keeps_the_state_of_rules_that_remain(tmp_path: Path) -> None:
    one = RULES.replace('for = "60s"', 'for = "0s"')
    two = one + one[one.index("[[groups.rules]]"):].replace("Backlog", "Other")
    series = SeriesStore()
    engine = RuleEngine(ruleset(tmp_path, two), series, SQLiteStateStore(tmp_path / "s.db"))
    feed(series, 0, 50)
    engine.evaluate(0)
    before = {r.labels["alertname"]: r for r in engine.alerts()}
    assert set(before) == {"Backlog", "Other"}
    engine.replace_rules(ruleset(tmp_path, one, name="new.toml"))
    # group name "q" is the same, so Backlog's id is unchanged; Other is gone.
    after = {r.labels["alertname"]: r for r in engine.alerts()}
    assert set(after) == {"Backlog"}
    assert after["Backlog"].active_at == before["Backlog"].active_at
    assert len(engine.state.load_alerts()) == 1


def test_the_series_store_keeps_what_the_longest_window_needs(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
        [[rules]]
        name = "Slow"
        select = "x"
        function = "increase"
        window = "3h"
        condition = "value > 0"
        """,
    )
    series = SeriesStore(retention=3600, lookback=300)
    RuleEngine(rules, series, SQLiteStateStore(tmp_path / "s.db"))
    assert series.retention >= 3 * 3600 + 300
