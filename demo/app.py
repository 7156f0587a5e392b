"""The demo's Celery app: orders, emails and payments, instrumented with ``alertd.instrument``.

Configured from the environment (``demo.run`` sets it):

CELERY_BROKER_URL       the broker
CELERY_RESULT_BACKEND   where results go (``demo.run`` waits for the tasks it sends); none by default
PUSHGATEWAY_URL         where the workers push their task metrics

Run a worker with task events on, as alertd needs them (docs/celery.md)::

    celery -A demo.app worker -E --pool prefork -c 2
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from celery import Celery

import alertd.instrument

app = Celery(
    "demo",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("CELERY_RESULT_BACKEND") or None,
)
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_default_queue="alertd-demo",  # the demo's own queue (demo/run.py, demo/alertd.toml)
    worker_prefetch_multiplier=1,
    result_expires=3600,
)

# Every worker process pushes its own counters to the Pushgateway; alertd collects and sums them.
instrumentation = alertd.instrument.install(
    app, os.environ.get("PUSHGATEWAY_URL", "http://127.0.0.1:9091"), job="demo", push_interval=2.0
)


class CardDeclined(Exception):
    """The card issuer said no: the failure that pages the payments on-call."""


@app.task(name="demo.orders.create")
def create_order(order_id: int, amount: float) -> dict[str, Any]:
    time.sleep(random.uniform(0.02, 0.1))  # the database round trips of a real order
    return {"order_id": order_id, "amount": amount, "status": "created"}


@app.task(name="demo.email.send")
def send_email(to: str, subject: str) -> str:
    time.sleep(random.uniform(0.01, 0.05))
    return f"sent {subject!r} to {to}"


@app.task(name="demo.payment.charge")
def charge(order_id: int, amount: float, decline: bool = False) -> dict[str, Any]:
    """Charge an order's card; ``decline=True`` makes the issuer decline it."""
    if decline:
        raise CardDeclined(f"card declined for order {order_id} ({amount:.2f} EUR)")
    return {"order_id": order_id, "charged": amount}
