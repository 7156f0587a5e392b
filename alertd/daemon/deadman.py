"""The dead man's switch: while evaluation is healthy, GET a URL at an interval, so that an outside service
(healthchecks.io, Cronitor, a Watchdog receiver) pages when the pings stop, because alertd died or is stuck."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from alertd.config.model import DeadmanSettings
from alertd.daemon.metrics import DaemonMetrics

log = logging.getLogger("alertd.deadman")


class DeadmanSwitch:
    def __init__(
        self,
        settings: DeadmanSettings,
        evaluation_interval: float,
        last_evaluation: Callable[[], float | None],
        http: httpx.AsyncClient,
        metrics: DaemonMetrics,
    ) -> None:
        assert settings.url is not None
        self.url = settings.url
        # A ping URL's path is often its secret (a check's id): logs show the host only.
        self.where = urlsplit(settings.url).netloc or "the ping URL"
        self.timeout = settings.timeout
        self.max_age = settings.max_evaluation_age or 3 * evaluation_interval
        self.last_evaluation = last_evaluation
        self.http = http
        self.metrics = metrics
        self._failing: str | None = None  # the last failure's text: logged once, not at every interval

    async def ping(self) -> bool:
        """One ping if evaluation is healthy; returns whether a ping reached the URL."""
        last = self.last_evaluation()
        age = None if last is None else time.time() - last
        if age is None or age > self.max_age:
            self.metrics.deadman_pings.labels("skipped").inc()
            why = "no evaluation yet" if age is None else f"last evaluation {age:.0f}s ago"
            log.warning("dead man's switch: not pinging, evaluation is unhealthy (%s)", why)
            return False
        try:
            response = await self.http.get(self.url, timeout=self.timeout)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self.metrics.deadman_pings.labels("failure").inc()
            if isinstance(exc, httpx.HTTPStatusError):
                text = f"HTTP {exc.response.status_code}"
            else:
                text = f"{type(exc).__name__}: {exc}".replace(self.url, self.where)
            if text != self._failing:
                log.warning("dead man's switch: ping to %s failed: %s", self.where, text)
            self._failing = text
            return False
        self.metrics.deadman_pings.labels("success").inc()
        if self._failing is not None:
            log.info("dead man's switch: pings to %s work again", self.where)
        self._failing = None
        return True
