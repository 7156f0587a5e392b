"""A ``module:attribute`` string in, the user's Celery app out (to read its broker settings)."""

from __future__ import annotations

import importlib
from typing import Any

from alertd.errors import ConfigError


def import_app(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"cannot import Celery app module {module_name!r}: {exc}", field="celery.app") from None
    try:
        app = getattr(module, attr or "app")
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr or 'app'!r}", field="celery.app") from None
    return app
