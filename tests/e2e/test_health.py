"""``GET /health/celery`` follows the cluster: 200 while the broker and a worker answer, 503 with the reason
while the broker is down, 200 again once it is back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.alertd_process import AlertdProcess
from tests.e2e.conftest import write_config
from tests.peers.pagerduty import PagerDutyPeer
from tests.services import RedisServer, wait_until
from tests.workers import CeleryWorker

pytestmark = pytest.mark.integration

FAST = """
[collectors.broker]
interval = "0.5s"
timeout = "0.5s"
[collectors.queues]
interval = "0.5s"
timeout = "0.5s"
[collectors.workers]
interval = "1s"
"""


def health(url: str) -> tuple[int, dict[str, object]]:
    response = httpx.get(f"{url}/health/celery", timeout=5)
    return response.status_code, response.json()


def test_health_celery_goes_503_with_the_reason_while_the_broker_is_stopped(
    tmp_path: Path, redis_server: RedisServer, worker_factory: Callable[..., CeleryWorker],
    pagerduty: PagerDutyPeer,
) -> None:
    worker = worker_factory(redis_server.url, "health")
    cfg = write_config(tmp_path, redis_server.url, worker.queue, pagerduty.enqueue_url, extra=FAST)
    with AlertdProcess(cfg) as alertd:
        alertd.wait_for_line("alertd starting")
        url = alertd.url
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=5).status_code == 200, timeout=30, what="ready")
        body = wait_until(lambda: (h := health(url))[0] == 200 and h[1], timeout=30, what="healthy")
        assert body["status"] == "healthy"
        assert any(w["name"] == worker.name for w in body["workers"])  # type: ignore[index, union-attr]

        redis_server.stop()
        body = wait_until(lambda: (h := health(url))[0] == 503 and h[1], timeout=15, what="unhealthy")
        assert body["status"] == "unhealthy"
        assert any("broker" in reason for reason in body["reasons"])  # type: ignore[union-attr]

        redis_server.start()
        wait_until(lambda: health(url)[0] == 200, timeout=30, what="healthy again")
        assert alertd.stop() == 0
