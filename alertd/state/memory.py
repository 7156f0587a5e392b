"""The in-memory state store: the SQLite store's behaviour without a file, for tests and ``alertd test``."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from alertd.errors import StateStoreError
from alertd.state.base import (
    AlertRecord,
    AlertRow,
    StateStore,
    Transition,
    TransitionRow,
    alert_from_row,
    check_meta,
    encode_batch,
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

    def close(self) -> None:
        with self._lock:
            self._closed = True
