"""The SQLite state store, the default: one WAL file whose schema alertd creates and migrates with a numbered list of migrations; the notification log, silences, acknowledgements, escalations and the outbox arrive as later migrations of the same list."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from alertd.errors import StateStoreError
from alertd.state.base import (
    OUTBOX_PENDING,
    OUTBOX_SUPERSEDED,
    Acknowledgement,
    AlertRecord,
    EscalationState,
    NotificationLogEntry,
    OutboxRow,
    Silence,
    StateStore,
    Transition,
)
from alertd.state.lock import StateLock
from alertd.state.rows import (
    ack_from_row,
    ack_to_row,
    alert_from_row,
    check_meta,
    encode_batch,
    escalation_from_row,
    escalation_to_row,
    nflog_from_row,
    nflog_to_row,
    outbox_from_row,
    outbox_to_row,
    silence_from_row,
    silence_to_row,
    transition_from_row,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000

# Migration N (1-based) takes the schema from version N-1 to N; the version is PRAGMA user_version.
# Append only: a released migration is never edited, because databases out there already ran it.
MIGRATIONS: Sequence[str] = (
    # 1: alerts, their history, the daemon's own values.
    """
    CREATE TABLE alerts (
        fingerprint  TEXT PRIMARY KEY,
        rule         TEXT NOT NULL,
        labels       TEXT NOT NULL,  -- JSON object, sorted keys
        state        TEXT NOT NULL,  -- pending, firing or resolved
        value        REAL,           -- NULL for no value, the text 'NaN' for NaN (SQLite stores NaN as NULL)
        annotations  TEXT NOT NULL,  -- JSON object, sorted keys
        active_at    REAL NOT NULL,
        fired_at     REAL,
        resolved_at  REAL,
        last_eval_at REAL NOT NULL,
        last_true_at REAL
    );
    CREATE TABLE alert_history (
        id          INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        rule        TEXT NOT NULL,
        labels      TEXT NOT NULL,
        at          REAL NOT NULL,
        from_state  TEXT NOT NULL,
        to_state    TEXT NOT NULL,
        value       REAL,
        annotations TEXT NOT NULL
    );
    CREATE INDEX alert_history_fingerprint_at ON alert_history (fingerprint, at);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: the notification pipeline: notification log, silences, acknowledgements, escalations, outbox.
    # (alert_silences, not silences: the name a test of later migrations creates for itself.)
    """
    CREATE TABLE notification_log (
        group_key       TEXT NOT NULL,
        receiver        TEXT NOT NULL,
        sent_at         REAL NOT NULL,
        firing          TEXT NOT NULL,  -- JSON list of fingerprints, sorted
        resolved        TEXT NOT NULL,  -- JSON list of fingerprints, sorted
        reason          TEXT NOT NULL,
        notification_id TEXT NOT NULL,
        failed          INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (group_key, receiver)
    );
    CREATE TABLE alert_silences (
        id         TEXT PRIMARY KEY,
        matchers   TEXT NOT NULL,  -- JSON list of matchers as written
        starts_at  REAL NOT NULL,
        ends_at    REAL NOT NULL,
        created_by TEXT NOT NULL,
        comment    TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE alert_acks (
        fingerprint TEXT PRIMARY KEY,
        acked_by    TEXT NOT NULL,
        comment     TEXT NOT NULL,
        at          REAL NOT NULL,
        expires_at  REAL
    );
    CREATE TABLE escalations (
        group_key  TEXT PRIMARY KEY,
        policy     TEXT NOT NULL,
        level      INTEGER NOT NULL,
        next_at    REAL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE outbox (
        id              TEXT PRIMARY KEY,
        receiver        TEXT NOT NULL,
        group_key       TEXT NOT NULL,
        payload         TEXT NOT NULL,  -- the Notification as JSON
        created_at      REAL NOT NULL,
        deadline        REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        delivered_at    REAL,
        last_error      TEXT NOT NULL DEFAULT '',
        status          TEXT NOT NULL  -- pending, delivered, failed or superseded
    );
    CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);
    CREATE INDEX outbox_group ON outbox (receiver, group_key, status);
    """,
)

_ALERT_COLUMNS = (
    "fingerprint, rule, labels, state, value, annotations, "
    "active_at, fired_at, resolved_at, last_eval_at, last_true_at"
)
_TRANSITION_COLUMNS = "fingerprint, rule, labels, at, from_state, to_state, value, annotations"

