"""Junk for the event exchange, each piece with the reason alertd drops it, and real failures to send among it."""

from __future__ import annotations

import pickle
from typing import Any

from celery import Celery
from kombu import Connection

from alertd.collectors.events import validate

HOST = "producer@junk"


def junk_messages(now: float) -> list[tuple[str | None, dict[str, Any]]]:
    """(the reason it is dropped, None for an event that is not dropped; kombu ``publish()`` arguments)."""
    json_raw = {"content_type": "application/json", "content_encoding": "utf-8"}
    event = {"type": "task-failed", "timestamp": now, "hostname": HOST, "uuid": "u-junk"}
    return [
        (validate.UNDECODABLE, {"body": b"{this is not json", **json_raw}),
        (validate.NOT_AN_OBJECT, {"body": [1], "serializer": "json"}),
        (validate.MISSING_FIELD, {"body": {"hostname": HOST, "timestamp": now}, "serializer": "json"}),
        (validate.BAD_FIELD, {"body": {**event, "timestamp": "yesterday"}, "serializer": "json"}),
        (validate.TOO_LARGE, {"body": {**event, "traceback": "x" * 2_000_000}, "serializer": "json"}),
        (validate.TOO_DEEP, {"body": "[" * 5000 + "]" * 5000, **json_raw}),
        (validate.CONTENT_TYPE, {"body": pickle.dumps(event), "content_type": "application/x-python-serialize",
                                 "content_encoding": "binary"}),
        (None, {"body": {**event, "type": "mallory-was-here"}, "serializer": "json"}),
    ]


def send_failure(app: Celery, conn: Connection, n: int, name: str | None = None) -> str:
    """A real task-received and task-failed pair through Celery's EventDispatcher; returns the task name."""
    name = name or f"tasks.payment.charge_{n}"
    dispatcher = app.events.Dispatcher(conn, hostname=HOST, enabled=True, buffer_while_offline=False)
    dispatcher.send("task-received", uuid=f"u-{n}", name=name, args="()", kwargs="{}", retries=0)
    dispatcher.send("task-failed", uuid=f"u-{n}", exception="CardDeclined('no funds')", traceback="Traceback ...")
    return name
