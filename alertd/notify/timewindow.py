"""Named time intervals and the time of a flush in; the flush held back (no alerts) when the route's
``mute_time_intervals`` contain that time, or its ``active_time_intervals`` do not.
"""

from __future__ import annotations

import calendar
import datetime
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alertd.dispatch.config import MONTHS, WEEKDAYS, TimeRangeConfig, parse_range
from alertd.models import Alert
from alertd.notify import NotifyContext, log


@dataclass(frozen=True)
class TimeRange:
    """One compiled ``[[time_intervals.<name>]]`` entry: every given part must contain the time."""

    times: tuple[tuple[int, int], ...]  # minutes since midnight, [start, end)
    weekdays: tuple[tuple[int, int], ...]  # 1 = monday
    days_of_month: tuple[tuple[int, int], ...]  # negative: counted from the end of the month
    months: tuple[tuple[int, int], ...]
    years: tuple[tuple[int, int], ...]
    zone: zoneinfo.ZoneInfo

    @classmethod
    def compile(cls, config: TimeRangeConfig) -> TimeRange:
        def minutes(text: str) -> tuple[int, int]:
            start, end = text.split("-")
            h1, m1 = start.strip().split(":")
            h2, m2 = end.strip().split(":")
            return int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)

        return cls(
            times=tuple(minutes(t) for t in config.times),
            weekdays=tuple(parse_range(w, names=WEEKDAYS, low=1, high=7) for w in config.weekdays),
            days_of_month=tuple(parse_range(d, low=-31, high=31, signed=True) for d in config.days_of_month),
            months=tuple(parse_range(m, names=MONTHS, low=1, high=12) for m in config.months),
            years=tuple(parse_range(y, low=1, high=9999) for y in config.years),
            zone=zoneinfo.ZoneInfo(config.location),
        )

    def contains(self, when: float) -> bool:
        local = datetime.datetime.fromtimestamp(when, tz=self.zone)
        if self.times:
            minute = local.hour * 60 + local.minute
            if not any(start <= minute < end for start, end in self.times):
                return False
        if self.weekdays and not _within(local.isoweekday(), self.weekdays):
            return False
        if self.days_of_month:
            last = calendar.monthrange(local.year, local.month)[1]
            if not any(_day(start, last) <= local.day <= _day(end, last) for start, end in self.days_of_month):
                return False
        if self.months and not _within(local.month, self.months):
            return False
        return not (self.years and not _within(local.year, self.years))


def _within(value: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(start <= value <= end for start, end in ranges)


def _day(day: int, last: int) -> int:
    # -1 is the last day of the month; a day past the month's end clamps to it, as in Alertmanager.
    return max(1, last + day + 1) if day < 0 else min(day, last)


class TimeIntervals:
    """Every named time interval: a name in, whether a time falls inside it out."""

    def __init__(self, intervals: Mapping[str, Sequence[TimeRangeConfig]]) -> None:
        self._ranges = {name: tuple(TimeRange.compile(c) for c in configs) for name, configs in intervals.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._ranges

    def contains(self, name: str, when: float) -> bool:
        return any(r.contains(when) for r in self._ranges.get(name, ()))

    def mutes(self, mute: Sequence[str], active: Sequence[str], when: float) -> str:
        """The reason a route is muted at ``when`` ("" when it is not)."""
        for name in mute:
            if self.contains(name, when):
                return f"inside mute time interval {name}"
        if active and not any(self.contains(name, when) for name in active):
            return f"outside active time intervals {', '.join(active)}"
        return ""


class TimeWindowStage:
    """Holds a whole flush back while its route is muted by time; dedup then sees the changes later."""

    def __init__(self, intervals: TimeIntervals) -> None:
        self.intervals = intervals

    async def __call__(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        route = ctx.route
        if not alerts or not (route.mute_time_intervals or route.active_time_intervals):
            return alerts
        why = self.intervals.mutes(route.mute_time_intervals, route.active_time_intervals, ctx.now)
        if why:
            ctx.flush.time_muted = why
            log.debug("%s: %d alerts held back: %s", ctx.stage_log(), len(alerts), why)
            return []
        return alerts
