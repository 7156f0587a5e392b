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
