"""One thread owns the daemon's state: a loop-owned object remembers the thread that built it and refuses calls
from any other; ``in_thread`` is the one way out of the loop for blocking work.

The rule engine, the series store and the dispatcher change their dictionaries without locks. That is safe
because the daemon calls them from one thread only, its event loop's: scheduled jobs are coroutines, and
threads (the Celery event stream, blocking broker calls) hand data to the loop instead of calling in. The
check is one integer comparison, so it is always on: a call from the wrong thread fails at once, with both
threads named, instead of tearing state once in a while.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


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


async def in_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking ``func`` in a worker thread (the loop's default pool) and await its result.

    ``func`` gets data (text, numbers, frozen values) or objects that only the thread uses while it runs (a
    broker connection), and gives data back; never what the loop owns, which would raise ``WrongThreadError``.
    """
    return await asyncio.to_thread(func, *args, **kwargs)


async def in_pool(pool: Executor, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``in_thread`` on a pool of its own, for calls that may each wait out a long timeout."""
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(func, *args, **kwargs))
