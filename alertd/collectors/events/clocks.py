"""Events that never arrived, read from gaps in each sender's Celery event clock.

Every event carries ``clock``, its sender's Lamport clock, which the sender moves forward by one for each event
it sends; a jump in one sender's clocks means events that alertd did not receive. The same clock also moves for
things that are not events, so a gap is only counted as lost for the part that nothing else explains:

- a worker with gossip (the default) moves its clock on every worker event it receives: by one, or up to the
  sender's clock + 1 when that is ahead. Between two events of a sender, the worker events seen from anyone,
  and how far the newest clock among them was ahead, are subtracted from the gap.
- remote control commands (``celery inspect``, Flower, alertd's own broadcasts) move it by one, unseen:
  ``CLOCK_SLACK`` of each gap is not counted, so a loss of a single event can go unnoticed.
- prefork workers send task events in batches and worker events at once, so a sender's clocks arrive out of
  order: a gap is held for ``SETTLE`` seconds, and the events that fill it meanwhile are not lost.
- a restarted worker starts again from a low clock (a new pid is a new sender anyway): a clock far behind the
  sender's newest starts it afresh, with nothing counted.

The count is therefore a lower bound of what was lost from senders that kept sending; events lost while a
sender then went quiet are only seen as the reconnection that lost them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLOCK_SLACK = 1
SETTLE = 2.0
# A clock this far behind a sender's newest is a restart, not an event arriving late.
_RESTART_BEHIND = 10_000


@dataclass
class _Gap:
    lo: int
    hi: int
    unexplained: int  # how many of lo..hi are owed an event
    opened: float


@dataclass
class _Sender:
    high: int
    worker_events: int  # the count of worker events seen when ``high`` arrived
    seen: float
    gaps: list[_Gap] = field(default_factory=list)


class ClockGaps:
    """Per sender (hostname, pid): the newest clock and the gaps below it still waiting for late events."""

    def __init__(self, *, max_senders: int, forget_after: float) -> None:
        self.max_senders = max_senders
        self.forget_after = forget_after
        self.senders: dict[tuple[str, int], _Sender] = {}
        self.worker_events = 0
        self.worker_clock = 0  # the newest clock of any worker event seen

    def feed(self, event: dict[str, Any], now: float) -> None:
        clock = event.get("clock")
        if not isinstance(clock, int) or isinstance(clock, bool):
            return  # a blind event, or a sender without a clock: nothing to tell
        key = (event.get("hostname") or "", event.get("pid") or 0)
        sender = self.senders.get(key)
        # Seen before this event: a worker event moves the other workers' clocks only after it was sent, and
        # its own sender's too (gossip hears its own events and moves the clock by one).
        worker_clock, worker_events = self.worker_clock, self.worker_events
        if str(event.get("type", "")).startswith("worker-"):
            self.worker_events += 1
            self.worker_clock = max(self.worker_clock, clock)
        if sender is None:
            if len(self.senders) < self.max_senders:
                self.senders[key] = _Sender(clock, worker_events, now)
            return
        sender.seen = now
        if clock > sender.high:
            missing = clock - sender.high - 1
            if missing > 0:
                jump = max(0, worker_clock - sender.high)  # as far as gossip could have moved it
                moved = worker_events - sender.worker_events
                unexplained = missing - jump - moved - CLOCK_SLACK
                sender.gaps.append(_Gap(sender.high + 1, clock - 1, max(0, unexplained), now))
            sender.high = clock
            sender.worker_events = worker_events
            return
        for gap in sender.gaps:
            if gap.lo <= clock <= gap.hi:
                gap.unexplained = max(0, gap.unexplained - 1)  # it was late, not lost
                return
        if clock < sender.high - _RESTART_BEHIND:
            self.senders[key] = _Sender(clock, worker_events, now)

    def settle(self, now: float) -> int:
        """The events owed by gaps older than ``SETTLE``, now counted lost; forgets senders long quiet."""
        lost = 0
        for key, sender in list(self.senders.items()):
            if sender.gaps:
                keep = []
                for gap in sender.gaps:
                    if now - gap.opened >= SETTLE:
                        lost += gap.unexplained
                    else:
                        keep.append(gap)
                sender.gaps = keep
            elif now - sender.seen > self.forget_after:
                del self.senders[key]
        return lost
