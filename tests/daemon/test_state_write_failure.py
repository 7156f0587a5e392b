"""A state write that fails (here SQLite's own refusal to write, as for a file made read-only: the live
connection is switched to query_only) never holds an alert back: the evaluation and the page go on from memory,
once, alertd raises its own alert and readiness says so, and once writes work again everything that waited is
saved."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from alertd.config.model import HttpSettings
from alertd.daemon import build
from alertd.http.server import start_http_server
from alertd.models import AlertState, Sample
from alertd.notify.store_watch import STATE_WRITE_FAILING
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


def writable(store: SQLiteStateStore, yes: bool) -> None:
    with store._use("test") as conn:
        conn.execute(f"PRAGMA query_only = {0 if yes else 1}")


async def test_a_store_that_refuses_writes_holds_no_page_back_and_everything_is_saved_after(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "q.toml", RULES)
    cfg = write(tmp_path / "alertd.toml", OFFLINE.replace('url = "memory://"', 'url = "state.db"') + f"""
[receivers.console]
type = "console"
path = "{tmp_path / 'pages.log'}"
[route]
receiver = "console"
group_wait = "0s"
group_by = ["alertname"]
""")
    daemon = build(str(cfg))
    assert isinstance(daemon.state, SQLiteStateStore)
    server = await start_http_server(daemon, HttpSettings(listen="127.0.0.1:0"))
    try:
        daemon.first_collection_done.set()
        writable(daemon.state, False)
        now = time.time()
        daemon.ingest([Sample("queue_depth", {"queue": f"q{i}"}, 50.0, now) for i in range(200)])
        daemon.evaluate_all()  # does not raise
        firing = {r.labels["queue"] for r in daemon.engine.alerts([AlertState.FIRING])}
        assert len(firing) == 200
        assert "readonly database" in (daemon.engine.state_error or "")
        assert daemon.pipeline is not None
        await daemon.pipeline.tick()  # the page goes out from memory: its outbox row could not be written
        await daemon.pipeline.tick()  # and is not sent again because its outcome could not be written either
        pages = [line for line in (tmp_path / "pages.log").read_text().splitlines() if line.startswith("===")]
        assert pages.count("=== [FIRING] QueueDeep to console (first notification) ===") == 1  # once, not again
        assert "=== [FIRING] AlertdStateWriteFailing to console (first notification) ===" in pages  # and said
        own = {a.labels["part"]: a for a in daemon.internal_alerts()
               if a.labels["alertname"] == STATE_WRITE_FAILING and a.state is AlertState.FIRING}
        assert set(own) == {"alert states", "notifications"}
        assert "cannot be saved" in own["alert states"].annotations["summary"]
        async with httpx.AsyncClient(base_url=server.url) as c:
            ready = await c.get("/-/ready")
            assert ready.status_code == 503 and ready.json()["status"] == "degraded"

            # A second evaluation while still full: the alerts stay, nothing is written twice or lost.
            daemon.ingest([Sample("queue_depth", {"queue": "q0"}, 1.0, time.time())])
            daemon.evaluate_all()
            assert "q0" not in {r.labels["queue"] for r in daemon.engine.alerts([AlertState.FIRING])}

            writable(daemon.state, True)
            daemon.evaluate_all()
            assert daemon.engine.state_error is None and not daemon.engine.unsaved
            await daemon.housekeeping()  # the notifications' part sees the store take a write again
            assert not [a for a in daemon.internal_alerts()
                        if a.labels["alertname"] == STATE_WRITE_FAILING and a.state is AlertState.FIRING]
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
