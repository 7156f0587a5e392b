"""Gaps in senders' event clocks: what counts as lost, and what other things that move a clock explain."""

from __future__ import annotations

from alertd.collectors.events.clocks import CLOCK_SLACK, SETTLE, ClockGaps


def event(clock: int, kind: str = "task-succeeded", host: str = "w1@h", pid: int = 10) -> dict[str, object]:
    return {"type": kind, "hostname": host, "pid": pid, "clock": clock}


def feed(gaps: ClockGaps, clocks: list[int], now: float = 0.0, **kw: object) -> None:
    for c in clocks:
        gaps.feed(event(c, **kw), now)  # type: ignore[arg-type]


def new() -> ClockGaps:
    return ClockGaps(max_senders=100, forget_after=3600)


def test_consecutive_clocks_lose_nothing_and_a_jump_counts_once_it_settles() -> None:
    gaps = new()
    feed(gaps, [5, 6, 7, 20, 21])
    assert gaps.settle(SETTLE / 2) == 0  # not yet: a late event may still fill it
    assert gaps.settle(SETTLE) == 12 - CLOCK_SLACK
    assert gaps.settle(SETTLE * 2) == 0  # counted once


def test_a_prefork_batch_arriving_after_the_heartbeat_sent_later_is_not_lost() -> None:
    gaps = new()
    feed(gaps, [9])
    feed(gaps, [34], kind="worker-heartbeat")  # published at once, while 10..33 waited in the task buffer
    feed(gaps, list(range(10, 34)))
    assert gaps.settle(SETTLE) == 0


def test_gossip_from_other_workers_explains_the_jumps_it_causes() -> None:
    gaps = new()
    feed(gaps, [3], host="w1@h")
    feed(gaps, [500], host="w2@h", kind="worker-heartbeat")  # w1 adjusts to 501 on receiving it
    feed(gaps, [502], host="w1@h")
    feed(gaps, [600], host="w3@h", kind="worker-heartbeat")  # w1 adjusts to 601
    feed(gaps, [602], host="w1@h", kind="worker-heartbeat")  # and hears its own heartbeat: 603
    feed(gaps, [604], host="w1@h")
    assert gaps.settle(SETTLE) == 0
    feed(gaps, [700], host="w1@h", now=SETTLE)  # nothing seen from anyone in between: lost
    assert gaps.settle(2 * SETTLE) == 700 - 604 - 1 - CLOCK_SLACK


def test_a_restart_starts_a_sender_afresh_and_quiet_senders_are_forgotten() -> None:
    gaps = ClockGaps(max_senders=2, forget_after=60)
    feed(gaps, [50_000, 50_001])
    feed(gaps, [1, 2, 3])  # the same hostname and pid, started again
    assert gaps.settle(SETTLE) == 0
    feed(gaps, [7], host="w2@h")
    feed(gaps, [7], host="w3@h")  # past max_senders: not tracked
    assert len(gaps.senders) == 2
    gaps.settle(61)
    assert not gaps.senders


def test_events_without_a_clock_are_ignored() -> None:
    gaps = new()
    gaps.feed({"type": "task-failed", "hostname": "w1@h", "pid": 1, "clock": None}, 0)
    gaps.feed({"type": "task-failed", "hostname": "w1@h", "pid": 1}, 0)
    assert not gaps.senders
