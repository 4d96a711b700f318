"""A forward proxy that only tunnels (HTTP CONNECT), like a corporate egress proxy; it records
each tunnel's target and the Proxy-Authorization it was given."""

from __future__ import annotations

import selectors
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.support.loopback_http import serving_on_loopback


@dataclass
class ConnectProxy:
    url: str = ""
    tunnels: list[tuple[str, str | None]] = field(default_factory=list)


def _handler_for(proxy: ConnectProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

        def do_CONNECT(self) -> None:
            proxy.tunnels.append((self.path, self.headers.get("Proxy-Authorization")))
            host, _, port = self.path.rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=30)
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True
            with upstream, selectors.DefaultSelector() as selector:
                selector.register(self.connection, selectors.EVENT_READ, upstream)
                selector.register(upstream, selectors.EVENT_READ, self.connection)
                while True:
                    for key, _ in selector.select(timeout=30):
                        data = key.fileobj.recv(1 << 16)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)

        def do_GET(self) -> None:
            self.send_response(405, "this proxy only tunnels")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def running_connect_proxy() -> Iterator[ConnectProxy]:
    proxy = ConnectProxy()
    with serving_on_loopback(_handler_for(proxy)) as proxy.url:
        yield proxy
