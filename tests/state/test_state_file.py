"""The state file as an attacker or a bad day sees it: its permissions, one daemon per file, a damaged file, and
``alertd state check|backup|restore`` to recover."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.cli import main
from alertd.errors import StateStoreError
from alertd.state import open_store
from alertd.state.lock import holder
from tests.alertd_process import ROOT, AlertdProcess
from tests.helpers import OFFLINE
from tests.services import wait_until
from tests.state.test_store import make_record


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config(tmp_path: Path, db: Path) -> Path:
    cfg = tmp_path / "alertd.toml"
    cfg.write_text(OFFLINE.replace('rule_files = ["rules/*.toml"]', "rule_files = []")
                   .replace('url = "memory://"', f'url = "{db}"') + '[http]\nlisten = "127.0.0.1:0"\n')
    return cfg


def test_the_file_and_its_folder_are_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "folder" / "state.db"
    with open_store(str(db)) as store:
        store.apply([make_record()], [], [])
        assert mode(db.parent) == 0o700
        for path in (db, db.with_name("state.db-wal"), db.with_name("state.db-shm"), db.with_name("state.db.lock")):
            assert mode(path) == 0o600, path


def test_an_existing_readable_file_is_kept_but_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "state.db"
    open_store(str(db)).close()
    db.chmod(0o644)
    with open_store(str(db)):
        assert "mode 644 lets other users open it" in caplog.text
    assert mode(db) == 0o644  # the operator's choice is theirs to change


def test_one_store_per_file_and_the_lock_ends_with_its_holder(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = open_store(str(db))
    with pytest.raises(StateStoreError, match=rf"in use by another alertd \(pid {os.getpid()}\)"):
        open_store(str(db))
    assert holder(db) == str(os.getpid())
    first.close()
    assert holder(db) is None
    open_store(str(db)).close()

    child = subprocess.Popen(
        [sys.executable, "-c", f"from alertd.state import open_store; s = open_store({str(db)!r}); print('open', "
                               "flush=True); import time; time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "open"
        assert holder(db) == str(child.pid)
        with pytest.raises(StateStoreError, match=f"pid {child.pid}"):
            open_store(str(db))
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    open_store(str(db)).close()  # kill -9 leaves no stale lock behind


def test_a_second_daemon_on_the_same_file_exits_with_one_clear_line(tmp_path: Path) -> None:
    db = tmp_path / "var" / "state.db"
    cfg = config(tmp_path, db)
    first = AlertdProcess(cfg, log=tmp_path / "first.log").start()
    try:
        first.wait_for_line("HTTP on ")
        assert first.proc is not None
        wait_until(lambda: holder(db) == str(first.proc.pid), what="the first daemon to hold the lock")
        second = subprocess.run([sys.executable, "-m", "alertd", "run", "-c", str(cfg)], capture_output=True,
                                text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr
        assert f"is in use by another alertd (pid {first.proc.pid})" in lines[0] and str(db) in lines[0]
        assert first.proc.poll() is None  # the first one pages on, untouched
    finally:
        first.kill()
    third = AlertdProcess(cfg, log=tmp_path / "third.log").start()
    try:
        third.wait_for_line("HTTP on ")  # kill -9 of the first left no stale lock
    finally:
        assert third.stop() == 0


def test_a_damaged_file_is_one_line_then_a_backup_puts_it_right(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    cfg = config(tmp_path, db)
    with open_store(str(db)) as store:
        store.apply([make_record(labels={"queue": "payments"})], [], [])
        backup = tmp_path / "backups" / "monday.db"
        backup.parent.mkdir()
        cli = CliRunner()
        # A backup while the store is open (and locked), as while alertd runs.
        made = cli.invoke(main, ["state", "backup", "-c", str(cfg), str(backup)])
        assert made.exit_code == 0, made.output
        assert f"{backup}: alerts: 1" in made.output and mode(backup) == 0o600
        refused = cli.invoke(main, ["state", "restore", "-c", str(cfg), str(backup)])
        assert refused.exit_code == 1 and "in use by another alertd" in refused.output
        again = cli.invoke(main, ["state", "backup", "-c", str(cfg), str(backup)])
        assert again.exit_code == 1 and "exists" in again.output

    db.write_bytes(b"\x00garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    run = subprocess.run([sys.executable, "-m", "alertd", "run", "-c", str(cfg), "--once"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if "state store" in line] == [
        f"state store {db}: cannot open the database (is it an alertd state file, in a writable folder?): file is "
        "not a database (alertd state check says more; alertd state restore puts a backup back)"]

    checked = CliRunner().invoke(main, ["state", "check", "-c", str(cfg)])
    assert checked.exit_code == 1 and "not a readable alertd state file" in checked.output

    restored = CliRunner().invoke(main, ["state", "restore", "-c", str(cfg), str(backup)])
    assert restored.exit_code == 0, restored.output
    assert f"{db}: alerts: 1" in restored.output and mode(db) == 0o600
    [kept] = tmp_path.glob("state.db.replaced-*")
    assert kept.read_bytes().startswith(b"\x00garbage")
    with open_store(str(db)) as store:
        assert [r.labels["queue"] for r in store.load_alerts()] == ["payments"]


def test_restore_refuses_a_damaged_backup_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    cfg = config(tmp_path, db)
    with open_store(str(db)) as store:
        store.apply([make_record()], [], [])
    before = db.read_bytes()
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not sqlite at all")
    refused = CliRunner().invoke(main, ["state", "restore", "-c", str(cfg), str(bad)])
    assert refused.exit_code == 1 and "cannot be restored" in refused.output
    assert db.read_bytes() == before and not list(tmp_path.glob("state.db.replaced-*"))
