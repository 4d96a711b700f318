"""A loopback HTTP server that answers every request with one canned response, and counts them.

It plays a broken or foreign endpoint (an HTML 404, an empty 404, an AWS error document) for the
CLI's error handling; nothing here pretends to be a working AWS service.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class CannedResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/html"
    requests: list[str] = field(default_factory=list)


@contextmanager
def serving(response: CannedResponse) -> Iterator[str]:
    """Yield the server's URL while it answers everything with `response`."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            response.requests.append(f"{self.command} {self.path}")
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
