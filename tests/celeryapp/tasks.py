"""The test Celery app, configured from the environment that ``tests.workers`` gives each worker process.

ALERTD_TEST_BROKER_URL       the broker (a private redis-server)
ALERTD_TEST_PUSHGATEWAY_URL  when set, ``alertd.instrument`` is installed and pushes there
ALERTD_TEST_PUSH_INTERVAL    seconds between pushes (short in tests)
"""

from __future__ import annotations

import builtins
import os
import time
from typing import Any

from celery import Celery, Task

import alertd.instrument

app = Celery("tests.celeryapp", broker=os.environ.get("ALERTD_TEST_BROKER_URL", "redis://127.0.0.1:1/0"))
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_default_queue="celery",
    worker_prefetch_multiplier=1,
    task_acks_late=False,
    worker_hijack_root_logger=True,
)

_PUSHGATEWAY = os.environ.get("ALERTD_TEST_PUSHGATEWAY_URL")
instrumentation = (
    alertd.instrument.install(app, _PUSHGATEWAY, push_interval=float(os.environ.get("ALERTD_TEST_PUSH_INTERVAL", "5")))
    if _PUSHGATEWAY
    else None
)


class RefundDeclined(Exception):
    """What a refund raises in the tests: a payment failure that must page."""


class PaymentDeclined(Exception):
    """A custom exception type for ``tasks.fail``."""


class CardDeclined(Exception):
    """Another custom exception type for ``tasks.fail``."""


def exception_class(name: str) -> type[Exception]:
    """An exception class of this module or a builtin one, by name.

    Classes are defined at import, never made on the fly: the pool child pickles the exception for its
    parent, which must find the class by the same name.
    """
    for namespace in (globals(), vars(builtins)):
        found = namespace.get(name)
        if isinstance(found, type) and issubclass(found, Exception):
            return found
    raise LookupError(f"no exception class named {name!r}")


@app.task(name="tasks.payment.charge")
def charge(amount: float = 10.0) -> dict[str, Any]:
    return {"charged": amount}


@app.task(name="tasks.payment.refund")
def refund(amount: float = 10.0) -> None:
    raise RefundDeclined(f"refund of {amount} declined")


@app.task(name="tasks.email.send")
def send_email(to: str = "ops@example.com") -> str:
    return f"sent to {to}"


@app.task(name="tasks.slow")
def slow(seconds: float = 1.0) -> float:
    time.sleep(seconds)
    return seconds


@app.task(name="tasks.fail")
def fail(exception: str = "ValueError", message: str = "failed on purpose") -> None:
    raise exception_class(exception)(message)


@app.task(name="tasks.retrying", bind=True, max_retries=3)
def retrying(self: Task, times: int = 1) -> int:
    if self.request.retries < times:
        raise self.retry(countdown=0.05, exc=RuntimeError("not yet"))
    return int(self.request.retries)


@app.task(name="tasks.hard_limit", time_limit=1)
def hard_limit(seconds: float = 30.0) -> None:
    time.sleep(seconds)
