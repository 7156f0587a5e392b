"""Secrets are declared by the settings models: only they take ``<key>_file``, and ``alertd config`` never shows
them, nor anything that came from a secret reference, wherever it appears."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.cli import main
from alertd.config import load_config
from alertd.config.model import Config
from alertd.config.secrets import hidden_parts, model_secrecy, shown
from alertd.errors import ConfigError, ConfigErrors
from tests.helpers import write
from tests.peers.tls import shared_certificate

EMAIL = """
[route]
receiver = "mail"
[receivers.mail]
type = "email"
to = ["oncall@example.com"]
from = "alertd@example.com"
smarthost = "smtp.example.com:587"
username = "alertd"
"""


def show(cfg: Path) -> str:
    result = CliRunner().invoke(main, ["config", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (("http", "token"), True),
        (("deadman", "url"), True),
        (("http", "listen"), False),
        (("http", "tls_cert"), False),
        (("celery", "broker_url"), False),
        (("celery", "broker_transport_options", "sentinel_password"), True),  # free-form: the name tells
        (("celery", "broker_transport_options", "visibility_timeout"), False),
        (("http", "no_such_option"), None),
    ],
    ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else str(v),
)
def test_the_model_declares_what_is_secret(path: tuple[str, ...], secret: bool | None) -> None:
    assert model_secrecy(Config, path) is secret


def test_ca_file_is_passed_through_not_read(tmp_path: Path) -> None:
    ca = Path(shared_certificate().ca_file)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(ca.read_bytes())
    cfg = write(tmp_path / "alertd.toml", EMAIL + 'ca_file = "certs/ca.pem"\n'
                '[receivers.hook]\ntype = "webhook"\nurl = "https://hooks.example.com/x"\n'
                f'ca_file = "{ca}"\n')
    loaded = load_config(cfg)
    assert loaded.config.receivers["mail"].notifier_settings()["ca_file"] == "certs/ca.pem"
    assert loaded.receiver_settings["mail"].ca_file == str(tmp_path / "certs" / "ca.pem")  # type: ignore[attr-defined]
    assert loaded.receiver_settings["hook"].ca_file == str(ca)  # type: ignore[attr-defined]
    assert json.loads(show(cfg))["receivers"]["mail"]["ca_file"] == str(tmp_path / "certs" / "ca.pem")


def test_a_missing_ca_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertd.toml", EMAIL + 'ca_file = "nowhere.pem"\n')
    with pytest.raises(ConfigErrors) as caught:
        load_config(cfg)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{cfg}:") and "receivers.mail.ca_file" in line
    assert f"cannot read {tmp_path / 'nowhere.pem'}" in line


def test_password_file_is_read_with_one_trailing_newline_stripped(tmp_path: Path) -> None:
    (tmp_path / "smtp-password").write_text(" pass phrase \n\n")
    cfg = write(tmp_path / "alertd.toml", EMAIL + 'password_file = "smtp-password"\n')
    loaded = load_config(cfg)
    password = loaded.receiver_settings["mail"].password  # type: ignore[attr-defined]
    assert password.get_secret_value() == " pass phrase \n"
    assert " pass phrase" not in show(cfg)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('[http]\nlisten_file = "listen.txt"\n', "http.listen_file", "listen is not a secret"),
        (EMAIL + 'smarthost_file = "host.txt"\n', "receivers.mail.smarthost_file", "smarthost is not a secret"),
        (EMAIL + 'foo_file = "foo.txt"\n', "receivers.mail.foo_file", "foo is not a secret"),
    ],
    ids=["core", "receiver", "unknown"],
)
def test_file_form_of_a_setting_that_is_not_a_secret_is_an_error(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    cfg = write(tmp_path / "alertd.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{cfg}:") and f"{field}: {message}" in line


def test_an_unreadable_secret_file_names_the_file_and_field(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertd.toml", '[http]\ntoken_file = "missing-token"\n')
    with pytest.raises(ConfigError, match=r"http\.token_file: cannot read secret file .*missing-token: No such file"):
        load_config(cfg)


def test_secrets_are_redacted_wherever_they_appear_urls_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTD_TEST_SLACK_PATH", "T0ALERTD/B0ALERTD/sl4ck-s3cr3t")
    monkeypatch.setenv("ALERTD_TEST_HOOK_TOKEN", "h00k-t0ken")
    monkeypatch.setenv("ALERTD_TEST_API_TOKEN", "api-t0ken-value")
    write(tmp_path / "ping", "p1ng-uuid\n")
    cfg = write(tmp_path / "alertd.toml", """
        external_url = "https://alertd.example/?key=api-t0ken-value"
        [http]
        token = "${ALERTD_TEST_API_TOKEN}"
        [deadman]
        url = "https://hc-ping.com/4a1b-c0ffee-literal"
        [route]
        receiver = "slack"
        [receivers.slack]
        type = "slack"
        webhook_url = "https://hooks.slack.com/services/${ALERTD_TEST_SLACK_PATH}"
        title_link = "https://hooks.slack.com/services/${ALERTD_TEST_SLACK_PATH}"
        [receivers.hook]
        type = "webhook"
        url = "https://hooks.example.com/alertd/${ALERTD_TEST_HOOK_TOKEN}?team=payments"
        headers = {X-Ping_file = "ping"}
        """)
    loaded = load_config(cfg)
    assert loaded.receiver_settings["hook"].headers["X-Ping"].get_secret_value() == "p1ng-uuid"  # type: ignore[attr-defined]
    output = show(cfg)
    for secret in ("sl4ck-s3cr3t", "h00k-t0ken", "api-t0ken-value", "4a1b-c0ffee-literal", "p1ng-uuid"):
        assert secret not in output
    data = json.loads(output)
    assert data["deadman"]["url"] == "https://hc-ping.com/<redacted>"
    assert data["receivers"]["hook"]["url"] == "https://hooks.example.com/<redacted>"
    # A secret reference's value is hidden in a setting that is not itself a secret, too.
    assert data["receivers"]["slack"]["title_link"] == "https://hooks.slack.com/services/<redacted>"
    assert data["external_url"] == "https://alertd.example/?key=<redacted>"
    assert data["http"]["token"] == "<redacted>"
    # What the logs scrub: the secrets, and a secret URL's path apart (a library may print it alone).
    assert {"T0ALERTD/B0ALERTD/sl4ck-s3cr3t", "/alertd/h00k-t0ken", "p1ng-uuid", "api-t0ken-value"} <= set(
        loaded.secret_values()
    )


def test_a_variable_in_a_setting_that_is_not_a_secret_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTD_TEST_LISTEN", "127.0.0.1:9555")
    cfg = write(tmp_path / "alertd.toml", '[http]\nlisten = "${ALERTD_TEST_LISTEN}"\n')
    assert json.loads(show(cfg))["http"]["listen"] == "127.0.0.1:9555"


@pytest.mark.parametrize(
    ("value", "secret", "expected"),
    [
        ("redis://:pw@host/0", False, "redis://:<redacted>@host/0"),
        ("redis://host/0", False, "redis://host/0"),
        ("https://hooks.example.com/services/T0/B0/XYZ", True, "https://hooks.example.com/<redacted>"),
        ("https://hooks.example.com:8443/x?token=y", True, "https://hooks.example.com:8443/<redacted>"),
        ("abc123", True, "<redacted>"),
        ("critical", False, "critical"),
        ("https://x.example/run/s3cr3t-ref/now", False, "https://x.example/run/<redacted>/now"),
    ],
    ids=["url-password", "plain-url", "secret-url", "secret-url-port", "secret", "plain", "reference-in-url"],
)
def test_how_a_value_is_shown(value: str, secret: bool, expected: str) -> None:
    assert shown(value, secret=secret, references={"s3cr3t-ref"}) == expected


def test_what_the_logs_hide() -> None:
    assert hidden_parts("amqp://bob:pa55@mq//", secret=False) == ["pa55"]
    assert hidden_parts("https://h.example/p/t0k?q=1", secret=True) == ["https://h.example/p/t0k?q=1", "/p/t0k", "q=1"]
    assert hidden_parts("listen", secret=False) == []
