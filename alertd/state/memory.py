"""The in-memory state store: the SQLite store's behaviour without a file, for tests and ``alertd test``."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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
from alertd.state.rows import (
    AckRow,
    AlertRow,
    EscalationRow,
    NflogRow,
    OutboxRowTuple,
    SilenceRow,
    TransitionRow,
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


class MemoryStateStore(StateStore):
    """Keeps the same encoded rows the SQLite store writes, so both accept, refuse and return the same values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._alerts: dict[str, AlertRow] = {}
        # In append order, which breaks ties between transitions at the same time, as SQLite's id does.
        self._history: list[TransitionRow] = []
        self._meta: dict[str, str] = {}
        self._nflog: dict[tuple[str, str], NflogRow] = {}
        self._silences: dict[str, SilenceRow] = {}
        self._acks: dict[str, AckRow] = {}
        self._escalations: dict[str, EscalationRow] = {}
        self._outbox: dict[str, OutboxRowTuple] = {}

    def __repr__(self) -> str:
        return "MemoryStateStore()"

    @contextmanager
    def _open(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise StateStoreError("state store memory:// is closed")
            yield

    def load_alerts(self) -> list[AlertRecord]:
        with self._open():
            rows = [self._alerts[fp] for fp in sorted(self._alerts)]
        return [alert_from_row(row) for row in rows]

    def apply(
        self,
        upserts: Sequence[AlertRecord],
        deletes: Sequence[str],
        transitions: Sequence[Transition],
    ) -> None:
        # Everything that can fail happens before the first change: all or nothing.
        batch = encode_batch(upserts, deletes, transitions)
        with self._open():
            for row in batch.alerts:
                self._alerts[row[0]] = row
            for fp in batch.deletes:
                self._alerts.pop(fp, None)
            self._history.extend(batch.transitions)

    def history(self, fingerprint: str, limit: int = 100) -> list[Transition]:
        with self._open():
            if limit <= 0:
                return []
            matching = [(row[3], seq, row) for seq, row in enumerate(self._history) if row[0] == fingerprint]
        matching.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [transition_from_row(row) for _, _, row in matching[:limit]]

    def prune_history(self, before: float) -> int:
        with self._open():
            kept = [row for row in self._history if not row[3] < before]
            pruned = len(self._history) - len(kept)
            self._history = kept
        return pruned

    def get_meta(self, key: str) -> str | None:
        check_meta(key)
        with self._open():
            return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        check_meta(key, value)
        with self._open():
            self._meta[key] = value

    # -- the notification pipeline ---------------------------------------------------------------------------

    def nflog_entries(self) -> list[NotificationLogEntry]:
        with self._open():
            rows = [self._nflog[k] for k in sorted(self._nflog)]
        return [nflog_from_row(row) for row in rows]

    def nflog_put(self, entries: Sequence[NotificationLogEntry]) -> None:
        rows = [nflog_to_row(e) for e in entries]
        with self._open():
            for row in rows:
                self._nflog[(row[0], row[1])] = row

    def nflog_prune(self, before: float) -> int:
        with self._open():
            old = [k for k, row in self._nflog.items() if row[2] < before]
            for k in old:
                del self._nflog[k]
        return len(old)

    def silences(self) -> list[Silence]:
        with self._open():
            rows = [self._silences[k] for k in sorted(self._silences)]
        return [silence_from_row(row) for row in rows]

    def silence_put(self, silence: Silence) -> None:
        row = silence_to_row(silence)
        with self._open():
            self._silences[row[0]] = row

    def silence_prune(self, before: float) -> int:
        with self._open():
            old = [k for k, row in self._silences.items() if row[3] < before]
            for k in old:
                del self._silences[k]
        return len(old)

    def acks(self) -> list[Acknowledgement]:
        with self._open():
            rows = [self._acks[k] for k in sorted(self._acks)]
        return [ack_from_row(row) for row in rows]

    def ack_put(self, ack: Acknowledgement) -> None:
        row = ack_to_row(ack)
        with self._open():
            self._acks[row[0]] = row

    def ack_delete(self, fingerprint: str) -> bool:
        with self._open():
            return self._acks.pop(str(fingerprint), None) is not None

    def escalations(self) -> list[EscalationState]:
        with self._open():
            rows = [self._escalations[k] for k in sorted(self._escalations)]
        return [escalation_from_row(row) for row in rows]

    def escalation_put(self, states: Sequence[EscalationState], deletes: Sequence[str] = ()) -> None:
        if isinstance(deletes, str):
            raise StateStoreError("deletes must be a sequence of group keys, not one string")
        rows = [escalation_to_row(s) for s in states]
        with self._open():
            for row in rows:
                self._escalations[row[0]] = row
            for key in deletes:
                self._escalations.pop(str(key), None)

    def outbox_add(self, row: OutboxRow, nflog: NotificationLogEntry | None = None) -> list[str]:
        encoded = outbox_to_row(row)
        entry = nflog_to_row(nflog) if nflog is not None else None
        with self._open():
            if encoded[0] in self._outbox:
                raise StateStoreError(f"cannot add notification {row.id} to the outbox: the id is taken")
            superseded = []
            for key, old in self._outbox.items():
                if old[1] == encoded[1] and old[2] == encoded[2] and old[10] == OUTBOX_PENDING:
                    self._outbox[key] = (*old[:7], None, old[8], f"superseded by {row.id}", OUTBOX_SUPERSEDED)
                    superseded.append(key)
            self._outbox[encoded[0]] = encoded
            if entry is not None:
                self._nflog[(entry[0], entry[1])] = entry
        return sorted(superseded)

    def outbox_update(self, row: OutboxRow) -> None:
        r = outbox_to_row(row)
        with self._open():
            old = self._outbox.get(r[0])
            if old is not None:
                self._outbox[r[0]] = (*old[:6], r[6], r[7], r[8], r[9], r[10])

    def outbox_pending(self) -> list[OutboxRow]:
        with self._open():
            rows = [row for row in self._outbox.values() if row[10] == OUTBOX_PENDING]
        rows.sort(key=lambda r: (r[7] if r[7] is not None else float("-inf"), r[4], r[0]))
        return [outbox_from_row(row) for row in rows]

    def outbox_get(self, id: str) -> OutboxRow | None:
        with self._open():
            row = self._outbox.get(str(id))
        return None if row is None else outbox_from_row(row)

    def outbox_prune(self, before: float) -> int:
        with self._open():
            old = [k for k, row in self._outbox.items() if row[10] != OUTBOX_PENDING and row[4] < before]
            for k in old:
                del self._outbox[k]
        return len(old)

    def close(self) -> None:
        with self._lock:
            self._closed = True
