"""A destination's budget: a token bucket on the pipeline's clock, which the service's Retry-After pauses.

The pipeline keeps one per destination (what a notifier's ``destination()`` names), shared by every receiver
that sends there; the delivery lanes take a token before each send.
"""

from __future__ import annotations

PROBE_WAIT = 0.1
"""After a pause, how often another sender to the destination checks whether the first send has come back."""


class RateLimiter:
    """A token bucket on the pipeline's clock: ``rate`` notifications per second, ``burst`` at once (no rate: no
    budget), which a service's Retry-After pauses.

    After a pause one send goes first, alone: the others follow once it has come back without a new pause, so
    a destination that still refuses gets one request per Retry-After, not one per waiting notification.
    """

    def __init__(self, rate: float | None, burst: int = 1) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._updated: float | None = None
        self._paused_until = 0.0
        self.pauses = 0  # how many times a Retry-After paused it
        self._probing = False  # paused before: the next send goes alone
        self._probe_out = False

    def take(self, now: float) -> float:
        """Take a token: 0.0 when one was free, else the seconds until one will be (nothing taken)."""
        if now < self._paused_until:
            return self._paused_until - now
        if self._probe_out:
            return PROBE_WAIT
        if self.rate is not None:
            if self._updated is not None:
                self._tokens = min(self.burst, self._tokens + max(0.0, now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1.0:
                return (1.0 - self._tokens) / self.rate
            self._tokens -= 1.0
        self._probe_out = self._probing
        return 0.0

    def pause(self, until: float) -> None:
        """Nothing before ``until`` (the service said Retry-After), then one send alone, then the budget."""
        self.pauses += 1
        self._probing = True
        if until > self._paused_until:
            self._paused_until = until
            self._tokens = 1.0
            self._updated = until

    def returned(self, pauses: int) -> None:
        """A send came back; ``pauses``: the count when it started. Without a pause since, the pause is over."""
        if self.pauses == pauses:
            self._probing = False
        self._probe_out = False

    def paused_until(self) -> float:
        return self._paused_until
