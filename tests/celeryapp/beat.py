"""A Celery app whose ``beat_schedule`` sends ``tasks.payment.charge`` every second, for ``celery beat`` in tests.

ALERTD_TEST_BROKER_URL  the broker (a private redis-server)
ALERTD_TEST_BEAT_QUEUE  the queue the entries are sent to (the test worker's own queue)

Beat sends tasks by name, so this app needs none of the task code; the worker runs ``tests.celeryapp.tasks``.
"""

from __future__ import annotations

import os

from celery import Celery

EVERY_SECOND = "charge-every-second"


def make_beat_app(broker_url: str, queue: str) -> Celery:
    app = Celery("tests.celeryapp.beat", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        beat_schedule={
            EVERY_SECOND: {"task": "tasks.payment.charge", "schedule": 1.0, "args": (5,), "options": {"queue": queue}},
        },
    )
    return app


app = make_beat_app(
    os.environ.get("ALERTD_TEST_BROKER_URL", "redis://127.0.0.1:1/0"), os.environ.get("ALERTD_TEST_BEAT_QUEUE", "celery")
)
