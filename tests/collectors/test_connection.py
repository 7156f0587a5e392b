"""Broker URL classification, password redaction, and errors of real Redis, RabbitMQ and HTTP servers turned into messages."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from alertd.collectors.connection import (
    AmqpConnection,
    RedisConnection,
    classify_broker_url,
    describe_error,
    display_url,
    scrub,
)
from alertd.errors import CollectorError
from tests.services import RedisServer, free_port


@pytest.mark.parametrize(
    ("url", "kind", "tls", "host", "port", "database", "display"),
    [
        ("redis://127.0.0.1:6379/0", "redis", False, "127.0.0.1", 6379, "0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@redis.internal:6390/2", "redis", False, "redis.internal", 6390, "2", "redis://redis.internal:6390/2"),
        ("redis://localhost", "redis", False, "localhost", 6379, "0", "redis://localhost"),
        ("redis://", "redis", False, "127.0.0.1", 6379, "0", "redis://"),
        ("rediss://app:pw@cache:6380/1?ssl_cert_reqs=required", "redis", True, "cache", 6380, "1",
         "rediss://app@cache:6380/1?ssl_cert_reqs=required"),
        ("redis+socket:///var/run/redis/redis.sock?virtual_host=3", "redis", False, "", None, "/var/run/redis/redis.sock",
         "redis+socket:///var/run/redis/redis.sock?virtual_host=3"),
        ("amqp://guest:guest@localhost:5672//", "amqp", False, "localhost", 5672, "/", "amqp://guest@localhost:5672//"),
        ("amqp://rabbit", "amqp", False, "rabbit", 5672, "/", "amqp://rabbit"),
        ("amqps://u:p@rabbit/prod", "amqp", True, "rabbit", 5671, "prod", "amqps://u@rabbit/prod"),
        ("pyamqp://u:p@rabbit:5673/%2Fstaging", "amqp", False, "rabbit", 5673, "/staging", "pyamqp://u@rabbit:5673/%2Fstaging"),
        ("redis://:a@first:6379/0;redis://:b@second:6379/0", "redis", False, "first", 6379, "0", "redis://first:6379/0"),
    ],
)
def test_broker_urls_are_classified(
    url: str, kind: str, tls: bool, host: str, port: int | None, database: str, display: str
) -> None:
    b = classify_broker_url(url)
    assert (b.kind, b.tls, b.host, b.port, b.database, b.display) == (kind, tls, host, port, database, display)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "unsupported broker URL"),
        ("not a url", "unsupported broker URL"),
        ("http://127.0.0.1:15672/", "unsupported broker URL"),
        ("sqs://key:secret@", "alertd reads Redis and RabbitMQ brokers"),
        ("memory://", "starting redis://, rediss://, redis+socket://, amqp://, amqps://, pyamqp://"),
        ("redis://h:99999/0", "invalid broker URL"),
        ("redis://h/zero", "the Redis database must be a number"),
        ("redis+socket://", "needs a socket path"),
    ],
)
def test_unusable_broker_urls_say_what_is_accepted(url: str, message: str) -> None:
    with pytest.raises(CollectorError) as info:
        classify_broker_url(url)
    assert message in str(info.value)
    assert "secret" not in str(info.value)


def test_the_redis_client_url_keeps_credentials_and_drops_kombu_options() -> None:
    b = classify_broker_url("redis://us%3Aer:p%40ss%2Fw@h:6390/4?ssl_cert_reqs=none&socket_timeout=3")
    assert (b.username, b.password) == ("us:er", "p@ss/w")
    assert b.redis_client_url == "redis://us%3Aer:p%40ss%2Fw@h:6390/4?ssl_cert_reqs=none"
    tls = classify_broker_url("rediss://:pw@h:6380/0?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=/etc/ca.pem")
    assert tls.redis_client_url == "rediss://:pw@h:6380/0?ssl_cert_reqs=required&ssl_ca_certs=%2Fetc%2Fca.pem"
    sock = classify_broker_url("redis+socket://:pw@/tmp/r.sock?virtual_host=2")
    assert sock.redis_client_url == "unix://:pw@/tmp/r.sock?db=2"
    assert sock.display == "redis+socket:///tmp/r.sock?virtual_host=2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@h:6379/0", "redis://h:6379/0"),
        ("amqp://user:hunter2@h//", "amqp://user@h//"),
        ("redis://user@h/0", "redis://user@h/0"),
        ("https://gw.example/metrics?token=hunter2&x=1", "https://gw.example/metrics?token=%2A%2A%2A&x=1"),
        ("http://u:hunter2@[::1]:9091", "http://u@[::1]:9091"),
    ],
)
def test_display_url_never_shows_a_password(url: str, shown: str) -> None:
    assert display_url(url) == shown
    assert "hunter2" not in display_url(url)


def test_no_password_in_reprs_or_scrubbed_text() -> None:
    b = classify_broker_url("redis://:hunter2@h:6379/0")
    assert "hunter2" not in repr(b)
    assert scrub("AUTH hunter2 failed, hunter2%21", "hunter2!", "hunter2") == "AUTH *** failed, ***"


# -- errors of real servers ----------------------------------------------------------------------------------


def redis_error(url: str, timeout: float = 2.0) -> str:
    conn = RedisConnection(classify_broker_url(url), timeout)
    try:
        conn.run(lambda client: client.ping())
    except CollectorError as exc:
        return str(exc)
    finally:
        conn.close()
    raise AssertionError("PING succeeded")


def amqp_error(url: str) -> str:
    conn = AmqpConnection(classify_broker_url(url), 3.0)
    try:
        conn.run(lambda c: c.channel().close())
    except CollectorError as exc:
        return str(exc)
    finally:
        conn.close()
    raise AssertionError("connection succeeded")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.mark.integration
def test_redis_errors_become_messages_a_person_can_act_on(
    password_redis: tuple[RedisServer, str], silent_port: int
) -> None:
    server, password = password_redis
    port = server.port
    wrong = redis_error(f"redis://:not-{password}@127.0.0.1:{port}/0")
    assert wrong.startswith(f"authentication failed for redis://127.0.0.1:{port}/0: check the user name and password")
    missing = redis_error(f"redis://127.0.0.1:{port}/0")
    assert missing == (
        f"authentication failed for redis://127.0.0.1:{port}/0: the server requires a password and the URL has none"
    )
    closed = free_port()
    refused = redis_error(f"redis://:{password}@127.0.0.1:{closed}/0")
    assert refused == f"connection refused by redis://127.0.0.1:{closed}/0: is the server running and listening there?"
    silent = redis_error(f"redis://127.0.0.1:{silent_port}/0", timeout=0.3)
    assert silent == f"no answer from redis://127.0.0.1:{silent_port}/0 within 0.3s"
    unresolved = redis_error("redis://:pw@no-such-host.invalid:6379/0")
    assert unresolved.startswith("cannot resolve the host of redis://no-such-host.invalid:6379/0")
    for text in (wrong, missing, refused, silent, unresolved):
        assert password not in text


@pytest.mark.integration
def test_amqp_errors_become_messages_a_person_can_act_on(rabbitmq_url: str) -> None:
    b = classify_broker_url(rabbitmq_url)
    base = f"{b.host}:{b.port}"
    wrong = amqp_error(f"amqp://{b.username}:wrong-pw-981@{base}//")
    assert wrong.startswith(f"authentication failed for amqp://{b.username}@{base}//")
    assert "wrong-pw-981" not in wrong
    vhost = amqp_error(f"amqp://{b.username}:{b.password}@{base}/alertd-no-such-vhost")
    assert vhost.startswith(f"virtual host 'alertd-no-such-vhost' of amqp://{b.username}@{base}/alertd-no-such-vhost")
    closed = free_port()
    assert amqp_error(f"amqp://u:pw@127.0.0.1:{closed}//") == (
        f"connection refused by amqp://u@127.0.0.1:{closed}//: is the server running and listening there?"
    )


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"upstream exploded"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.integration
async def test_http_errors_become_messages() -> None:
    closed = free_port()
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            await client.get(f"http://127.0.0.1:{closed}/metrics")
        except Exception as exc:
            refused = str(describe_error(exc, f"http://127.0.0.1:{closed}/metrics"))
        assert refused == (
            f"connection refused by http://127.0.0.1:{closed}/metrics: is the server running and listening there?"
        )
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://user:hunter2@127.0.0.1:{server.server_address[1]}/metrics"
            response = await client.get(url)
            with pytest.raises(httpx.HTTPStatusError) as info:
                response.raise_for_status()
            message = str(describe_error(info.value, url))
        finally:
            server.shutdown()
            server.server_close()
    assert message == f"http://user@127.0.0.1:{server.server_address[1]}/metrics answered HTTP 500: upstream exploded"
