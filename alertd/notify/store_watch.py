"""Writes to the state store that fail while alertd runs (a full disk, a file made read-only) never hold a page
back: the part that could not write goes on from memory, says so once in the log, and fires alertd's own
critical alert ``AlertdStateWriteFailing`` (labelled with the part) until a write succeeds again. What was not
written is lost only if alertd restarts meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from alertd.clock import Clock
from alertd.errors import StateStoreError
from alertd.notify import InternalAlerts

STATE_WRITE_FAILING = "AlertdStateWriteFailing"
log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreWatch:
    """Runs one part's writes; ``error`` is why the last one failed, until one succeeds."""

    def __init__(self, part: str, internal: InternalAlerts, clock: Clock) -> None:
        self.part = part
        self.internal = internal
        self.clock = clock
        self.error: str | None = None

    def write(self, what: str, fn: Callable[[], T]) -> T | None:
        """``fn()``; None (and the alert) when the store refuses it."""
        try:
            result = fn()
        except StateStoreError as exc:
            self.failed(what, exc)
            return None
        self.succeeded()
        return result

    def failed(self, what: str, exc: Exception) -> None:
        if self.error is None:
            log.error("%s: %s could not be saved, going on from memory: %s", self.part, what, exc)
            self.internal.fire(STATE_WRITE_FAILING, {"part": self.part}, f"{self.part} cannot be saved: {exc}",
                               self.clock.now(), severity="critical")
        self.error = str(exc)

    def succeeded(self) -> None:
        if self.error is not None:
            log.warning("%s: saved again", self.part)
            self.internal.resolve(STATE_WRITE_FAILING, {"part": self.part}, self.clock.now(), severity="critical")
        self.error = None
