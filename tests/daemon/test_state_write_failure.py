"""A state write that fails (here a full database: SQLite's own "database or disk is full", from a page limit
set on the live file) never holds an alert back: the evaluation goes on in memory, alertd raises its own
alert and readiness says so, and once writes work again everything that waited is saved."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from alertd.config.model import HttpSettings
from alertd.daemon import build
from alertd.daemon.core import STATE_WRITE_FAILING
from alertd.http.server import start_http_server
from alertd.models import AlertState, Sample
from alertd.state import open_store
from alertd.state.sqlite import SQLiteStateStore
from tests.helpers import OFFLINE, write

RULES = """
[[groups]]
name = "g"
[[groups.rules]]
name = "QueueDeep"
select = "queue_depth"
condition = "value > 10"
"""


def fill(store: SQLiteStateStore, room: int) -> None:
    """Let the database grow by ``room`` pages at most, as a disk with little space left would."""
    with store._use("test") as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + room}")


async def test_a_full_disk_holds_no_alert_back_and_everything_is_saved_once_it_clears(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "q.toml", RULES)
    cfg = write(tmp_path / "alertd.toml", OFFLINE.replace('url = "memory://"', 'url = "state.db"'))
    daemon = build(str(cfg))
    assert isinstance(daemon.state, SQLiteStateStore)
    server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0"))
    try:
        daemon.first_collection_done.set()
        fill(daemon.state, 0)
        now = time.time()
        daemon.ingest([Sample("queue_depth", {"queue": f"q{i}"}, 50.0, now) for i in range(200)])
        daemon.evaluate_all()  # does not raise
        firing = {r.labels["queue"] for r in daemon.engine.alerts([AlertState.FIRING])}
        assert len(firing) == 200
        assert "database or disk is full" in (daemon.engine.state_error or "")
        own = [a for a in daemon.internal.firing() if a.labels["alertname"] == STATE_WRITE_FAILING]
        assert len(own) == 1 and "cannot be saved" in own[0].annotations["summary"]
        async with httpx.AsyncClient(base_url=server.url) as c:
            ready = await c.get("/-/ready")
            assert ready.status_code == 503 and ready.json()["status"] == "degraded"

            # A second evaluation while still full: the alerts stay, nothing is written twice or lost.
            daemon.ingest([Sample("queue_depth", {"queue": "q0"}, 1.0, time.time())])
            daemon.evaluate_all()
            assert "q0" not in {r.labels["queue"] for r in daemon.engine.alerts([AlertState.FIRING])}

            fill(daemon.state, 10_000)  # space again
            daemon.evaluate_all()
            assert daemon.engine.state_error is None and not daemon.engine.unsaved
            assert not [a for a in daemon.internal.firing() if a.labels["alertname"] == STATE_WRITE_FAILING]
            assert (await c.get("/-/ready")).status_code == 200
    finally:
        await server.close()
        await daemon.close()
    with open_store(str(tmp_path / "state.db")) as store:
        saved = {r.labels["queue"]: r.state for r in store.load_alerts()}
        assert len(saved) == 200 and saved["q0"] is AlertState.RESOLVED
        assert all(state is AlertState.FIRING for queue, state in saved.items() if queue != "q0")
        q0 = next(r.fingerprint for r in store.load_alerts() if r.labels["queue"] == "q0")
        assert sorted((t.from_state.value, t.to_state.value) for t in store.history(q0)) == [
            ("firing", "resolved"), ("inactive", "firing")]  # both transitions made while full were kept
