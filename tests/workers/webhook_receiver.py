"""A local HTTP(S) endpoint for the webhook tests: it answers ``status`` and keeps what it
received, so a test can show that a request arrived (signed, with its Host header) or that
none did."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Receiver:
    url: str = ""
    port: int = 0
    status: int = 204
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def serve(tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> Iterator[Receiver]:
    """A receiver on ``host`` (an ephemeral port); HTTPS with ``tls``, a server context."""
    received = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.requests.append((dict(self.headers), body))
            self.send_response(received.status)
            if received.status in (301, 302):
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.port = int(server.server_address[1])
    received.url = f"{'https' if tls else 'http'}://{host}:{received.port}/hook"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
