"""The ``[collectors.events]`` section in, a validated settings model out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alertd.collectors.events.translate import DEFAULT_HEARTBEAT_MULTIPLIER
from alertd.durations import Duration, Interval


class EventSettings(BaseModel):
    """How the Celery event stream is consumed.

    Workers must run with ``-E`` (``worker_send_task_events = True``) for task events; heartbeats and
    worker-online/offline are sent either way. ``task_send_sent_event`` is not needed: alertd reads task names
    from task-received.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    heartbeat_multiplier: float = Field(
        DEFAULT_HEARTBEAT_MULTIPLIER,
        gt=1.0,
        description="a worker is lost after this many of its heartbeat intervals without a heartbeat "
        "(Celery's own State uses 2: HEARTBEAT_EXPIRE_WINDOW = 200%)",
    )
    enable_task_events: bool = Field(
        False,
        description="broadcast enable_events on connect and every enable_events_interval; off by default "
        "because switching events on across a cluster is the operator's decision",
    )
    enable_events_interval: Interval = Field(300.0, description="how often enable_events is repeated")
    forget_after: Duration = Field(3600.0, description="a lost or offline worker is forgotten after this long")
    max_task_names: int = Field(10_000, ge=100, description="task uuids remembered to name later events")
    max_message_bytes: int = Field(
        1_048_576, ge=65_536, description="a message from the event exchange longer than this is dropped unread"
    )
    max_label_values: int = Field(
        10_000, ge=10, description="distinct task names, exception types and workers kept as labels, each; "
        "more are counted as __overflow__ (workers: not tracked)",
    )
    label_idle_after: Duration = Field(
        3600.0, description="a task name or exception type with no event for this long is forgotten, with its "
        "counters, making room under max_label_values",
    )
    reconnect_min: Duration = Field(0.5, description="first wait before reconnecting to the broker")
    reconnect_max: Duration = Field(30.0, description="longest wait between reconnection attempts")
    loss_resolve_after: Duration = Field(
        300.0, description="AlertdEventsLost resolves after this long without a dropped subscription or a lost event"
    )
    tick_interval: Interval = Field(1.0, description="how often heartbeat expiry is evaluated")

    @model_validator(mode="after")
    def _check(self) -> EventSettings:
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must not be shorter than reconnect_min")
        if self.tick_interval <= 0:
            raise ValueError("tick_interval must be positive")
        if self.label_idle_after <= 0:
            raise ValueError("label_idle_after must be positive")
        return self
