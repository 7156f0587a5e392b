"""The ``[beat]`` section in, a validated settings model out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from alertd.durations import Duration


class BeatSettings(BaseModel):
    """How the periodic tasks of the app's ``beat_schedule`` are watched (through the event stream)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="watch the entries of the app's beat_schedule ([celery] app)")
    max_entries: int = Field(10_000, ge=1, description="entries watched at most; the others are counted, not watched")
    refresh_interval: Duration = Field(
        30.0, gt=0, description="how often each entry's series are restated while nothing changes"
    )
