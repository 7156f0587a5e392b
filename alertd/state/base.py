"""The state store contract: what alertd remembers across restarts, the records it is kept in, and ``open_store``."""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple, Self

from alertd.errors import StateStoreError
from alertd.models import AlertState


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One active alert as the store keeps it; inactive alerts are deleted, not stored."""

    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    state: AlertState
    value: float | None
    annotations: Mapping[str, str]
    active_at: float
    fired_at: float | None
    resolved_at: float | None
    last_eval_at: float
    last_true_at: float | None


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of an alert's state, appended to its history."""

    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    at: float
    from_state: AlertState
    to_state: AlertState
    value: float | None
    annotations: Mapping[str, str]


class StateStore(abc.ABC):
    """Where the daemon keeps alert state, alert history and a few values of its own.

    Every method raises ``StateStoreError`` and nothing else when the store cannot be read or
    written, and also after ``close``. Implementations are safe to call from several threads.
    """

    @abc.abstractmethod
    def load_alerts(self) -> list[AlertRecord]:
        """Every stored alert, ordered by fingerprint."""

    @abc.abstractmethod
    def apply(
        self,
        upserts: Sequence[AlertRecord],
        deletes: Sequence[str],
        transitions: Sequence[Transition],
    ) -> None:
        """Write one evaluation's changes in one transaction: all of them or, on error, none.

        Upserts replace the alert with the same fingerprint; deletes (by fingerprint) run after
        the upserts, so a fingerprint in both ends up deleted; transitions are appended to history.
        """

    @abc.abstractmethod
    def history(self, fingerprint: str, limit: int = 100) -> list[Transition]:
        """The alert's last ``limit`` transitions, newest first (ties: the last appended first)."""

    @abc.abstractmethod
    def prune_history(self, before: float) -> int:
        """Delete the transitions that happened before ``before``; return how many were deleted."""

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A value the daemon stored with ``set_meta``, or None."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Store a small value for the daemon (e.g. the last evaluation time)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store; calling it again does nothing."""

    # -- notification log (dedup) --------------------------------------------------------------------------

    @abc.abstractmethod
    def nflog_entries(self) -> list[NotificationLogEntry]:
        """Every notification log entry, ordered by (group_key, receiver)."""

    @abc.abstractmethod
    def nflog_put(self, entries: Sequence[NotificationLogEntry]) -> None:
        """Replace the entries with the same (group_key, receiver), all in one transaction."""

    @abc.abstractmethod
    def nflog_prune(self, before: float) -> int:
        """Delete the entries last sent before ``before``; return how many were deleted."""

    # -- silences ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def silences(self) -> list[Silence]:
        """Every stored silence (pending, active and expired), ordered by id."""

    @abc.abstractmethod
    def silence_put(self, silence: Silence) -> None:
        """Create or replace the silence with the same id (expiring one early is a put with ``ends_at`` now)."""

    @abc.abstractmethod
    def silence_prune(self, before: float) -> int:
        """Delete the silences that ended before ``before``; return how many were deleted."""

    # -- acknowledgements ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def acks(self) -> list[Acknowledgement]:
        """Every stored acknowledgement, ordered by fingerprint."""

    @abc.abstractmethod
    def ack_put(self, ack: Acknowledgement) -> None:
        """Create or replace the acknowledgement of ``ack.fingerprint`` (one per alert)."""

    @abc.abstractmethod
    def ack_delete(self, fingerprint: str) -> bool:
        """Remove the acknowledgement of an alert; return whether there was one."""

    # -- escalation ----------------------------------------------------------------------------------------

    @abc.abstractmethod
    def escalations(self) -> list[EscalationState]:
        """Every stored escalation state, ordered by group key."""

    @abc.abstractmethod
    def escalation_put(self, states: Sequence[EscalationState], deletes: Sequence[str] = ()) -> None:
        """Replace the states with the same group key and delete those of ``deletes``, in one transaction."""

    # -- outbox --------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def outbox_add(self, row: OutboxRow, nflog: NotificationLogEntry | None = None) -> list[str]:
        """Accept a notification before it is sent, in one transaction with its notification log entry.

        A pending row of the same (receiver, group_key) is marked superseded: the new row carries the
        group's newer state. Returns the ids of the superseded rows.
        """

    @abc.abstractmethod
    def outbox_update(self, row: OutboxRow) -> None:
        """Write an attempt's outcome: attempts, next_attempt_at, delivered_at, last_error and status."""

    @abc.abstractmethod
    def outbox_pending(self) -> list[OutboxRow]:
        """The rows still to deliver, by next attempt time then creation time."""

    @abc.abstractmethod
    def outbox_get(self, id: str) -> OutboxRow | None:
        """One row by id, whatever its status."""

    @abc.abstractmethod
    def outbox_prune(self, before: float) -> int:
        """Delete the finished rows (delivered, failed, superseded) created before ``before``."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_store(url: str) -> StateStore:
    """Open the store that ``url`` names.

    ``memory://`` is a fresh in-memory store. ``sqlite:///var/lib/alertd/state.db`` (the part after
    ``sqlite://`` is an absolute path) or a plain path such as ``state.db`` is a SQLite file, whose
    folder is created when missing.
    """
    # The implementations are imported where they are chosen: they import this module, and a
    # deployment that names one store should not pay for importing the others.
    text = url.strip()
    if text == "memory://":
        from alertd.state.memory import MemoryStateStore

        return MemoryStateStore()
    if text.startswith("sqlite:///"):
        # One leading slash whether written file-URL style (sqlite:///abs) or with four slashes.
        raw = "/" + text[len("sqlite:///") :].lstrip("/")
        if raw == "/":
            raise StateStoreError(f"state store URL {url!r} names no file; use sqlite:///path/to/file.db")
    elif text and "://" not in text:
        raw = text
    else:
        raise StateStoreError(
            f"unsupported state store URL {url!r}; use a file path, sqlite:///path or memory://"
        )
    path = Path(raw).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateStoreError(
            f"state store {path}: cannot create the folder {path.parent}: {exc.strerror or exc}"
        ) from exc
    from alertd.state.sqlite import SQLiteStateStore

    return SQLiteStateStore(path)


# The flat form of the records, shared by every implementation so that they all accept, refuse
# and give back exactly the same values: the column order is the field order of the records.

StoredValue = float | str | None
"""A value as stored: None, a float, or the text ``"NaN"`` (SQLite turns NaN into NULL, JSON has no NaN)."""

AlertRow = tuple[str, str, str, str, StoredValue, str, float, float | None, float | None, float, float | None]
TransitionRow = tuple[str, str, str, float, str, str, StoredValue, str]

_NAN = "NaN"


class Batch(NamedTuple):
    """The arguments of ``StateStore.apply``, checked and encoded before any write begins."""

    alerts: list[AlertRow]
    deletes: list[str]
    transitions: list[TransitionRow]


def encode_mapping(mapping: Mapping[str, str]) -> str:
    return json.dumps(dict(mapping), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def decode_mapping(text: str) -> Mapping[str, str]:
    decoded = json.loads(text)
    if not isinstance(decoded, dict):
        raise ValueError(f"expected a JSON object, got {text[:60]!r}")
    return MappingProxyType(decoded)


def encode_value(value: float | None) -> StoredValue:
    if value is None:
        return None
    number = float(value)
    if math.isnan(number):
        return _NAN
    # SQLite gives -0.0 back as 0.0; every store does the same so that they all agree.
    return number + 0.0


def decode_value(stored: Any) -> float | None:
    if stored is None:
        return None
    if stored == _NAN:
        return math.nan
    return float(stored)


def _time(value: float | None) -> float | None:
    return None if value is None else float(value)


def alert_to_row(record: AlertRecord) -> AlertRow:
    try:
        state = AlertState(record.state)
        if state is AlertState.INACTIVE:
            raise ValueError("state is inactive; inactive alerts are deleted, not stored")
        return (
            str(record.fingerprint),
            str(record.rule),
            encode_mapping(record.labels),
            state.value,
            encode_value(record.value),
            encode_mapping(record.annotations),
            float(record.active_at),
            _time(record.fired_at),
            _time(record.resolved_at),
            float(record.last_eval_at),
            _time(record.last_true_at),
        )
    except (TypeError, ValueError) as exc:
        raise StateStoreError(
            f"cannot store alert {record.fingerprint} of rule {record.rule!r}: {exc}"
        ) from exc


def alert_from_row(row: Sequence[Any]) -> AlertRecord:
    try:
        return AlertRecord(
            fingerprint=row[0],
            rule=row[1],
            labels=decode_mapping(row[2]),
            state=AlertState(row[3]),
            value=decode_value(row[4]),
            annotations=decode_mapping(row[5]),
            active_at=float(row[6]),
            fired_at=_time(row[7]),
            resolved_at=_time(row[8]),
            last_eval_at=float(row[9]),
            last_true_at=_time(row[10]),
        )
    except (TypeError, ValueError) as exc:
        raise StateStoreError(f"stored alert {row[0]} is unreadable: {exc}") from exc


def transition_to_row(transition: Transition) -> TransitionRow:
    try:
        return (
            str(transition.fingerprint),
            str(transition.rule),
            encode_mapping(transition.labels),
            float(transition.at),
            AlertState(transition.from_state).value,
            AlertState(transition.to_state).value,
            encode_value(transition.value),
            encode_mapping(transition.annotations),
        )
    except (TypeError, ValueError) as exc:
        raise StateStoreError(
            f"cannot store a transition of alert {transition.fingerprint} of rule {transition.rule!r}: {exc}"
        ) from exc


def transition_from_row(row: Sequence[Any]) -> Transition:
    try:
        return Transition(
            fingerprint=row[0],
            rule=row[1],
            labels=decode_mapping(row[2]),
            at=float(row[3]),
            from_state=AlertState(row[4]),
            to_state=AlertState(row[5]),
            value=decode_value(row[6]),
            annotations=decode_mapping(row[7]),
        )
    except (TypeError, ValueError) as exc:
        raise StateStoreError(f"stored transition of alert {row[0]} is unreadable: {exc}") from exc


def encode_batch(
    upserts: Sequence[AlertRecord],
    deletes: Sequence[str],
    transitions: Sequence[Transition],
) -> Batch:
    """Check and encode the arguments of ``apply``; raises ``StateStoreError`` for a value that cannot be stored."""
    # A lone string is a Sequence[str] too: without this, apply(..., deletes="ab12", ...) would
    # quietly delete the alerts "a", "b", "1" and "2".
    if isinstance(deletes, str):
        raise StateStoreError("deletes must be a sequence of fingerprints, not one string")
    return Batch(
        alerts=[alert_to_row(record) for record in upserts],
        deletes=[str(fp) for fp in deletes],
        transitions=[transition_to_row(t) for t in transitions],
    )


def check_meta(key: str, value: object = "") -> None:
    """Refuse non-string meta keys and values, which SQLite would otherwise store as something else."""
    if not isinstance(key, str):
        raise StateStoreError(f"meta key must be a string, got {type(key).__name__}")
    if not isinstance(value, str):
        raise StateStoreError(f"meta value of {key!r} must be a string, got {type(value).__name__}")


# -- the notification pipeline's records ---------------------------------------------------------------
# Dedup reads the notification log, the silence stage the silences, escalation the acknowledgements and
# its own state, and the retry stage the outbox. Each concept has a few methods on ``StateStore``, so a
# Redis implementation can follow with hashes and sorted sets.


@dataclass(frozen=True, slots=True)
class NotificationLogEntry:
    """What one receiver was last told about one alert group (Alertmanager's nflog entry)."""

    group_key: str
    receiver: str
    sent_at: float
    firing: frozenset[str]  # fingerprints of the firing alerts in that notification
    resolved: frozenset[str]  # fingerprints of the resolved alerts in it
    reason: str
    notification_id: str = ""
    failed: bool = False  # the notification was given up: the next flush sends again


SILENCE_PENDING = "pending"
SILENCE_ACTIVE = "active"
SILENCE_EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes the alerts its matchers match (all of them) from ``starts_at`` until ``ends_at``."""

    id: str
    matchers: tuple[str, ...]  # as written: 'queue=~"crit.*"'
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float

    def status(self, now: float) -> str:
        if now < self.starts_at:
            return SILENCE_PENDING
        if now < self.ends_at:
            return SILENCE_ACTIVE
        return SILENCE_EXPIRED


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Someone is on it: stops the escalation of one alert until it resolves (or ``expires_at``)."""

    fingerprint: str
    by: str
    comment: str
    at: float
    expires_at: float | None = None

    def active(self, now: float) -> bool:
        return self.at <= now and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class EscalationState:
    """How far the escalation of one alert group went, and when its next level is due."""

    group_key: str
    policy: str
    level: int
    next_at: float | None
    updated_at: float


OUTBOX_PENDING = "pending"
OUTBOX_DELIVERED = "delivered"
OUTBOX_FAILED = "failed"
OUTBOX_SUPERSEDED = "superseded"
OUTBOX_STATUSES = (OUTBOX_PENDING, OUTBOX_DELIVERED, OUTBOX_FAILED, OUTBOX_SUPERSEDED)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One notification written before it is sent, and what became of it."""

    id: str
    receiver: str
    group_key: str
    payload: str  # the Notification as JSON (alertd.notify.outbox encodes it)
    created_at: float
    deadline: float  # no attempt starts after this
    attempts: int = 0
    next_attempt_at: float | None = None  # None once delivered, failed or superseded
    delivered_at: float | None = None
    last_error: str = ""
    status: str = OUTBOX_PENDING


def encode_set(values: frozenset[str] | set[str]) -> str:
    return json.dumps(sorted(values), ensure_ascii=False, separators=(",", ":"))


def decode_set(text: str) -> frozenset[str]:
    decoded = json.loads(text)
    if not isinstance(decoded, list):
        raise ValueError(f"expected a JSON list, got {text[:60]!r}")
    return frozenset(str(v) for v in decoded)


NflogRow = tuple[str, str, float, str, str, str, str, int]
SilenceRow = tuple[str, str, float, float, str, str, float]
AckRow = tuple[str, str, str, float, float | None]
EscalationRow = tuple[str, str, int, float | None, float]
OutboxRowTuple = tuple[str, str, str, str, float, float, int, float | None, float | None, str, str]


def _fail(what: str, exc: Exception) -> StateStoreError:
    return StateStoreError(f"{what}: {exc}")


def nflog_to_row(e: NotificationLogEntry) -> NflogRow:
    try:
        return (str(e.group_key), str(e.receiver), float(e.sent_at), encode_set(e.firing),
                encode_set(e.resolved), str(e.reason), str(e.notification_id), int(bool(e.failed)))
    except (TypeError, ValueError) as exc:
        raise _fail(f"cannot store the notification log of {e.group_key} for {e.receiver}", exc) from exc


def nflog_from_row(row: Sequence[Any]) -> NotificationLogEntry:
    try:
        return NotificationLogEntry(row[0], row[1], float(row[2]), decode_set(row[3]), decode_set(row[4]),
                                    row[5], row[6], bool(row[7]))
    except (TypeError, ValueError) as exc:
        raise _fail(f"stored notification log of {row[0]} is unreadable", exc) from exc


def silence_to_row(s: Silence) -> SilenceRow:
    try:
        if isinstance(s.matchers, str):
            raise ValueError("matchers must be a sequence of strings, not one string")
        if not s.matchers:
            raise ValueError("a silence needs at least one matcher")
        if float(s.ends_at) < float(s.starts_at):
            raise ValueError("ends_at is before starts_at")
        matchers = json.dumps([str(m) for m in s.matchers], ensure_ascii=False, separators=(",", ":"))
        return (str(s.id), matchers, float(s.starts_at), float(s.ends_at), str(s.created_by), str(s.comment),
                float(s.created_at))
    except (TypeError, ValueError) as exc:
        raise _fail(f"cannot store silence {s.id}", exc) from exc


def silence_from_row(row: Sequence[Any]) -> Silence:
    try:
        matchers = json.loads(row[1])
        if not isinstance(matchers, list):
            raise ValueError("matchers are not a JSON list")
        return Silence(row[0], tuple(str(m) for m in matchers), float(row[2]), float(row[3]), row[4], row[5],
                       float(row[6]))
    except (TypeError, ValueError) as exc:
        raise _fail(f"stored silence {row[0]} is unreadable", exc) from exc


def ack_to_row(a: Acknowledgement) -> AckRow:
    try:
        return (str(a.fingerprint), str(a.by), str(a.comment), float(a.at), _time(a.expires_at))
    except (TypeError, ValueError) as exc:
        raise _fail(f"cannot store the acknowledgement of {a.fingerprint}", exc) from exc


def ack_from_row(row: Sequence[Any]) -> Acknowledgement:
    try:
        return Acknowledgement(row[0], row[1], row[2], float(row[3]), _time(row[4]))
    except (TypeError, ValueError) as exc:
        raise _fail(f"stored acknowledgement of {row[0]} is unreadable", exc) from exc


def escalation_to_row(e: EscalationState) -> EscalationRow:
    try:
        return (str(e.group_key), str(e.policy), int(e.level), _time(e.next_at), float(e.updated_at))
    except (TypeError, ValueError) as exc:
        raise _fail(f"cannot store the escalation of {e.group_key}", exc) from exc


def escalation_from_row(row: Sequence[Any]) -> EscalationState:
    try:
        return EscalationState(row[0], row[1], int(row[2]), _time(row[3]), float(row[4]))
    except (TypeError, ValueError) as exc:
        raise _fail(f"stored escalation of {row[0]} is unreadable", exc) from exc


def outbox_to_row(r: OutboxRow) -> OutboxRowTuple:
    try:
        if r.status not in OUTBOX_STATUSES:
            raise ValueError(f"unknown status {r.status!r}")
        return (str(r.id), str(r.receiver), str(r.group_key), str(r.payload), float(r.created_at),
                float(r.deadline), int(r.attempts), _time(r.next_attempt_at), _time(r.delivered_at),
                str(r.last_error), r.status)
    except (TypeError, ValueError) as exc:
        raise _fail(f"cannot store outbox row {r.id}", exc) from exc


def outbox_from_row(row: Sequence[Any]) -> OutboxRow:
    try:
        return OutboxRow(row[0], row[1], row[2], row[3], float(row[4]), float(row[5]), int(row[6]),
                         _time(row[7]), _time(row[8]), row[9], row[10])
    except (TypeError, ValueError) as exc:
        raise _fail(f"stored outbox row {row[0]} is unreadable", exc) from exc
