"""The state store contract, run against every implementation."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from alertd.errors import StateStoreError
from alertd.models import AlertState, fingerprint
from alertd.state import AlertRecord, StateStore, Transition, open_store
from alertd.state.memory import MemoryStateStore
from alertd.state.sqlite import SQLiteStateStore

FIRING = AlertState.FIRING
PENDING = AlertState.PENDING
RESOLVED = AlertState.RESOLVED
INACTIVE = AlertState.INACTIVE


def make_record(
    rule: str = "celery/QueueBacklog", labels: Mapping[str, str] | None = None, **changes: Any
) -> AlertRecord:
    labels = {"queue": "default", "severity": "page"} if labels is None else labels
    fields: dict[str, Any] = {
        "fingerprint": changes.pop("fingerprint", None) or fingerprint(rule, labels),
        "rule": rule,
        "labels": labels,
        "state": FIRING,
        "value": 1234.5,
        "annotations": {"summary": "queue default has 1234 tasks waiting"},
        "active_at": 1_700_000_000.25,
        "fired_at": 1_700_000_300.5,
        "resolved_at": None,
        "last_eval_at": 1_700_000_315.0,
        "last_true_at": 1_700_000_315.0,
    }
    fields.update(changes)
    return AlertRecord(**fields)


def make_transition(
    record: AlertRecord, at: float, from_state: AlertState, to_state: AlertState
) -> Transition:
    return Transition(
        fingerprint=record.fingerprint,
        rule=record.rule,
        labels=record.labels,
        at=at,
        from_state=from_state,
        to_state=to_state,
        value=record.value,
        annotations=record.annotations,
    )


def flat(obj: AlertRecord | Transition) -> tuple[object, ...]:
    """The fields of a record in a form where NaN equals NaN and any mapping equals the same dict."""
    out: list[object] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float) and math.isnan(value):
            value = "<NaN>"
        elif isinstance(value, Mapping):
            value = dict(value)
        out.append(value)
    return tuple(out)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    url = str(tmp_path / "state.db") if request.param == "sqlite" else "memory://"
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()


# -- contract ------------------------------------------------------------------------------------


def test_empty_store_has_nothing(store: StateStore) -> None:
    assert store.load_alerts() == []
    assert store.history("0123456789abcdef") == []
    assert store.prune_history(before=math.inf) == 0
    assert store.get_meta("last_eval_at") is None


ROUND_TRIP = [
    pytest.param(make_record(), id="firing"),
    pytest.param(
        make_record(
            state=PENDING, value=None, annotations={}, fired_at=None, resolved_at=None, last_true_at=None
        ),
        id="pending-all-optional-none",
    ),
    pytest.param(
        make_record(state=RESOLVED, resolved_at=1_700_000_900.0, last_true_at=1_700_000_600.0), id="resolved"
    ),
    pytest.param(make_record(value=math.nan), id="nan-value"),
    pytest.param(make_record(value=math.inf), id="inf-value"),
    pytest.param(make_record(value=-math.inf), id="minus-inf-value"),
    pytest.param(make_record(value=-0.0), id="negative-zero"),
    pytest.param(make_record(value=5e-324), id="tiny-value"),
    pytest.param(make_record(labels={}), id="no-labels"),
    pytest.param(
        make_record(
            labels={"queue": "fila-é", "host": "工作者-1", "emoji": "🔥", "quote": 'it\'s "x"; --'},
            annotations={"summary": "Überlast: 🔥 «default»", "multi": "line one\nline two"},
        ),
        id="unicode-and-quotes",
    ),
    pytest.param(
        make_record(rule="group/rule with spaces", fingerprint="not-a-hash"), id="opaque-fingerprint"
    ),
]


@pytest.mark.parametrize("record", ROUND_TRIP)
def test_upsert_then_load_round_trips_every_field(store: StateStore, record: AlertRecord) -> None:
    store.apply([record], [], [])
    [loaded] = store.load_alerts()
    assert flat(loaded) == flat(record)
    assert loaded.state is record.state
    assert isinstance(loaded.state, AlertState)
    if record.value is not None:
        assert isinstance(loaded.value, float)


def test_negative_zero_comes_back_as_zero(store: StateStore) -> None:
    # SQLite cannot keep the sign of zero; the other stores drop it too, so that all agree.
    store.apply([make_record(value=-0.0)], [], [])
    [loaded] = store.load_alerts()
    assert loaded.value == 0.0
    assert math.copysign(1.0, loaded.value) == 1.0


@pytest.mark.parametrize("record", ROUND_TRIP)
def test_transition_round_trips_every_field(store: StateStore, record: AlertRecord) -> None:
    transition = make_transition(record, 1_700_000_300.5, INACTIVE, PENDING)
    store.apply([], [], [transition])
    [loaded] = store.history(record.fingerprint)
    assert flat(loaded) == flat(transition)
    assert loaded.from_state is INACTIVE
    assert loaded.to_state is PENDING


def test_upsert_replaces_the_alert_with_the_same_fingerprint(store: StateStore) -> None:
    first = make_record(state=PENDING, value=10.0, fired_at=None, last_true_at=None)
    second = make_record(state=FIRING, value=20.0, annotations={"summary": "now firing"})
    assert first.fingerprint == second.fingerprint
    store.apply([first], [], [])
    store.apply([second], [], [])
    assert [flat(r) for r in store.load_alerts()] == [flat(second)]


def test_last_upsert_of_a_fingerprint_in_one_batch_wins(store: StateStore) -> None:
    first = make_record(value=1.0)
    second = make_record(value=2.0)
    store.apply([first, second], [], [])
    assert [r.value for r in store.load_alerts()] == [2.0]


def test_load_orders_by_fingerprint(store: StateStore) -> None:
    records = [make_record(labels={"queue": f"q{i}"}) for i in range(20)]
    store.apply(records, [], [])
    assert [r.fingerprint for r in store.load_alerts()] == sorted(r.fingerprint for r in records)


def test_delete(store: StateStore) -> None:
    keep = make_record(labels={"queue": "keep"})
    gone = make_record(labels={"queue": "gone"})
    store.apply([keep, gone], [], [])
    store.apply([], [gone.fingerprint, "no-such-alert"], [])
    assert [r.fingerprint for r in store.load_alerts()] == [keep.fingerprint]


def test_delete_runs_after_upsert_in_one_batch(store: StateStore) -> None:
    record = make_record()
    store.apply([record], [record.fingerprint], [])
    assert store.load_alerts() == []


def test_upsert_delete_and_transitions_together(store: StateStore) -> None:
    old = make_record(labels={"queue": "old"}, state=RESOLVED, resolved_at=1_700_000_400.0)
    store.apply([old], [], [])
    new = make_record(labels={"queue": "new"}, state=PENDING, fired_at=None)
    store.apply(
        [new],
        [old.fingerprint],
        [
            make_transition(new, 1_700_000_500.0, INACTIVE, PENDING),
            make_transition(old, 1_700_000_500.0, RESOLVED, INACTIVE),
        ],
    )
    assert [r.fingerprint for r in store.load_alerts()] == [new.fingerprint]
    assert [t.to_state for t in store.history(old.fingerprint)] == [INACTIVE]
    assert [t.to_state for t in store.history(new.fingerprint)] == [PENDING]


def test_history_is_newest_first_and_outlives_the_alert(store: StateStore) -> None:
    record = make_record()
    other = make_record(labels={"queue": "other"})
    steps = [(100.0, INACTIVE, PENDING), (160.0, PENDING, FIRING), (400.0, FIRING, RESOLVED)]
    # Appended out of time order on purpose: history is ordered by time, not by arrival.
    store.apply([], [], [make_transition(record, at, a, b) for at, a, b in reversed(steps)])
    store.apply([], [], [make_transition(other, 200.0, INACTIVE, PENDING)])
    store.apply([], [record.fingerprint], [make_transition(record, 700.0, RESOLVED, INACTIVE)])
    assert [(t.at, t.to_state) for t in store.history(record.fingerprint)] == [
        (700.0, INACTIVE),
        (400.0, RESOLVED),
        (160.0, FIRING),
        (100.0, PENDING),
    ]


def test_history_ties_put_the_last_appended_first(store: StateStore) -> None:
    record = make_record()
    store.apply([], [], [make_transition(record, 50.0, INACTIVE, PENDING)])
    store.apply([], [], [make_transition(record, 50.0, PENDING, FIRING)])
    assert [t.to_state for t in store.history(record.fingerprint)] == [FIRING, PENDING]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param(100, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], id="default-is-more-than-there-is"),
        pytest.param(3, [9, 8, 7], id="three"),
        pytest.param(1, [9], id="one"),
        pytest.param(0, [], id="zero"),
        pytest.param(-1, [], id="negative"),
    ],
)
def test_history_limit(store: StateStore, limit: int, expected: list[int]) -> None:
    record = make_record()
    store.apply([], [], [make_transition(record, float(i), FIRING, FIRING) for i in range(10)])
    assert [int(t.at) for t in store.history(record.fingerprint, limit=limit)] == expected


@pytest.mark.parametrize(
    ("before", "pruned", "left"),
    [
        pytest.param(0.0, 0, [40, 30, 20, 10], id="before-everything"),
        pytest.param(10.0, 0, [40, 30, 20, 10], id="strictly-before"),
        pytest.param(25.0, 2, [40, 30], id="some"),
        pytest.param(math.inf, 4, [], id="everything"),
    ],
)
def test_prune_history(store: StateStore, before: float, pruned: int, left: list[int]) -> None:
    a = make_record(labels={"queue": "a"})
    b = make_record(labels={"queue": "b"})
    store.apply(
        [],
        [],
        [
            make_transition(a, 10.0, INACTIVE, PENDING),
            make_transition(b, 20.0, INACTIVE, PENDING),
            make_transition(a, 30.0, PENDING, FIRING),
            make_transition(b, 40.0, PENDING, FIRING),
        ],
    )
    assert store.prune_history(before) == pruned
    remaining = store.history(a.fingerprint) + store.history(b.fingerprint)
    assert sorted((int(t.at) for t in remaining), reverse=True) == left


def test_meta_get_and_set(store: StateStore) -> None:
    assert store.get_meta("last_eval_at") is None
    store.set_meta("last_eval_at", "1700000000.5")
    store.set_meta("owner", "nœud-1")
    assert store.get_meta("last_eval_at") == "1700000000.5"
    store.set_meta("last_eval_at", "1700000015.5")
    assert store.get_meta("last_eval_at") == "1700000015.5"
    assert store.get_meta("owner") == "nœud-1"
    store.set_meta("empty", "")
    assert store.get_meta("empty") == ""


def test_stored_records_do_not_follow_later_changes_to_the_callers_dicts(store: StateStore) -> None:
    labels = {"queue": "default"}
    annotations = {"summary": "before"}
    record = make_record(labels=labels, annotations=annotations)
    store.apply([record], [], [make_transition(record, 1.0, INACTIVE, PENDING)])
    labels["queue"] = "changed"
    annotations["summary"] = "after"
    [loaded] = store.load_alerts()
    [transition] = store.history(record.fingerprint)
    assert dict(loaded.labels) == dict(transition.labels) == {"queue": "default"}
    assert dict(loaded.annotations) == {"summary": "before"}


class NotJSON:
    pass


BAD_BATCHES = [
    pytest.param(
        [make_record(labels={"queue": "fine"}), make_record(state=INACTIVE)], [], [], id="inactive-alert"
    ),
    pytest.param(
        [make_record(labels={"queue": "fine"}), make_record(labels={"queue": NotJSON()}, fingerprint="bad")],  # type: ignore[dict-item]
        [],
        [],
        id="labels-not-json",
    ),
    pytest.param(
        [make_record(labels={"queue": "fine"})],
        [],
        [make_transition(make_record(annotations={"x": NotJSON()}), 1.0, INACTIVE, PENDING)],
        id="transition-annotations-not-json",
    ),
    pytest.param(
        [make_record(labels={"queue": "fine"}), make_record(state="bogus")], [], [], id="unknown-state"
    ),
    pytest.param(
        [make_record(labels={"queue": "fine"}), make_record(active_at=None)], [], [], id="missing-time"
    ),
    pytest.param([make_record(labels={"queue": "fine"})], "abc", [], id="deletes-is-one-string"),
]


@pytest.mark.parametrize(("upserts", "deletes", "transitions"), BAD_BATCHES)
def test_a_batch_that_cannot_be_stored_is_refused_whole(
    store: StateStore, upserts: list[AlertRecord], deletes: list[str], transitions: list[Transition]
) -> None:
    before = make_record(labels={"queue": "before"})
    store.apply([before], [], [make_transition(before, 1.0, INACTIVE, PENDING)])
    with pytest.raises(StateStoreError):
        store.apply(upserts, deletes, transitions)
    assert [r.fingerprint for r in store.load_alerts()] == [before.fingerprint]
    assert len(store.history(before.fingerprint)) == 1
    assert all(store.history(r.fingerprint) == [] for r in upserts if r.fingerprint != before.fingerprint)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(1, "x", id="int-key"),
        pytest.param("k", 1, id="int-value"),
        pytest.param("k", None, id="none-value"),
    ],
)
def test_meta_refuses_non_strings(store: StateStore, key: Any, value: Any) -> None:
    with pytest.raises(StateStoreError):
        store.set_meta(key, value)


def test_a_closed_store_refuses_every_call(store: StateStore) -> None:
    store.close()
    store.close()
    calls = [
        store.load_alerts,
        lambda: store.apply([make_record()], [], []),
        lambda: store.history("x"),
        lambda: store.prune_history(1.0),
        lambda: store.get_meta("k"),
        lambda: store.set_meta("k", "v"),
    ]
    for call in calls:
        with pytest.raises(StateStoreError, match="closed"):
            call()


def test_context_manager_closes(store: StateStore) -> None:
    with store as s:
        s.set_meta("k", "v")
    with pytest.raises(StateStoreError, match="closed"):
        store.get_meta("k")


def test_concurrent_writers_from_threads(store: StateStore) -> None:
    threads_n, batches_n = 8, 25
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def write(t: int) -> None:
        try:
            start.wait()
            for b in range(batches_n):
                record = make_record(labels={"thread": str(t), "batch": str(b)})
                store.apply([record], [], [make_transition(record, float(b), INACTIVE, PENDING)])
                store.set_meta(f"thread-{t}", str(b))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.load_alerts()) == threads_n * batches_n
    assert [store.get_meta(f"thread-{t}") for t in range(threads_n)] == [str(batches_n - 1)] * threads_n


# -- open_store ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        pytest.param("{tmp}/state.db", "state.db", id="plain-path"),
        pytest.param("{tmp}/new/folders/state.db", "new/folders/state.db", id="plain-path-missing-folders"),
        pytest.param("sqlite://{tmp}/url.db", "url.db", id="sqlite-url"),
        pytest.param("sqlite:///{tmp}/four-slashes.db", "four-slashes.db", id="sqlite-url-four-slashes"),
        pytest.param("sqlite://{tmp}/a/b/url.db", "a/b/url.db", id="sqlite-url-missing-folders"),
    ],
)
def test_open_store_sqlite(tmp_path: Path, url: str, relative: str) -> None:
    store = open_store(url.format(tmp=tmp_path))
    try:
        assert isinstance(store, SQLiteStateStore)
        assert store.path == tmp_path / relative
        assert (tmp_path / relative).is_file()
    finally:
        store.close()


def test_open_store_memory_is_fresh_each_time() -> None:
    first = open_store("memory://")
    first.set_meta("k", "v")
    second = open_store("memory://")
    assert isinstance(first, MemoryStateStore)
    assert isinstance(second, MemoryStateStore)
    assert second.get_meta("k") is None


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("redis://localhost:6379/0", id="redis"),
        pytest.param("postgresql://db/alertd", id="postgres"),
        pytest.param("memory://name", id="memory-with-name"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
    ],
)
def test_open_store_refuses_unsupported_urls(url: str) -> None:
    with pytest.raises(
        StateStoreError, match=r"unsupported state store URL .*use a file path, sqlite:///path or memory://"
    ):
        open_store(url)


@pytest.mark.parametrize(
    "url", [pytest.param("sqlite:///", id="three-slashes"), pytest.param("sqlite:////", id="four-slashes")]
)
def test_open_store_refuses_a_sqlite_url_without_a_file(url: str) -> None:
    with pytest.raises(StateStoreError, match="names no file"):
        open_store(url)
