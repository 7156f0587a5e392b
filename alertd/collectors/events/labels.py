"""Label values that come from the broker (task names, exception types), held to a bounded set."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

# The value that stands for every value past the cap: its series sum up what the cap held back.
OVERFLOW = "__overflow__"


class LabelCap:
    """At most ``limit`` distinct values of one label; a value unseen for ``idle_after`` is forgotten.

    ``admit(value, at)`` returns the value itself while there is room (or it is already held), else
    ``OVERFLOW``, and calls ``on_overflow(label)`` for every value held back. Values are kept in the order they
    were last seen, so forgetting the idle ones costs nothing for the values that stay.
    """

    def __init__(
        self, label: str, limit: int, idle_after: float, on_overflow: Callable[[str], None] | None = None
    ) -> None:
        self.label = label
        self.limit = limit
        self.idle_after = idle_after
        self.on_overflow = on_overflow
        self.overflows = 0
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, value: object) -> bool:
        return value in self._seen

    def admit(self, value: str, at: float) -> str:
        seen = self._seen
        if value in seen:
            seen[value] = max(seen[value], at)
            seen.move_to_end(value)
            return value
        if value == OVERFLOW:
            return value
        if len(seen) >= self.limit:
            self.forget_idle(at)
        if len(seen) >= self.limit:
            self.overflows += 1
            if self.on_overflow is not None:
                self.on_overflow(self.label)
            return OVERFLOW
        seen[value] = at
        return value

    def forget_idle(self, now: float) -> int:
        """Forget the values unseen for ``idle_after``; returns how many."""
        seen = self._seen
        before = now - self.idle_after
        forgotten = 0
        while seen:
            value, last = next(iter(seen.items()))
            if last > before:
                break
            del seen[value]
            forgotten += 1
        return forgotten
