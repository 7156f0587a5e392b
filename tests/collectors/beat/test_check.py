"""`alertd check` reports every beat_schedule entry alertd cannot evaluate, one line each, and never crashes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.cli import main

APP = '''
from datetime import timedelta
from celery import Celery
from celery.schedules import crontab, schedule

class Broken(schedule):
    def remaining_estimate(self, last_run_at):
        raise ZeroDivisionError("division by zero")

app = Celery("beat-check", set_as_current=False)
app.conf.beat_schedule = {
    "every-minute": {"task": "tasks.a", "schedule": 60},
    "nightly": {"task": "tasks.b", "schedule": crontab(minute=0, hour=3)},
    "hourly": {"task": "tasks.c", "schedule": timedelta(hours=1)},
    "garbage": {"task": "tasks.d", "schedule": "at noon"},
    "never": {"task": "tasks.e", "schedule": -1},
    "broken": {"task": "tasks.f", "schedule": Broken(5)},
}
'''


def write_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    module = f"beat_check_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{module}:app"


def write_config(tmp_path: Path, app: str, beat: str = "") -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.toml").write_text('[[rules]]\nname = "R"\nselect = "x"\ncondition = "value > 1"\n')
    cfg = tmp_path / "alertd.toml"
    cfg.write_text(f'rule_files = ["rules/*.toml"]\n[celery]\napp = "{app}"\n{beat}')
    return cfg


def test_each_unevaluable_entry_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = write_app(tmp_path, monkeypatch, APP)
    cfg = write_config(tmp_path, app)
    result = CliRunner().invoke(main, ["check", "-c", str(cfg)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "beat_schedule" in line]
    assert len(lines) == 3, result.output
    prefix = f"{cfg}: celery.app {app}: beat_schedule"
    assert lines[0].startswith(f"{prefix}['garbage']: schedule: must be seconds, a timedelta or a celery.schedules")
    assert lines[1].startswith(f"{prefix}['never']: schedule <freq: now> cannot be evaluated: ValueError")
    assert lines[2].startswith(f"{prefix}['broken']: schedule")
    assert lines[2].endswith("cannot be evaluated: ZeroDivisionError: division by zero")
    assert "3 problem(s) found" in result.output


def test_good_entries_pass_and_beat_off_skips_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = APP.split('    "garbage"')[0] + "}\n"
    cfg = write_config(tmp_path, write_app(tmp_path, monkeypatch, good))
    ok = CliRunner().invoke(main, ["check", "-c", str(cfg)])
    assert ok.exit_code == 0, ok.output
    cfg = write_config(tmp_path, write_app(tmp_path, monkeypatch, APP), "[beat]\nenabled = false\n")
    assert CliRunner().invoke(main, ["check", "-c", str(cfg)]).exit_code == 0


def test_an_app_that_cannot_be_imported_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, write_app(tmp_path, monkeypatch, "raise RuntimeError('no settings')\n"))
    result = CliRunner().invoke(main, ["check", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "celery.app: cannot import Celery app module" in result.output
    assert "no settings" in result.output
    assert "Traceback" not in result.output
