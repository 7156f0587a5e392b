"""The state store contract: what alertd remembers across restarts, the records it is kept in, and ``open_store``."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

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


def sqlite_path(url: str) -> Path | None:
    """The file that a state store URL names, or None for ``memory://``."""
    text = url.strip()
    if text == "memory://":
        return None
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
    return Path(raw).expanduser()


def open_store(url: str) -> StateStore:
    """Open the store that ``url`` names.

    ``memory://`` is a fresh in-memory store. ``sqlite:///var/lib/alertd/state.db`` (the part after
    ``sqlite://`` is an absolute path) or a plain path such as ``state.db`` is a SQLite file, whose
    folder is created (0700) when missing; the file is created 0600 and locked while open.
    """
    # The implementations are imported where they are chosen: they import this module, and a
    # deployment that names one store should not pay for importing the others.
    path = sqlite_path(url)
    if path is None:
        from alertd.state.memory import MemoryStateStore

        return MemoryStateStore()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StateStoreError(
            f"state store {path}: cannot create the folder {path.parent}: {exc.strerror or exc}"
        ) from exc
    from alertd.state.sqlite import SQLiteStateStore

    return SQLiteStateStore(path)


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
