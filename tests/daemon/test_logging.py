"""``alertd run --log-format json``: every line a JSON object, and no configured secret in any of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_json_lines_without_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "alertd.toml"
    cfg.write_text("""
rule_files = []
[state]
url = "memory://"
[celery]
broker_url = "redis://:${BROKER_PASSWORD}@127.0.0.1:1/0"
[events]
enabled = false
[collectors.inspect]
enabled = false
[collectors.workers]
enabled = false
[http]
enabled = false
""")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BROKER_PASSWORD": "hunter2-very-secret"}
    run = subprocess.run([sys.executable, "-m", "alertd", "run", "-c", str(cfg), "--once", "--log-format", "json"],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert any(line["level"] == "warning" and "broker" in line["msg"] for line in lines), lines
    assert all({"ts", "level", "logger", "msg"} <= line.keys() for line in lines)
    assert "hunter2-very-secret" not in run.stderr + run.stdout
