"""alertd: a configuration-driven alerting engine for Celery deployments."""

from __future__ import annotations

from alertd.errors import PermanentError, RetryableError
from alertd.hookspecs import hookimpl
from alertd.models import Alert, Sample
from alertd.notifiers.base import Notification, Notifier

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "Notification",
    "Notifier",
    "PermanentError",
    "RetryableError",
    "Sample",
    "__version__",
    "hookimpl",
]
