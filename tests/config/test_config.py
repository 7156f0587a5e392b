from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.cli import main
from alertd.config import load_config
from alertd.config.secrets import redact_url
from alertd.durations import format_duration, parse_duration
from alertd.errors import ConfigError
from tests.helpers import write

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), ("1.5s", 1.5), ("0", 0), ("2d", 172800)],
    ids=["seconds", "minutes", "hours", "compound", "millis", "fraction", "zero", "days"],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "5min", "-5s", "1h 30m", "fast"],
                         ids=["empty", "no-unit", "space", "unit-first", "long-unit", "negative", "inner-space", "word"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(90, "1m30s"), (0.25, "250ms"), (3600, "1h"), (0, "0s"), (86400 + 61, "1d1m1s")],
                         ids=["minutes", "millis", "hour", "zero", "day"])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_the_example_configuration_loads() -> None:
    loaded = load_config(ROOT / "config.example.toml")
    assert loaded.config.evaluation_interval == 15
    assert loaded.rule_files, "the example configuration must find the example rules"


def test_env_and_file_secrets_are_substituted_and_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTD_TEST_BROKER", "redis://:hunter22@10.0.0.1:6379/0")
    write(tmp_path / "secret.txt", "s3cr3t-value\n")
    cfg = write(
        tmp_path / "alertd.toml",
        """
        external_url = "${ALERTD_TEST_MISSING:-http://alertd.local}"
        [celery]
        broker_url = "${ALERTD_TEST_BROKER}"
        app = "price is $$5"
        [celery.broker_transport_options]
        password_file = "secret.txt"
        """,
    )
    loaded = load_config(cfg)
    assert loaded.config.celery.broker_url == "redis://:hunter22@10.0.0.1:6379/0"
    assert loaded.config.celery.broker_transport_options == {"password": "s3cr3t-value"}
    assert loaded.config.external_url == "http://alertd.local"
    assert loaded.config.celery.app == "price is $5"
    shown = json.dumps(loaded.redacted())
    assert "hunter22" not in shown and "s3cr3t-value" not in shown
    assert "<redacted>" in shown

    result = CliRunner().invoke(main, ["config", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "hunter22" not in result.output and "s3cr3t-value" not in result.output
    assert json.loads(result.output)["celery"]["broker_url"] == "redis://:<redacted>@10.0.0.1:6379/0"


def test_a_key_and_its_file_form_together_are_an_error(tmp_path: Path) -> None:
    write(tmp_path / "s.txt", "x")
    cfg = write(tmp_path / "alertd.toml", '[celery.broker_transport_options]\npassword = "a"\npassword_file = "s.txt"\n')
    with pytest.raises(ConfigError, match="either password or password_file"):
        load_config(cfg)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:<redacted>@host:6379/0"),
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:<redacted>@127.0.0.1:5672//"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
    ids=["redis-password", "amqp-user-password", "no-password"],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "conf" / "rules" / "a.toml", '[[rules]]\nname = "A"\nselect = "x"\ncondition = "value > 1"\n')
    cfg = write(tmp_path / "conf" / "alertd.toml", 'rule_files = ["rules/*.toml"]\n[state]\nurl = "data/alertd.db"\n')
    loaded = load_config(cfg)
    assert loaded.rule_files == [str(tmp_path / "conf" / "rules" / "a.toml")]
    assert loaded.state_url == str(tmp_path / "conf" / "data" / "alertd.db")


def test_logs_never_carry_a_configured_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from alertd.logs import SecretFilter

    monkeypatch.setenv("ALERTD_TEST_TOKEN", "tok-123456")
    cfg = write(tmp_path / "alertd.toml", '[celery]\nbroker_url = "amqp://bob:pa55word@mq:5672//"\n'
                '[celery.broker_transport_options]\napi_token = "${ALERTD_TEST_TOKEN}"\n')
    secrets = load_config(cfg).secret_values()
    assert set(secrets) == {"pa55word", "tok-123456"}
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connect %s with %s", ("amqp://bob:pa55word@mq", "tok-123456"), None)
    SecretFilter(secrets).filter(record)
    assert record.getMessage() == "connect amqp://bob:<redacted>@mq with <redacted>"
