"""Celery beat: the app's schedule entries and the task events of their runs in, per-entry samples out."""

from __future__ import annotations

from alertd.collectors.beat.schedules import BeatEntry, ScheduleProblem, next_due, read_beat_schedule
from alertd.collectors.beat.settings import BeatSettings
from alertd.collectors.beat.tracker import BeatTracker, beat_tracker_for

__all__ = ["BeatEntry", "BeatSettings", "BeatTracker", "ScheduleProblem", "beat_tracker_for", "next_due", "read_beat_schedule"]
