"""Records in, the flat rows every state store implementation keeps out (and back): one codec for all of them."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from alertd.errors import StateStoreError
from alertd.models import AlertState
from alertd.state.base import (
    OUTBOX_STATUSES,
    Acknowledgement,
    AlertRecord,
    EscalationState,
    NotificationLogEntry,
    OutboxRow,
    Silence,
    Transition,
)

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
