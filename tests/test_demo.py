"""The newcomer demo (``./scripts/demo`` runs ``python -m demo.run``): its page arrives, its alert resolves,
and once it exits nothing it started is left running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DEMO_ENV = {
    "CELERY_BROKER_URL": "redis://127.0.0.1:6390/0",
    "PUSHGATEWAY_URL": "http://127.0.0.1:9091",
    "ALERTD_DEMO_DIR": "/tmp/alertd-demo-check",
    "ALERTD_DEMO_SINK_URL": "http://127.0.0.1:9465/alerts",
    "ALERTD_HTTP_LISTEN": "127.0.0.1:9464",
}


def group_gone(pgid: int) -> bool:
    """No process is left in the process group (each child of the demo leads its own)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # the id now belongs to someone else's group
        return True
    return False


def test_the_demo_config_and_its_rules_check() -> None:
    env = {**os.environ, **DEMO_ENV}
    check = subprocess.run([sys.executable, "-m", "alertd", "check", "-c", "demo/alertd.toml"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = subprocess.run([sys.executable, "-m", "alertd", "test", "demo/rules/"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_the_demo_pages_resolves_and_leaves_nothing_running() -> None:
    env = dict(os.environ)
    for name in ("CELERY_BROKER_URL", "PUSHGATEWAY_URL", "ALERTD_HTTP_LISTEN", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)  # private redis-server and Pushgateway, a free port for HTTP
    demo = subprocess.Popen([sys.executable, "-m", "demo.run", "--exit-after-resolve"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = demo.communicate(timeout=110)
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGTERM)  # the demo stops what it started
        out, _ = demo.communicate(timeout=60)
        pytest.fail(f"the demo did not finish in 110 s:\n{out}")
    print(out)

    assert demo.returncode == 0, out
    assert "demo.payment.charge failed at" in out and "CardDeclined: card declined for order 1042" in out
    paged = re.search(r"PAGE: paged (\d+\.\d+) s after demo\.payment\.charge failed", out)
    assert paged is not None, out
    assert float(paged.group(1)) < 5.0
    assert "webhook sink received [FIRING] PaymentTaskFailed for payments-oncall" in out
    assert "| === [FIRING] PaymentTaskFailed to console" in out
    resolved = re.search(r"RESOLVED: (\d+\.\d) s after the failure", out)
    assert resolved is not None, out
    assert float(resolved.group(1)) < 75.0
    assert "webhook sink received [RESOLVED] PaymentTaskFailed for payments-oncall" in out
    assert "| === [RESOLVED] PaymentTaskFailed to console" in out
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/", out), out
    assert out.index("[FIRING] PaymentTaskFailed") < out.index("[RESOLVED] PaymentTaskFailed") < out.index("dashboard:")

    started = {name.strip(): int(pid) for name, pid in re.findall(r"^    (\S[\w -]+?)\s{2,}.*\(pid (\d+)\)$", out, re.M)}
    assert set(started) == {"redis-server", "prometheus-pushgateway", "webhook sink", "celery worker", "alertd"}, out
    for name, pid in started.items():
        # The worker's pool processes are in its group: none may be left behind.
        wait_until(lambda pid=pid: group_gone(pid), timeout=10, what=f"{name}'s process group to be empty")
        assert not Path(f"/proc/{pid}").exists()
    assert "exit codes: alertd 0, celery worker 0" in out
    logs = re.search(r"logs in (\S+)\)", out)
    assert logs is not None and not Path(logs.group(1)).exists()