# ON CONFLICT DO UPDATE rather than INSERT OR REPLACE: REPLACE deletes the old row first, which
# would fire ON DELETE CASCADE of tables that later migrations may point at alerts.
_SQL_UPSERT_ALERT = (
    f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (fingerprint) DO UPDATE SET "
    "rule = excluded.rule, labels = excluded.labels, state = excluded.state, value = excluded.value, "
    "annotations = excluded.annotations, active_at = excluded.active_at, fired_at = excluded.fired_at, "
    "resolved_at = excluded.resolved_at, last_eval_at = excluded.last_eval_at, "
    "last_true_at = excluded.last_true_at"
)
_SQL_DELETE_ALERT = "DELETE FROM alerts WHERE fingerprint = ?"
_SQL_INSERT_HISTORY = f"INSERT INTO alert_history ({_TRANSITION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SQL_LOAD_ALERTS = f"SELECT {_ALERT_COLUMNS} FROM alerts ORDER BY fingerprint"
_SQL_HISTORY = (
    f"SELECT {_TRANSITION_COLUMNS} FROM alert_history WHERE fingerprint = ? ORDER BY at DESC, id DESC LIMIT ?"
)
_SQL_PRUNE_HISTORY = "DELETE FROM alert_history WHERE at < ?"
_SQL_GET_META = "SELECT value FROM meta WHERE key = ?"
_SQL_SET_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

_NFLOG_COLUMNS = "group_key, receiver, sent_at, firing, resolved, reason, notification_id, failed"
_SILENCE_COLUMNS = "id, matchers, starts_at, ends_at, created_by, comment, created_at"
_ACK_COLUMNS = "fingerprint, acked_by, comment, at, expires_at"
_ESCALATION_COLUMNS = "group_key, policy, level, next_at, updated_at"
_OUTBOX_COLUMNS = (
    "id, receiver, group_key, payload, created_at, deadline, attempts, next_attempt_at, delivered_at, "
    "last_error, status"
)


def _upsert(table: str, columns: str, key: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    keys = {k.strip() for k in key.split(",")}
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in keys)
    marks = ", ".join("?" for _ in names)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {updates}"


_SQL_NFLOG_ALL = f"SELECT {_NFLOG_COLUMNS} FROM notification_log ORDER BY group_key, receiver"
_SQL_NFLOG_PUT = _upsert("notification_log", _NFLOG_COLUMNS, "group_key, receiver")
_SQL_NFLOG_PRUNE = "DELETE FROM notification_log WHERE sent_at < ?"
_SQL_SILENCES = f"SELECT {_SILENCE_COLUMNS} FROM alert_silences ORDER BY id"
_SQL_SILENCE_PUT = _upsert("alert_silences", _SILENCE_COLUMNS, "id")
_SQL_SILENCE_PRUNE = "DELETE FROM alert_silences WHERE ends_at < ?"
_SQL_ACKS = f"SELECT {_ACK_COLUMNS} FROM alert_acks ORDER BY fingerprint"
_SQL_ACK_PUT = _upsert("alert_acks", _ACK_COLUMNS, "fingerprint")
_SQL_ACK_DELETE = "DELETE FROM alert_acks WHERE fingerprint = ?"
_SQL_ESCALATIONS = f"SELECT {_ESCALATION_COLUMNS} FROM escalations ORDER BY group_key"
_SQL_ESCALATION_PUT = _upsert("escalations", _ESCALATION_COLUMNS, "group_key")
_SQL_ESCALATION_DELETE = "DELETE FROM escalations WHERE group_key = ?"
_SQL_OUTBOX_SUPERSEDE = (
    "UPDATE outbox SET status = ?, next_attempt_at = NULL, last_error = ? "
    "WHERE receiver = ? AND group_key = ? AND status = ? RETURNING id"
)
_SQL_OUTBOX_INSERT = f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SQL_OUTBOX_UPDATE = (
    "UPDATE outbox SET attempts = ?, next_attempt_at = ?, delivered_at = ?, last_error = ?, status = ? WHERE id = ?"
)
_SQL_OUTBOX_PENDING = (
    f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE status = ? ORDER BY next_attempt_at, created_at, id"
)
_SQL_OUTBOX_GET = f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = ?"
_SQL_OUTBOX_PRUNE = "DELETE FROM outbox WHERE status != ? AND created_at < ?"


