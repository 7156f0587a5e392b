"""Reloading: the configuration file and rule files in; a validated candidate (or the reason there is none) out.

Nothing here touches the running daemon: ``Daemon.reload`` builds a candidate with ``build_candidate`` and
swaps it in only when the whole of it loaded. ``FileWatcher`` notices a change to any of the files.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pluggy

from alertd.config import LoadedConfig, load_config
from alertd.rules.load import RuleSet, find_rule_files, load_rules
from alertd.templating.env import make_environment

log = logging.getLogger("alertd.reload")

RELOAD_FAILED = "AlertdReloadFailed"


@dataclass(frozen=True)
class Candidate:
    """A configuration and its rules, both loaded and validated, not yet running."""

    loaded: LoadedConfig
    rules: RuleSet


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    source: str  # what asked: "SIGHUP", "HTTP", "file change"
    message: str  # what changed, or the errors (one per line) that kept the running configuration
    at: float
    rules: int = 0
    changed: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "source": self.source, "message": self.message, "at": self.at,
                "rules": self.rules, "changed": list(self.changed)}


def build_candidate(config_path: str, pm: pluggy.PluginManager) -> Candidate:
    """Load everything a reload would run; raises ConfigError listing every problem, before anything changes."""
    loaded = load_config(config_path, pm)
    env = make_environment(pm, loaded.config.templates.budget())
    rules = load_rules(loaded.rule_files, env, default_interval=loaded.config.evaluation_interval)
    return Candidate(loaded, rules)


Signature = tuple[tuple[str, int, int], ...]


def files_signature(loaded: LoadedConfig) -> Signature:
    """The config file and every rule file its globs match now, with mtime and size: any change differs."""
    paths = [loaded.path, *find_rule_files(loaded.config.rule_files, loaded.base_dir)]
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((path, -1, -1))
        else:
            out.append((path, st.st_mtime_ns, st.st_size))
    return tuple(out)


class FileWatcher:
    """Polls the files every ``interval`` seconds and calls ``on_change`` once per change.

    Polling, not inotify: it works the same on every file system (bind mounts, Kubernetes ConfigMaps that
    swap a symlink) and costs a few ``stat`` calls per interval. A change that fails to load is not retried
    until the files change again.
    """

    def __init__(
        self, signature: Callable[[], Signature], on_change: Callable[[], Awaitable[object]], interval: float
    ) -> None:
        self.signature = signature
        self.on_change = on_change
        self.interval = interval
        self._last = signature()

    def seen(self) -> None:
        """The files as they are now are the running (or rejected) ones: don't reload for them."""
        self._last = self.signature()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
                return
            except TimeoutError:
                pass
            try:
                now = self.signature()
            except Exception:  # a glob over a folder being replaced: try again next time
                log.debug("cannot read the rule files' state", exc_info=True)
                continue
            if now != self._last:
                self._last = now
                await self.on_change()
