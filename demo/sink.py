"""A tiny webhook receiver for the demo: it takes the webhook notifier's POSTs (Alertmanager's payload, version
"4") and reports each on stdout as one JSON line, stamped with the time it arrived.

    python -m demo.sink [--host 127.0.0.1] [--port 0]

The first line names the address it listens on: ``{"listening": "http://127.0.0.1:PORT/alerts"}``; then one
``{"received_at": <epoch seconds>, "path": "/alerts", "payload": {...}}`` line per notification. Its own log
goes to stderr. It answers 200 to a JSON body and 400 to anything else; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_out = threading.Lock()


def emit(record: dict[str, Any]) -> None:
    with _out:
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
        sys.stdout.flush()


class SinkHandler(BaseHTTPRequestHandler):
    server_version = "alertd-demo-sink"

    def do_POST(self) -> None:
        received_at = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except ValueError:
            self._answer(400, {"error": "the body is not JSON"})
            return
        emit({"received_at": received_at, "path": self.path, "payload": payload})
        self._answer(200, {"status": "received"})

    def do_GET(self) -> None:
        self._answer(200, {"status": "ok", "usage": "POST Alertmanager webhook payloads here"})

    def _answer(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (the first line says which)")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), SinkHandler)
    server.daemon_threads = True

    def stop(signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever() to return: call it from another thread than the one serving.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    emit({"listening": f"http://{args.host}:{server.server_address[1]}/alerts"})
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
