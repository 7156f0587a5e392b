"""Reloading in process: build and check first, then swap; state kept for the rules that stay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from alertd.daemon import build
from alertd.daemon.reload import RELOAD_FAILED, FileWatcher, files_signature
from alertd.models import AlertState, Sample
from tests.helpers import OFFLINE

pytestmark = pytest.mark.usefixtures("debug_loop")

RULE = """
[[groups]]
name = "g"
interval = "1s"
[[groups.rules]]
name = "{name}"
select = "queue_depth"
condition = "value > 10"
for = "{for_}"
severity = "warning"
summary = "{summary}"
"""


def setup(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.toml").write_text(RULE.format(name="Deep", for_="0s", summary="deep"))
    cfg = tmp_path / "alertd.toml"
    cfg.write_text(OFFLINE + f"""
[http]
enabled = false
[receivers.console]
type = "console"
path = "pages.log"
[route]
receiver = "console"
group_wait = "0s"
{extra}
""")
    return cfg


def firing(daemon: object) -> dict[str, object]:
    return {r.labels["alertname"]: r for r in daemon.engine.alerts([AlertState.FIRING])}  # type: ignore[attr-defined]


async def test_a_good_reload_swaps_rules_and_keeps_the_state_of_the_rules_that_stay(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    daemon = build(str(cfg))
    try:
        daemon.ingest([Sample("queue_depth", {}, 50.0, time.time())])
        daemon.evaluate_all()
        before = firing(daemon)["Deep"]
        rules = tmp_path / "rules" / "a.toml"
        rules.write_text(rules.read_text() + RULE.format(name="Deeper", for_="1h", summary="deeper").replace(
            '[[groups]]\nname = "g"\ninterval = "1s"\n', ""))
        result = await daemon.reload("test")
        assert result.ok and result.rules == 2
        assert "rules +1 -0" in result.changed
        after = firing(daemon)["Deep"]
        assert after.fingerprint == before.fingerprint  # type: ignore[attr-defined]
        assert after.fired_at == before.fired_at  # type: ignore[attr-defined]
        pending = {r.labels["alertname"] for r in daemon.engine.alerts([AlertState.PENDING])}
        assert pending == {"Deeper"}
        assert daemon.metrics.reload_success._value.get() == 1
    finally:
        await daemon.close()


@pytest.mark.parametrize(
    "breakage",
    [
        ("rules/a.toml", "[[groups]\n"),  # TOML syntax
        ("rules/a.toml", RULE.format(name="Deep", for_="soon", summary="x")),  # a bad duration
        ("rules/a.toml", RULE.format(name="Deep", for_="0s", summary="{{ labels.") ),  # a bad template
        ("alertd.toml", "rule_files = 3\n"),  # a bad configuration
    ],
)
async def test_a_bad_file_keeps_the_running_configuration_and_raises_an_alert(
    tmp_path: Path, breakage: tuple[str, str]
) -> None:
    cfg = setup(tmp_path)
    daemon = build(str(cfg))
    try:
        rules_before = daemon.engine.rules
        path, text = breakage
        (tmp_path / path).write_text(text)
        result = await daemon.reload("test")
        assert not result.ok
        assert path.split("/")[-1] in result.message
        assert daemon.engine.rules is rules_before
        assert daemon.loaded.config.rule_files == ["rules/*.toml"]
        internal = {a.labels["alertname"]: a for a in daemon.internal_alerts()}
        assert internal[RELOAD_FAILED].state == AlertState.FIRING
        assert daemon.metrics.reload_success._value.get() == 0
        # The rules still work.
        daemon.ingest([Sample("queue_depth", {}, 50.0, time.time())])
        daemon.evaluate_all()
        assert "Deep" in firing(daemon)
        # Fixed: the next reload succeeds and the alert about the failure resolves.
        setup_again = tmp_path / "fixed"
        setup_again.mkdir()
        cfg.write_text(setup(setup_again).read_text())
        (tmp_path / "rules" / "a.toml").write_text(RULE.format(name="Deep", for_="0s", summary="deep"))
        assert (await daemon.reload("test")).ok
        internal = {a.labels["alertname"]: a for a in daemon.internal_alerts()}
        assert internal[RELOAD_FAILED].state == AlertState.RESOLVED
    finally:
        await daemon.close()


async def test_a_reload_rebuilds_only_what_changed(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    daemon = build(str(cfg))
    try:
        pipeline, runners = daemon.pipeline, daemon.runners
        assert (await daemon.reload("test")).changed == ()
        assert daemon.pipeline is pipeline and daemon.runners is runners
        cfg.write_text(cfg.read_text().replace('group_wait = "0s"', 'group_wait = "5s"'))
        result = await daemon.reload("test")
        assert result.changed == ("notifications",)
        assert daemon.pipeline is not pipeline and daemon.runners is runners
        assert daemon.pipeline is not None and daemon.pipeline.route.options.group_wait == 5.0
        cfg.write_text(cfg.read_text().replace("[collectors.broker]\nenabled = false", "[collectors.broker]\nenabled = true"))
        result = await daemon.reload("test")
        assert result.changed == ("collectors",)
        assert "broker" in daemon.runners and "broker" not in runners
    finally:
        await daemon.close()


async def test_the_file_watcher_calls_once_per_change_including_a_new_rule_file(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    daemon = build(str(cfg))
    calls: list[float] = []
    changed = asyncio.Event()

    async def on_change() -> None:
        calls.append(time.time())
        changed.set()

    watcher = FileWatcher(lambda: files_signature(daemon.loaded), on_change, interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        (tmp_path / "rules" / "b.toml").write_text(RULE.format(name="Other", for_="0s", summary="x"))
        await asyncio.wait_for(changed.wait(), 5)
        changed.clear()
        assert len(calls) == 1
        (tmp_path / "rules" / "b.toml").unlink()
        await asyncio.wait_for(changed.wait(), 5)
        assert len(calls) == 2
    finally:
        stop.set()
        await task
        await daemon.close()
