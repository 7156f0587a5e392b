"""Where the CLI clients connect, with which token and TLS settings, and how they fail: exit 1, one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from alertd.client import AlertdClient, ApiError, resolve_target
from tests.cli.conftest import TOKEN, Served, alertd


def client_config(folder: Path, http: str) -> Path:
    """An operator's configuration file: the client reads only its [http] section."""
    path = folder / "client.toml"
    path.write_text(f"[http]\n{http}\n[receivers.pager]\ntype = \"console\"\nsecret = \"${{NOT_SET_HERE}}\"\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mutating_call_without_token_fails_with_a_clear_message(served: Served) -> None:
    result = alertd("silence", "add", 'queue="payments"', "--url", served.url)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: this call needs Authorization: Bearer <[http] token> — give --token, set ALERTD_TOKEN, "
        "or set [http] token in the configuration (HTTP 401)\n")
    result = alertd("ack", "", "--url", served.url, "--token", "wrong")
    assert result.exit_code == 1 and "fingerprints" in result.stderr  # resolving the prefix needs no token
    fingerprint = json.loads(alertd("alerts", "--url", served.url, "--json").stdout)["alerts"][0]["fingerprint"]
    result = alertd("ack", fingerprint, "--url", served.url, "--token", "wrong")
    assert result.exit_code == 1 and "(HTTP 401)" in result.stderr and len(result.stderr.splitlines()) == 1
    result = alertd("ack", fingerprint, "--url", served.url, env={"ALERTD_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output


def test_url_and_token_from_the_environment(served: Served) -> None:
    result = alertd("silence", "add", 'queue="x"', env={"ALERTD_URL": served.url, "ALERTD_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() in alertd("silence", "list", env={"ALERTD_URL": served.url}).stdout


def test_url_and_token_from_the_configuration(served: Served, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_TOKEN", TOKEN)
    config = client_config(tmp_path, f'listen = "127.0.0.1:{served.port}"\ntoken = "${{CLI_TEST_TOKEN}}"')
    result = alertd("silence", "add", 'queue="a"', "-c", str(config))
    assert result.exit_code == 0, result.output

    (tmp_path / "token").write_text(TOKEN + "\n")
    config = client_config(tmp_path, f'listen = "0.0.0.0:{served.port}"\ntoken_file = "token"')
    assert resolve_target(config).url == f"http://127.0.0.1:{served.port}"
    result = alertd("silence", "add", 'queue="b"', "-c", str(config))
    assert result.exit_code == 0, result.output

    # The default file, alertd.toml in the working folder; ALERTD_CONFIG names another.
    (tmp_path / "alertd.toml").write_text(config.read_text())
    result = alertd("silence", "list", "--json")
    assert {s["matchers"][0] for s in json.loads(result.stdout)["silences"]} == {'queue="a"', 'queue="b"'}
    (tmp_path / "alertd.toml").unlink()
    result = alertd("silence", "list", "--json", env={"ALERTD_CONFIG": str(config)})
    assert result.exit_code == 0, result.output

    # --url wins over [http] listen, --token over [http] token.
    result = alertd("silence", "add", 'queue="c"', "-c", str(config), "--url", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1 and "connection refused" in result.stderr
    result = alertd("silence", "add", 'queue="c"', "-c", str(config), "--token", "wrong")
    assert result.exit_code == 1 and "(HTTP 401)" in result.stderr


def test_configuration_problems_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = alertd("alerts", "-c", str(tmp_path / "missing.toml"))
    assert result.exit_code == 1 and result.stderr == f"error: {tmp_path / 'missing.toml'}: file not found\n"
    config = client_config(tmp_path, 'listen = "nowhere"')
    result = alertd("alerts", "-c", str(config))
    assert result.exit_code == 1 and result.stderr == f"error: {config}:1: http: listen must be host:port, got 'nowhere'\n"
    config = client_config(tmp_path, "enabled = false")
    result = alertd("alerts", "-c", str(config))
    assert result.exit_code == 1 and "[http] enabled = false" in result.stderr


def test_unreachable_server_exits_1_with_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run([sys.executable, "-m", "alertd", "alerts", "--url", url], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (f"error: cannot reach alertd at {url} (--url or ALERTD_URL): connection refused — is "
                           "`alertd run` running?\n")
    default = subprocess.run([sys.executable, "-m", "alertd", "alerts"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=60, env={k: v for k, v in os.environ.items()
                                                            if k not in ("ALERTD_URL", "ALERTD_CONFIG")})
    assert default.returncode == 1  # says which address it tried, and why that one
    assert "at http://127.0.0.1:9464 (the default: there is no alertd.toml here; give -c FILE or --url)" in (
        default.stderr)


def test_default_address_without_a_configuration_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALERTD_CONFIG", raising=False)
    target = resolve_target("alertd.toml")
    assert (target.url, target.token, target.verify) == ("http://127.0.0.1:9464", None, True)


@pytest.mark.parametrize("args", [
    ["silence", "add"],
    ["silence", "add", 'queue="x"', "--duration", "2 hours"],
    ["silence", "add", 'queue=="x"'],
    ["alerts", "--state", "firng"],
    ["alerts", "--filter", "queue"],
    ["ack"],
    ["ack", "abc", "--duration", "soon"],
])
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = alertd(*args, "--url", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 2, result.output
    assert "cannot reach" not in result.output


def test_tls_with_a_self_signed_certificate(serve: Callable[..., Served], tmp_path: Path) -> None:
    served = serve(tls=True)
    assert served.url.startswith("https://127.0.0.1:")
    cert = served.config.parent / "cert.pem"

    result = alertd("alerts", "--url", served.url)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: cannot reach alertd at {served.url} (--url or ALERTD_URL): TLS certificate verification failed")
    assert "--ca FILE" in result.stderr and "--insecure" in result.stderr
    for extra in (["--ca", str(cert)], ["--insecure"]):
        result = alertd("alerts", "--url", served.url, *extra)
        assert result.exit_code == 0 and "QueueBacklog" in result.stdout, result.output

    # From the configuration: https because tls_cert is set, and that certificate is trusted.
    config = client_config(tmp_path, f'listen = "127.0.0.1:{served.port}"\ntoken = "{TOKEN}"\n'
                                     f'tls_cert = "{cert}"\ntls_key = "{cert.parent / "key.pem"}"')
    result = alertd("silence", "add", 'queue="payments"', "-c", str(config))
    assert result.exit_code == 0, result.output

    result = alertd("alerts", "--url", served.url.replace("https:", "http:"))
    assert result.exit_code == 1 and "closed the connection without answering" in result.stderr


def test_client_methods(served: Served) -> None:
    with AlertdClient(served.url, TOKEN) as client:
        firing = client.alerts(["firing"], ['queue="payments"'])
        fingerprint = firing[0]["fingerprint"]
        assert client.find_alert(fingerprint[:5])["fingerprint"] == fingerprint
        detail = client.alert(fingerprint)
        assert [(h["from"], h["to"]) for h in detail["history"]] == [("inactive", "firing")]
        with pytest.raises(ApiError) as caught:
            client.alert("0" * 16)
        assert caught.value.status == 404 and caught.value.message == f"no alert with fingerprint {'0' * 16}"
        with pytest.raises(ApiError) as caught:
            client.add_silence(['queue="x"'], created_by="me")
        assert caught.value.status == 400 and "duration" in caught.value.message
        created = client.add_silence(['queue="x"'], ends_at=firing[0]["fired_at"] + 60, created_by="me")
        assert client.find_silence(created["id"][:4])["id"] == created["id"]
        assert client.expire_silence(created["id"])["status"] == "expired"
        assert [s["id"] for s in client.silences("expired")] == [created["id"]]
        with pytest.raises(ApiError) as caught:
            client.expire_silence("nope")
        assert caught.value.status == 404
