"""Every hook alertd calls, with its contract. Plugins implement them with ``@alertd.hookimpl``.

Built-in behaviour is written as ordinary hook implementations (``alertd/collectors/builtin.py``,
``alertd/templating/filters.py``) and registered through the same plugin manager as pip-installed plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from alertd.collectors.base import Collector
    from alertd.notifiers.base import Notifier

PROJECT = "alertd"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_collectors() -> list[type[Collector]]:
    """Return the collector classes this plugin provides.

    Called once when the plugin manager is built. Each class has a unique ``type_name`` (the key of its
    ``[collectors.<type_name>]`` section in the configuration) and a ``Settings`` pydantic model that
    validates that section when the configuration loads. All results are merged; a ``type_name`` offered
    twice is a configuration error.
    """


@hookspec
def register_notifiers() -> list[type[Notifier]]:
    """Return the notifier classes this plugin provides.

    Called once when the plugin manager is built. Each class has a unique ``type_name`` (what a receiver's
    ``type`` names in the configuration), a ``Settings`` pydantic model that validates the receiver's
    settings when the configuration loads, default ``templates``, and one async ``send``. All results are
    merged; a ``type_name`` offered twice is a configuration error.

    Optional, for services that rate-limit: ``destination()`` returns what the service limits (a webhook URL,
    a routing key, a mail server; hashed with ``destination_key`` when it is a secret) and the class attribute
    ``rate_budget`` (a ``RateBudget``) what it accepts per destination. The pipeline sends to one destination
    within that budget, and a 429 (or 503) with Retry-After pauses every send to it. Without them a receiver
    is its own destination, with no budget.
    """


@hookspec
def register_template_filters() -> dict[str, Callable[..., Any]]:
    """Return Jinja filters to add to the sandboxed environment of conditions and templates.

    Called once per environment. Keys are filter names, values are plain functions. Results are merged in
    registration order; a later plugin's filter replaces an earlier one of the same name, so built-in
    filters (registered ``trylast``) can be overridden.
    """
