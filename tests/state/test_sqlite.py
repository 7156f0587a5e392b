"""What only the SQLite state store does: a file that survives restarts, crashes and upgrades."""

from __future__ import annotations

import collections
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alertd.errors import StateStoreError
from alertd.models import AlertState
from alertd.state import open_store
from alertd.state import sqlite as sqlite_store
from alertd.state.sqlite import MIGRATIONS, SQLiteStateStore, split_statements
from tests.state.test_store import flat, make_record, make_transition

FIRING = AlertState.FIRING
PENDING = AlertState.PENDING
INACTIVE = AlertState.INACTIVE


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStateStore]:
    s = SQLiteStateStore(db_path)
    try:
        yield s
    finally:
        s.close()


def raw(path: Path) -> sqlite3.Connection:
    """A second, plain connection to the file, to look at what the store wrote."""
    return sqlite3.connect(path, isolation_level=None)


def dump(path: Path) -> list[str]:
    conn = raw(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = raw(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def table_names(path: Path) -> set[str]:
    conn = raw(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


# -- restarts ------------------------------------------------------------------------------------


def test_reopening_the_file_gives_the_same_state(db_path: Path) -> None:
    records = [
        make_record(labels={"queue": "a"}),
        make_record(labels={"queue": "b"}, state=PENDING, value=math.nan, fired_at=None),
        make_record(labels={"queue": "ü"}, value=-math.inf, annotations={}),
    ]
    transitions = [make_transition(r, 100.0 + i, INACTIVE, PENDING) for i, r in enumerate(records)]
    with open_store(str(db_path)) as first:
        first.apply(records, [], transitions)
        first.set_meta("last_eval_at", "1700000000.5")

    with open_store(f"sqlite://{db_path}") as second:
        assert [flat(r) for r in second.load_alerts()] == sorted(
            (flat(r) for r in records), key=lambda f: str(f[0])
        )
        for r, t in zip(records, transitions, strict=True):
            assert [flat(x) for x in second.history(r.fingerprint)] == [flat(t)]
        assert second.get_meta("last_eval_at") == "1700000000.5"


def test_values_are_stored_as_real_nan_as_text_and_labels_as_sorted_json(
    store: SQLiteStateStore, db_path: Path
) -> None:
    store.apply(
        [
            make_record(labels={"v": "nan"}, value=math.nan),
            make_record(labels={"v": "inf"}, value=math.inf),
            make_record(labels={"v": "none"}, value=None),
            make_record(labels={"v": "one", "b": "ü", "a": "1"}, value=1.5),
        ],
        [],
        [],
    )
    conn = raw(db_path)
    try:
        types = dict(conn.execute("SELECT json_extract(labels, '$.v'), typeof(value) FROM alerts").fetchall())
        labels = conn.execute(
            "SELECT labels FROM alerts WHERE json_extract(labels, '$.v') = 'one'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert types == {"nan": "text", "inf": "real", "none": "null", "one": "real"}
    assert labels == '{"a":"1","b":"ü","v":"one"}'


# -- connection settings -------------------------------------------------------------------------


def test_wal_mode_is_on_in_the_file(store: SQLiteStateStore, db_path: Path) -> None:
    conn = raw(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [
        pytest.param("journal_mode", "wal", id="journal_mode"),
        pytest.param("synchronous", 1, id="synchronous-normal"),
        pytest.param("foreign_keys", 1, id="foreign_keys"),
        pytest.param("busy_timeout", 5000, id="busy_timeout"),
    ],
)
def test_connection_pragmas(store: SQLiteStateStore, pragma: str, expected: object) -> None:
    with store._use("test") as conn:
        assert conn.execute(f"PRAGMA {pragma}").fetchone()[0] == expected


def test_usable_from_another_thread(store: SQLiteStateStore) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.apply([make_record()], [], [])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert errors == []
    assert len(store.load_alerts()) == 1


# -- migrations ----------------------------------------------------------------------------------


def test_a_new_file_gets_the_whole_schema(store: SQLiteStateStore, db_path: Path) -> None:
    assert user_version(db_path) == len(MIGRATIONS)
    assert {"alerts", "alert_history", "meta"} <= table_names(db_path)
    conn = raw(db_path)
    try:
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(alert_history)")}
        columns = [row[2] for row in conn.execute("PRAGMA index_info(alert_history_fingerprint_at)")]
    finally:
        conn.close()
    assert "alert_history_fingerprint_at" in indexes
    assert columns == ["fingerprint", "at"]


@pytest.mark.parametrize("how", ["empty-file", "sqlite-database-without-tables"])
def test_a_database_at_version_0_is_migrated(db_path: Path, how: str) -> None:
    if how == "empty-file":
        db_path.write_bytes(b"")
    else:
        conn = raw(db_path)
        conn.execute("PRAGMA user_version = 0")
        conn.execute("CREATE TABLE scratch (x)")
        conn.execute("DROP TABLE scratch")
        conn.close()
        assert db_path.stat().st_size > 0
        assert table_names(db_path) == set()
    with SQLiteStateStore(db_path) as store:
        store.apply([make_record()], [], [])
    assert user_version(db_path) == len(MIGRATIONS)
    assert {"alerts", "alert_history", "meta"} <= table_names(db_path)


def test_a_database_from_a_newer_alertd_is_refused_and_left_alone(db_path: Path) -> None:
    conn = raw(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = dump(db_path)
    with pytest.raises(StateStoreError, match=r"schema version 99.*newer alertd") as info:
        SQLiteStateStore(db_path)
    assert str(db_path) in str(info.value)
    assert user_version(db_path) == 99
    assert dump(db_path) == before


def test_later_migrations_run_in_order_on_an_existing_file(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SQLiteStateStore(db_path) as store:
        store.apply([make_record()], [], [])
    monkeypatch.setattr(
        sqlite_store,
        "MIGRATIONS",
        (
            *MIGRATIONS,
            "CREATE TABLE silences (id TEXT PRIMARY KEY, matchers TEXT NOT NULL);",
            "ALTER TABLE silences ADD COLUMN comment TEXT NOT NULL DEFAULT 'it''s; fine';"
            "INSERT INTO silences (id, matchers) VALUES ('s1', '{}');",
        ),
    )
    with SQLiteStateStore(db_path) as store:
        assert len(store.load_alerts()) == 1
    assert user_version(db_path) == len(MIGRATIONS) + 2
    conn = raw(db_path)
    try:
        assert conn.execute("SELECT id, comment FROM silences").fetchall() == [("s1", "it's; fine")]
    finally:
        conn.close()


def test_a_failing_migration_changes_nothing(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SQLiteStateStore(db_path) as store:
        store.apply([make_record()], [], [])
    before = dump(db_path)
    monkeypatch.setattr(
        sqlite_store,
        "MIGRATIONS",
        (*MIGRATIONS, "CREATE TABLE good (x);", "CREATE TABLE also_good (y); CREATE TABLE broken (;"),
    )
    with pytest.raises(StateStoreError, match="cannot migrate the schema") as info:
        SQLiteStateStore(db_path)
    assert str(db_path) in str(info.value)
    assert user_version(db_path) == len(MIGRATIONS)
    assert dump(db_path) == before


@pytest.mark.parametrize(
    ("script", "statements"),
    [
        pytest.param("CREATE TABLE a (x);", ["CREATE TABLE a (x);"], id="one"),
        pytest.param("CREATE TABLE a (x)", ["CREATE TABLE a (x);"], id="no-final-semicolon"),
        pytest.param(
            "CREATE TABLE a (x); INSERT INTO a VALUES ('a;b');",
            ["CREATE TABLE a (x);", "INSERT INTO a VALUES ('a;b');"],
            id="semicolon-in-string",
        ),
        pytest.param(
            "CREATE TABLE a (\n  x -- a comment; with a semicolon\n);\n",
            ["CREATE TABLE a (\n  x -- a comment; with a semicolon\n);"],
            id="semicolon-in-comment",
        ),
        pytest.param(
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; DELETE FROM c; END;",
            ["CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; DELETE FROM c; END;"],
            id="trigger-body",
        ),
        pytest.param(" \n ; ;", [], id="empty"),
    ],
)
def test_split_statements(script: str, statements: list[str]) -> None:
    assert split_statements(script) == statements


def test_split_statements_refuses_an_unterminated_statement() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        split_statements("CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b;")


# -- files that are not state stores -------------------------------------------------------------


def test_a_text_file_is_refused(db_path: Path) -> None:
    db_path.write_text("queue: default\nthreshold: 100\n" * 200)
    with pytest.raises(StateStoreError) as info:
        open_store(str(db_path))
    assert not isinstance(info.value, sqlite3.Error)
    assert str(db_path) in str(info.value)
    assert "not a database" in str(info.value)
    assert db_path.read_text().startswith("queue: default")


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match=str(tmp_path)):
        SQLiteStateStore(tmp_path)


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(StateStoreError, match="cannot create the folder"):
        open_store(str(tmp_path / "plain-file" / "state.db"))


# -- atomicity -----------------------------------------------------------------------------------


def _seed(store: SQLiteStateStore) -> None:
    seeded = [make_record(labels={"queue": f"seed-{i}"}) for i in range(3)]
    store.apply(seeded, [], [make_transition(r, 1.0, INACTIVE, FIRING) for r in seeded])
    store.set_meta("last_eval_at", "1.0")


@pytest.mark.parametrize(
    "trigger",
    [
        pytest.param(
            "CREATE TRIGGER fail BEFORE INSERT ON alerts WHEN json_extract(NEW.labels, '$.queue') = 'new-150' "
            "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END",
            id="fails-in-the-middle-of-the-upserts",
        ),
        pytest.param(
            "CREATE TRIGGER fail BEFORE DELETE ON alerts WHEN json_extract(OLD.labels, '$.queue') = 'seed-2' "
            "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END",
            id="fails-in-the-deletes",
        ),
        pytest.param(
            "CREATE TRIGGER fail BEFORE INSERT ON alert_history WHEN json_extract(NEW.labels, '$.queue') = 'new-199' "
            "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END",
            id="fails-at-the-last-transition",
        ),
    ],
)
def test_apply_that_fails_mid_transaction_leaves_the_file_as_it_was(db_path: Path, trigger: str) -> None:
    with SQLiteStateStore(db_path) as store:
        _seed(store)
    conn = raw(db_path)
    conn.execute(trigger)
    conn.close()
    before = dump(db_path)

    with SQLiteStateStore(db_path) as store:
        new = [make_record(labels={"queue": f"new-{i}"}) for i in range(200)]
        seed = {r.labels["queue"]: r.fingerprint for r in store.load_alerts()}
        with pytest.raises(StateStoreError, match="refused by test trigger") as info:
            store.apply(
                [*new, make_record(labels={"queue": "seed-0"}, value=0.0)],
                [seed["seed-1"], seed["seed-2"]],
                [make_transition(r, 2.0, INACTIVE, FIRING) for r in new],
            )
        assert str(db_path) in str(info.value)
        assert "nothing was written" in str(info.value)
        assert isinstance(info.value.__cause__, sqlite3.Error)
        assert dump(db_path) == before
        # The connection is not left inside a transaction: the next batch goes through.
        store.apply([make_record(labels={"queue": "after"})], [], [])
        store.set_meta("last_eval_at", "3.0")
    assert len(dump(db_path)) == len(before) + 1


def test_apply_that_fails_on_broken_sql_leaves_the_file_as_it_was(
    store: SQLiteStateStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(store)
    before = dump(db_path)
    monkeypatch.setattr(sqlite_store, "_SQL_INSERT_HISTORY", "INSERT INTO no_such_table VALUES (?)")
    record = make_record(labels={"queue": "new"})
    with pytest.raises(StateStoreError, match="no such table"):
        store.apply(
            [record], [store.load_alerts()[0].fingerprint], [make_transition(record, 2.0, INACTIVE, PENDING)]
        )
    assert dump(db_path) == before


class _InterruptedAtHistory:
    """Stands in for the store's connection and is interrupted (as by Ctrl-C) when history is written."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)

    def executemany(self, sql: str, rows: object) -> sqlite3.Cursor:
        if sql == sqlite_store._SQL_INSERT_HISTORY:
            raise KeyboardInterrupt
        return self._conn.executemany(sql, rows)  # type: ignore[arg-type]


def test_apply_interrupted_by_a_non_sqlite_exception_is_rolled_back(
    store: SQLiteStateStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(store)
    before = dump(db_path)
    assert store._conn is not None
    monkeypatch.setattr(store, "_conn", _InterruptedAtHistory(store._conn))
    record = make_record(labels={"queue": "new"})
    with pytest.raises(KeyboardInterrupt):
        store.apply(
            [record], [store.load_alerts()[0].fingerprint], [make_transition(record, 2.0, INACTIVE, PENDING)]
        )
    assert dump(db_path) == before
    monkeypatch.undo()
    store.apply([record], [], [])
    assert len(store.load_alerts()) == 4


# -- crash safety --------------------------------------------------------------------------------

BATCH_SIZE = 200

# Batch n: BATCH_SIZE alerts labelled batch=n and one transition each, in one apply; then meta
# batch=n. The next batch is built before n is reported, so that the report is followed at once by
# the next write and the kill lands inside apply.
WRITER = r"""
import sys
from alertd.models import AlertState
from alertd.state import AlertRecord, Transition, open_store


def batch(n, size):
    records = [
        AlertRecord(
            fingerprint=f"{n:06d}-{i:04d}", rule="crash/Writer", labels={"batch": str(n), "i": str(i)},
            state=AlertState.FIRING, value=float(i), annotations={"summary": "x" * 200},
            active_at=float(n), fired_at=float(n), resolved_at=None, last_eval_at=float(n), last_true_at=float(n),
        )
        for i in range(size)
    ]
    transitions = [
        Transition(r.fingerprint, r.rule, r.labels, float(n), AlertState.PENDING, AlertState.FIRING, r.value, r.annotations)
        for r in records
    ]
    return records, transitions


store = open_store(sys.argv[1])
size = int(sys.argv[2])
n = max((int(r.labels["batch"]) for r in store.load_alerts()), default=0) + 1
records, transitions = batch(n, size)
while True:
    store.apply(records, [], transitions)
    store.set_meta("batch", str(n))
    records, transitions = batch(n + 1, size)
    print(n, flush=True)
    n += 1
"""


def _kill_after(db_path: Path, committed: int) -> None:
    """Run the writer until it reports ``committed`` more batches, then SIGKILL it mid-stride."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path), str(BATCH_SIZE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    # If the writer hangs, killing it ends the readline below instead of the test hanging.
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        for _ in range(committed):
            line = proc.stdout.readline()
            assert line, f"writer stopped early: {proc.stderr.read() if proc.stderr else ''}"
        # The writer went from its report straight into the next apply: this lands inside it.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL


def _check_whole_batches(db_path: Path) -> int:
    """Every batch is all there or not there at all; returns how many batches are there."""
    with SQLiteStateStore(db_path) as store:
        alerts = store.load_alerts()
        meta = store.get_meta("batch")
    per_batch = collections.Counter(int(r.labels["batch"]) for r in alerts)
    batches = max(per_batch, default=0)
    assert sorted(per_batch) == list(range(1, batches + 1))
    assert set(per_batch.values()) <= {BATCH_SIZE}

    conn = raw(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        history = dict(
            conn.execute(
                "SELECT CAST(json_extract(labels, '$.batch') AS INTEGER), count(*) FROM alert_history GROUP BY 1"
            ).fetchall()
        )
    finally:
        conn.close()
    assert history == dict(per_batch)
    # The meta key is written just after its batch, so it is the last batch or the one before.
    assert meta is not None
    assert int(meta) in {batches, batches - 1}
    return batches


def test_killed_writer_leaves_only_whole_batches(db_path: Path) -> None:
    batches = 0
    for _ in range(3):
        _kill_after(db_path, committed=3)
        now = _check_whole_batches(db_path)
        assert now >= batches + 3
        batches = now
