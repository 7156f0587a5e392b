"""``alertd state check|backup|restore``: look at, copy and put back a SQLite state file.

``check`` and ``backup`` read the file without the daemon's lock, through SQLite's online backup, so they work
while alertd runs. ``restore`` takes the lock: alertd must be stopped first.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alertd.errors import StateStoreError
from alertd.state.lock import StateLock, holder
from alertd.state.sqlite import MIGRATIONS, create_private

TABLES = ("alerts", "alert_history", "alert_silences", "alert_acks", "outbox")


@dataclass
class Report:
    path: Path
    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.is_file():
        raise StateStoreError(f"state store {path}: no such file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def check(path: Path) -> Report:
    """Whether ``path`` is a whole alertd state file this alertd can use, and what it holds."""
    report = Report(path)
    try:
        with _read_only(path) as conn:
            verdict = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
            if verdict != ["ok"]:
                report.problems += [f"damaged: {line}" for line in verdict]
                return report
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                report.problems.append(f"schema version {version} was written by a newer alertd "
                                       f"(this one knows up to {len(MIGRATIONS)})")
            report.facts.append(f"schema version {version} of {len(MIGRATIONS)}")
            present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in TABLES:
                if table in present:
                    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    report.facts.append(f"{table}: {count}")
    except sqlite3.Error as exc:
        report.problems.append(f"not a readable alertd state file: {exc}")
    pid = holder(path)
    report.facts.append(f"in use by alertd pid {pid}" if pid else "not in use")
    return report


def _copy(source: sqlite3.Connection, destination: Path) -> None:
    create_private(destination)
    target = sqlite3.connect(destination)
    try:
        source.backup(target)
    finally:
        target.close()


def backup(path: Path, destination: Path) -> Report:
    """A consistent copy of ``path`` at ``destination`` (a new file, 0600), taken while alertd may run."""
    if destination.exists():
        raise StateStoreError(f"{destination} exists: give the backup a new name")
    try:
        with _read_only(path) as conn:
            _copy(conn, destination)
    except sqlite3.Error as exc:
        destination.unlink(missing_ok=True)
        raise StateStoreError(f"state store {path}: cannot back up: {exc}") from exc
    return check(destination)


def restore(path: Path, source: Path) -> Report:
    """Put the backup ``source`` in place of ``path``, once it checks out; alertd must be stopped.

    The file it replaces is kept beside it as ``<file>.replaced-<unix time>``.
    """
    verdict = check(source)
    if not verdict.ok:
        raise StateStoreError(f"{source} cannot be restored: {'; '.join(verdict.problems)}")
    lock = StateLock(path)  # a running alertd holds it: this says so and stops here
    try:
        staged = path.with_name(path.name + ".restoring")
        staged.unlink(missing_ok=True)
        with _read_only(source) as conn:
            _copy(conn, staged)
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
        if path.exists():
            path.rename(path.with_name(f"{path.name}.replaced-{int(time.time())}"))
        for suffix in ("-wal", "-shm"):  # the replaced file's journal must not be replayed into the backup
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        staged.rename(path)
    except (OSError, sqlite3.Error) as exc:
        raise StateStoreError(f"state store {path}: cannot restore {source}: {exc}") from exc
    finally:
        lock.release()
    return check(path)
