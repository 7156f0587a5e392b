"""A loopback ``/metrics`` endpoint: a Prometheus text (or OpenMetrics) exposition that a test can change."""

from __future__ import annotations

from typing import Any

from tests.peers import HttpPeer, Reply, Request

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_FORMAT = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class ExpositionPeer(HttpPeer):
    """Serves ``text`` with ``content_type`` on every path; set ``.text`` to change what the next read sees."""

    def __init__(self, text: str = "", content_type: str = TEXT_FORMAT, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.content_type = content_type

    def answer(self, request: Request) -> Reply:
        return Reply(200, self.text.encode(), {"Content-Type": self.content_type})

    def canned(self, status: int) -> Reply:
        return Reply(status, f"HTTP {status}", {"Content-Type": "text/plain"})
