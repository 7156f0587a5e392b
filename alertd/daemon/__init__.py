"""The daemon (``alertd run``): ``core`` holds the running parts, ``run`` the process around them, ``jobs`` puts
their jobs on the scheduler (coroutines on the event loop only), ``reload`` builds a new configuration,
``metrics`` holds alertd's own metrics and ``deadman`` the outside ping."""

from __future__ import annotations

from alertd.daemon.core import Daemon, build
from alertd.daemon.reload import ReloadResult
from alertd.daemon.run import run_daemon

__all__ = ["Daemon", "ReloadResult", "build", "run_daemon"]
