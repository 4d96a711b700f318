"""An HTTP proxy in front of the S3 server process that fails chosen S3 operations on demand.

Clients talk to the proxy as their S3 endpoint. Each request is named by its S3 operation
(`PutObject`, `UploadPart`, `CompleteMultipartUpload`, ...) from its method, path and query,
counted, and either answered with an injected S3 error or forwarded to the real server.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tests.support.loopback_http import serving_on_loopback

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class S3Fault:
    """Answer `operation` with HTTP `status` and S3 error `code`, `times` times (None: always)."""

    operation: str
    status: int = 500
    code: str = "InternalError"
    times: int | None = 1
    hits: int = 0


class S3FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.url = ""
        self.faults: list[S3Fault] = []
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def inject(
        self,
        operation: str,
        *,
        status: int = 500,
        code: str = "InternalError",
        times: int | None = 1,
    ) -> S3Fault:
        fault = S3Fault(operation, status, code, times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.calls.clear()

    def take(self, operation: str) -> S3Fault | None:
        with self._lock:
            self.calls[operation] += 1
            for fault in self.faults:
                if fault.operation == operation and (
                    fault.times is None or fault.hits < fault.times
                ):
                    fault.hits += 1
                    return fault
        return None


def s3_operation(method: str, path: str, query: Mapping[str, object], has_copy_source: bool) -> str:
    """The S3 API operation of a path-style request."""
    _, _, key = path.lstrip("/").partition("/")
    if not key:
        if method == "GET":
            if "uploads" in query:
                return "ListMultipartUploads"
            return "ListObjectsV2" if "list-type" in query else "ListObjects"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
            method, f"{method} bucket"
        )
    if "uploads" in query and method == "POST":
        return "CreateMultipartUpload"
    if "uploadId" in query:
        return {
            "PUT": "UploadPartCopy" if has_copy_source else "UploadPart",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }.get(method, f"{method} upload")
    if "tagging" in query:
        return {
            "GET": "GetObjectTagging",
            "PUT": "PutObjectTagging",
            "DELETE": "DeleteObjectTagging",
        }.get(method, f"{method} tagging")
    return {
        "PUT": "CopyObject" if has_copy_source else "PutObject",
        "GET": "GetObject",
        "HEAD": "HeadObject",
        "DELETE": "DeleteObject",
    }.get(method, f"{method} object")


def _handler_for(proxy: S3FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

        def do_GET(self) -> None:
            self._handle()

        do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

        def _handle(self) -> None:
            body = self._body()
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
            operation = s3_operation(
                self.command, parts.path, query, "x-amz-copy-source" in self.headers
            )
            fault = proxy.take(operation)
            if fault is not None:
                error = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                    f"<Message>injected by the test proxy into {operation}</Message>"
                    "<RequestId>test-proxy</RequestId></Error>"
                ).encode()
                self._answer(fault.status, {"Content-Type": "application/xml"}, error)
                return
            upstream = http.client.HTTPConnection(
                proxy.upstream.hostname, proxy.upstream.port, timeout=60
            )
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                answer = response.read()
                kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
                length = response.getheader("Content-Length")
                if self.command == "HEAD" and length is not None:
                    kept["Content-Length"] = length
                self._answer(response.status, kept, answer)
            finally:
                upstream.close()

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline().strip():
                    continue
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


@contextmanager
def running_s3_fault_proxy(upstream: str) -> Iterator[S3FaultProxy]:
    """Serve an S3FaultProxy for `upstream` (an S3 endpoint URL) on a free loopback port."""
    proxy = S3FaultProxy(upstream)
    with serving_on_loopback(_handler_for(proxy)) as proxy.url:
        yield proxy
