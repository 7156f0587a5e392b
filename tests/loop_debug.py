"""asyncio's debug mode for tests that run the daemon: a loop in, the problems it reported out.

In debug mode asyncio logs every callback that holds the loop longer than ``slow_callback_duration`` ("Executing
<Handle ...> took 0.150 seconds") and raises when a thread other than the loop's schedules on it; the owner
check (``alertd.owner``) raises when one calls the rule engine, the series store or the dispatcher. A job that
raises is logged by APScheduler, so the log is where all of them show.

The steps of a test's own coroutine and of its fixtures' set-up are not timed: they build daemons on the loop,
which ``alertd run`` does before its loop starts. Everything the daemon runs (its tasks, jobs, HTTP handlers,
callbacks) is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator

from alertd.owner import WrongThreadError

SLOW_CALLBACK = 0.1  # seconds: a page must never wait longer than this for the loop
_SLOW = re.compile(r"^Executing .* took \d")
_HARNESS = re.compile(r"coro=<(test_\w+|\S*\bsetup)\(\)")


class LoopProblems(logging.Handler):
    """Every callback that held the loop too long, and every logged error raised by a call from the wrong thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        wrong_thread = isinstance(error, WrongThreadError) or (
            isinstance(error, RuntimeError) and "Non-thread-safe operation" in str(error)
        )
        message = record.getMessage()
        slow = record.name == "asyncio" and _SLOW.match(message) is not None and not _HARNESS.search(message)
        if slow or wrong_thread:
            where = f" ({type(error).__name__}: {error})" if error is not None else ""
            self.problems.append(f"{record.name}: {message}{where}")


@contextlib.contextmanager
def debug_mode(loop: asyncio.AbstractEventLoop, *, timed: bool = True) -> Iterator[LoopProblems]:
    """Debug mode on ``loop`` while inside; what went wrong is in the handler's ``problems``. ``timed=False``:
    calls from the wrong thread only, for a loop whose thread shares the interpreter lock with busy threads."""
    handler = LoopProblems()
    root = logging.getLogger()
    root.addHandler(handler)
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.WARNING)  # whatever a test set the root logger to
    was_debug, was_slow = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK if timed else float("inf")
    try:
        yield handler
    finally:
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_slow
        asyncio_log.setLevel(level)
        root.removeHandler(handler)


# What asyncio's debug mode and the owner check leave in the log of ``alertd run`` (PYTHONASYNCIODEBUG=1).
_WRONG_THREAD = re.compile(r"WrongThreadError|Non-thread-safe operation")
_SLOW_IN_LOG = re.compile(r"asyncio.*Executing .* took (\d+\.\d+) seconds")


def wrong_thread_in_log(text: str) -> list[str]:
    """The lines of an ``alertd run`` log that say something called the loop's objects from another thread."""
    return [line for line in text.splitlines() if _WRONG_THREAD.search(line)]


def slow_callbacks_in_log(text: str) -> list[float]:
    """How long (seconds) each callback that held the loop of an ``alertd run`` longer than 100 ms took.

    Not a failure by itself: a daemon in a process of its own shares the machine's cores with the workers, the
    brokers and the test, so its wall-clock timings measure the machine too. In-process tests fail on them.
    """
    return [float(m.group(1)) for m in _SLOW_IN_LOG.finditer(text)]
