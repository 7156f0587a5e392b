"""The built-in notifiers, registered through the plugin manager like any installed plugin."""

from __future__ import annotations

from alertd.hookspecs import hookimpl
from alertd.notifiers.base import Notifier
from alertd.notifiers.console import ConsoleNotifier


@hookimpl(trylast=True)
def register_notifiers() -> list[type[Notifier]]:
    return [ConsoleNotifier]
