"""One thread owns the daemon's state: a loop-owned object remembers the thread that built it and refuses calls
from any other.

The rule engine, the series store and the dispatcher change their dictionaries without locks. That is safe
because the daemon calls them from one thread only, its event loop's: scheduled jobs are coroutines, and
threads (the Celery event stream, blocking collector calls) hand data to the loop instead of calling in. The
check is one integer comparison, so it is always on: a call from the wrong thread fails at once, with both
threads named, instead of tearing state once in a while.
"""

from __future__ import annotations

import threading


class WrongThreadError(RuntimeError):
    """A loop-owned object was called from a thread other than the one that owns it."""


class OwnerThread:
    """The thread that owns an object: the one that creates this (in the object's ``__init__``)."""

    __slots__ = ("ident", "name", "what")

    def __init__(self, what: str) -> None:
        thread = threading.current_thread()
        self.ident = thread.ident
        self.name = thread.name
        self.what = what

    def check(self) -> None:
        """Raise ``WrongThreadError`` unless called from the owning thread."""
        if threading.get_ident() != self.ident:
            raise WrongThreadError(
                f"{self.what} belongs to thread {self.name!r} (the event loop's) and was called from thread "
                f"{threading.current_thread().name!r}: run the work as a coroutine on the loop, or hand its data "
                "to the loop with loop.call_soon_threadsafe"
            )
