"""``alertd run`` as a subprocess, the way an operator runs it: started, signalled, killed and started again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Self

from tests.loop_debug import wrong_thread_in_log
from tests.services import wait_until

ROOT = Path(__file__).resolve().parents[1]
_HTTP = re.compile(r"HTTP on (https?://\S+) ")


class AlertdProcess:
    """One run of ``alertd run -c CONFIG`` in its own process group, its output appended to ``log``, in asyncio's
    debug mode: ``stop`` fails if anything called the daemon's objects from another thread."""

    def __init__(self, config: Path, *, log: Path | None = None, extra: tuple[str, ...] = ()) -> None:
        self.config = config
        self.workdir = config.parent
        self.log = log or self.workdir / "alertd.log"
        self.extra = extra
        self.proc: subprocess.Popen[str] | None = None
        self._out: IO[str] | None = None
        self._offset = 0  # where this run's output starts in the (shared, appended) log

    def start(self) -> Self:
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self._out = open(self.log, "a")  # noqa: SIM115 - closed in stop/kill
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "alertd", "run", "-c", str(self.config), *self.extra],
            stdout=self._out, stderr=subprocess.STDOUT, text=True, cwd=self.workdir, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONASYNCIODEBUG": "1"},
        )
        return self

    def output(self) -> str:
        """This run's output so far."""
        with open(self.log) as f:
            f.seek(self._offset)
            return f.read()

    def wait_for_line(self, text: str, timeout: float = 30.0) -> str:
        def seen() -> str | None:
            assert self.proc is not None
            out = self.output()
            if text in out:
                return next(line for line in out.splitlines() if text in line)
            if self.proc.poll() is not None:
                raise AssertionError(f"alertd exited with {self.proc.returncode} before {text!r}:\n{out[-3000:]}")
            return None

        return str(wait_until(seen, timeout=timeout, interval=0.05, what=f"alertd to log {text!r}"))

    @property
    def url(self) -> str:
        """The HTTP server's address, from the start-up line (``listen`` may use port 0)."""
        match = _HTTP.search(self.wait_for_line("HTTP on "))
        assert match is not None
        return match.group(1)

    def started(self) -> Self:
        """Wait until alertd has started and its event stream is connected."""
        self.wait_for_line("alertd starting")
        self.wait_for_line("event stream connected")
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._close()
        wrong = wrong_thread_in_log(self.output())
        assert not wrong, "alertd was called from the wrong thread:\n" + "\n".join(wrong)
        return code

    def kill(self) -> None:
        """SIGKILL to the whole process group: nothing gets to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def until_seen(send: object, seen: object, *, attempts: int = 5, timeout: float = 3.0) -> float:
    """Call ``send()`` until ``seen()`` is true within ``timeout``; returns when the successful send was made.

    On Redis a Celery event subscription takes effect a moment after the consumer connects, and an event
    published in that moment is lost for any consumer; a test that needs its first event sends it again.
    """
    assert callable(send) and callable(seen)
    for _ in range(attempts):
        sent = time.time()
        send()
        try:
            wait_until(seen, timeout=timeout, interval=0.02, what="the event to be seen")
            return sent
        except TimeoutError:
            continue
    raise AssertionError(f"not seen after {attempts} sends")