class SQLiteStateStore(StateStore):
    """A state store in one SQLite file, shared by the daemon's threads through one locked connection."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._owner = StateLock(self._path)
        try:
            create_private(self._path)
            self._conn: sqlite3.Connection | None = self._connect()
        except BaseException:
            self._owner.release()
            raise

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"SQLiteStateStore({str(self._path)!r})"

    # -- the one place where sqlite3 errors become StateStoreError --------------------------------

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self._path}: {what}: {exc}") from exc

    @contextlib.contextmanager
    def _use(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StateStoreError(f"state store {self._path} is closed")
            with self._translate(what):
                yield self._conn

    # -- opening -----------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            with self._translate(
                "cannot open the database (is it an alertd state file, in a writable folder?)"
            ):
                # isolation_level=None: sqlite3 opens no transactions of its own; apply and the
                # migrations say BEGIN IMMEDIATE and COMMIT themselves.
                conn = sqlite3.connect(
                    self._path,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # The first statement that reads the file: a file that is not a database fails here.
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    log.warning("state store %s: journal mode is %s, not WAL", self._path, mode)
                # NORMAL is safe in WAL mode (a power cut may lose the last commits, never corrupts).
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
            with self._translate("cannot migrate the schema"):
                self._migrate(conn)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrations = MIGRATIONS
        known = len(migrations)
        version = self._schema_version(conn, known)
        if version == known:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated while we waited.
            start = self._schema_version(conn, known)
            for number in range(start + 1, known + 1):
                for statement in split_statements(migrations[number - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        if start < known:
            log.info("state store %s: schema migrated from version %d to %d", self._path, start, known)

    def _schema_version(self, conn: sqlite3.Connection, known: int) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > known:
            raise StateStoreError(
                f"state store {self._path} has schema version {version}, written by a newer alertd "
                f"(this one knows versions up to {known}); upgrade alertd or use another state file"
            )
        return version

    # -- the interface -----------------------------------------------------------------------------

    def load_alerts(self) -> list[AlertRecord]:
        with self._use("cannot load alerts") as conn:
            rows = conn.execute(_SQL_LOAD_ALERTS).fetchall()
        return [alert_from_row(row) for row in rows]

    def apply(
        self,
        upserts: Sequence[AlertRecord],
        deletes: Sequence[str],
        transitions: Sequence[Transition],
    ) -> None:
        # Encoded before the transaction begins: a value that cannot be stored fails without
        # holding the write lock, and the transaction only runs SQL.
        batch = encode_batch(upserts, deletes, transitions)
        what = (
            f"cannot apply {len(batch.alerts)} upserts, {len(batch.deletes)} deletes "
            f"and {len(batch.transitions)} transitions; nothing was written"
        )
        with self._use(what) as conn:
            if not (batch.alerts or batch.deletes or batch.transitions):
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                if batch.alerts:
                    conn.executemany(_SQL_UPSERT_ALERT, batch.alerts)
                if batch.deletes:
                    conn.executemany(_SQL_DELETE_ALERT, [(fp,) for fp in batch.deletes])
                if batch.transitions:
                    conn.executemany(_SQL_INSERT_HISTORY, batch.transitions)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def history(self, fingerprint: str, limit: int = 100) -> list[Transition]:
        with self._use(f"cannot read the history of alert {fingerprint}") as conn:
            if limit <= 0:
                return []
            rows = conn.execute(_SQL_HISTORY, (fingerprint, limit)).fetchall()
        return [transition_from_row(row) for row in rows]

    def prune_history(self, before: float) -> int:
        with self._use("cannot prune the alert history") as conn:
            return conn.execute(_SQL_PRUNE_HISTORY, (float(before),)).rowcount

    def get_meta(self, key: str) -> str | None:
        check_meta(key)
        with self._use(f"cannot read meta key {key!r}") as conn:
            row = conn.execute(_SQL_GET_META, (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        check_meta(key, value)
        with self._use(f"cannot write meta key {key!r}") as conn:
            conn.execute(_SQL_SET_META, (key, value))

    # -- the notification pipeline ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._use(what) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def nflog_entries(self) -> list[NotificationLogEntry]:
        with self._use("cannot read the notification log") as conn:
            rows = conn.execute(_SQL_NFLOG_ALL).fetchall()
        return [nflog_from_row(row) for row in rows]

    def nflog_put(self, entries: Sequence[NotificationLogEntry]) -> None:
        rows = [nflog_to_row(e) for e in entries]
        if not rows:
            return
        with self._transaction(f"cannot write {len(rows)} notification log entries") as conn:
            conn.executemany(_SQL_NFLOG_PUT, rows)

    def nflog_prune(self, before: float) -> int:
        with self._use("cannot prune the notification log") as conn:
            return conn.execute(_SQL_NFLOG_PRUNE, (float(before),)).rowcount

    def silences(self) -> list[Silence]:
        with self._use("cannot read silences") as conn:
            rows = conn.execute(_SQL_SILENCES).fetchall()
        return [silence_from_row(row) for row in rows]

    def silence_put(self, silence: Silence) -> None:
        row = silence_to_row(silence)
        with self._use(f"cannot write silence {silence.id}") as conn:
            conn.execute(_SQL_SILENCE_PUT, row)

    def silence_prune(self, before: float) -> int:
        with self._use("cannot prune silences") as conn:
            return conn.execute(_SQL_SILENCE_PRUNE, (float(before),)).rowcount

    def acks(self) -> list[Acknowledgement]:
        with self._use("cannot read acknowledgements") as conn:
            rows = conn.execute(_SQL_ACKS).fetchall()
        return [ack_from_row(row) for row in rows]

    def ack_put(self, ack: Acknowledgement) -> None:
        row = ack_to_row(ack)
        with self._use(f"cannot write the acknowledgement of {ack.fingerprint}") as conn:
            conn.execute(_SQL_ACK_PUT, row)

    def ack_delete(self, fingerprint: str) -> bool:
        with self._use(f"cannot delete the acknowledgement of {fingerprint}") as conn:
            return conn.execute(_SQL_ACK_DELETE, (str(fingerprint),)).rowcount > 0

    def escalations(self) -> list[EscalationState]:
        with self._use("cannot read escalations") as conn:
            rows = conn.execute(_SQL_ESCALATIONS).fetchall()
        return [escalation_from_row(row) for row in rows]

    def escalation_put(self, states: Sequence[EscalationState], deletes: Sequence[str] = ()) -> None:
        if isinstance(deletes, str):
            raise StateStoreError("deletes must be a sequence of group keys, not one string")
        rows = [escalation_to_row(s) for s in states]
        if not rows and not deletes:
            return
        with self._transaction("cannot write escalations") as conn:
            conn.executemany(_SQL_ESCALATION_PUT, rows)
            conn.executemany(_SQL_ESCALATION_DELETE, [(str(k),) for k in deletes])

    def outbox_add(self, row: OutboxRow, nflog: NotificationLogEntry | None = None) -> list[str]:
        encoded = outbox_to_row(row)
        entry = nflog_to_row(nflog) if nflog is not None else None
        with self._transaction(f"cannot add notification {row.id} to the outbox") as conn:
            superseded = [
                r[0]
                for r in conn.execute(
                    _SQL_OUTBOX_SUPERSEDE,
                    (OUTBOX_SUPERSEDED, f"superseded by {row.id}", row.receiver, row.group_key, OUTBOX_PENDING),
                ).fetchall()
            ]
            conn.execute(_SQL_OUTBOX_INSERT, encoded)
            if entry is not None:
                conn.execute(_SQL_NFLOG_PUT, entry)
        return sorted(superseded)

    def outbox_update(self, row: OutboxRow) -> None:
        r = outbox_to_row(row)
        with self._use(f"cannot update outbox row {row.id}") as conn:
            conn.execute(_SQL_OUTBOX_UPDATE, (r[6], r[7], r[8], r[9], r[10], r[0]))

    def outbox_pending(self) -> list[OutboxRow]:
        with self._use("cannot read the outbox") as conn:
            rows = conn.execute(_SQL_OUTBOX_PENDING, (OUTBOX_PENDING,)).fetchall()
        return [outbox_from_row(row) for row in rows]

    def outbox_get(self, id: str) -> OutboxRow | None:
        with self._use(f"cannot read outbox row {id}") as conn:
            row = conn.execute(_SQL_OUTBOX_GET, (str(id),)).fetchone()
        return None if row is None else outbox_from_row(row)

    def outbox_prune(self, before: float) -> int:
        with self._use("cannot prune the outbox") as conn:
            return conn.execute(_SQL_OUTBOX_PRUNE, (OUTBOX_PENDING, float(before))).rowcount

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            try:
                if conn is not None:
                    with self._translate("cannot close the database"):
                        conn.close()
            finally:
                self._owner.release()


def create_private(path: Path) -> None:
    """Create the state file readable by its owner only (SQLite gives its -wal and -shm files the same mode);
    warn about an existing file that others may read: it holds silences, acknowledgements and the outbox."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o007:
            log.warning("state store %s: mode %o lets other users open it; chmod 600 it", path, mode)
        return
    except OSError as exc:
        raise StateStoreError(f"state store {path}: cannot create the file: {exc.strerror or exc}") from exc
    os.close(fd)


def _rollback(conn: sqlite3.Connection) -> None:
    # The error being handled is the one worth reporting; a failed rollback leaves the
    # transaction to SQLite, which rolls it back when the connection closes.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def split_statements(script: str) -> list[str]:
    """The statements of a SQL script, one by one: ``executescript`` would commit the open transaction first."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending = f"{pending}{piece};"
        # complete_statement knows SQLite's own rules: a ';' in a string, a comment or a trigger body
        # does not end the statement.
        if sqlite3.complete_statement(pending):
            if pending.strip().strip(";").strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip().strip(";").strip():
        raise ValueError(f"unterminated SQL statement in migration: {pending.strip()[:80]!r}")
    return statements
