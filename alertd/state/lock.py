"""One alertd per state file: an exclusive lock on ``<file>.lock``, held while the store is open.

Two daemons on one file would both page every alert and fight over the outbox. ``flock`` on a file of its own
(SQLite's own locks are POSIX record locks on the database, which ``flock`` does not touch); the kernel
releases it when the process dies, kill -9 included, so a stale lock cannot keep alertd from starting.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from alertd.errors import StateStoreError


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def holder(path: Path) -> str | None:
    """The pid of the process that holds the lock of ``path``, or None when nobody does."""
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)
    return None


class StateLock:
    """Taken at construction; ``release`` (or the process's end) gives it back."""

    def __init__(self, path: Path) -> None:
        self.path = lock_path(path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateStoreError(f"state store {path}: cannot create {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateStoreError(
                f"state store {path} is in use by another alertd (pid {pid}): two daemons on one state file "
                "would page every alert twice; stop the other one, or give this one its own [state] url"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
