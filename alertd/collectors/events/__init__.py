"""The Celery event stream: events in, samples out in real time (translator, consumer, settings)."""

from __future__ import annotations

from alertd.collectors.events.consumer import EventConsumer
from alertd.collectors.events.settings import EventSettings
from alertd.collectors.events.translate import EventTranslator, exception_type

__all__ = ["EventConsumer", "EventSettings", "EventTranslator", "exception_type"]
