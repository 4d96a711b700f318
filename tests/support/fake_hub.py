"""A local stand-in for the Hugging Face Hub's file API, served from memory in a thread.

It speaks what the staging runtime uses: `GET /api/models/<id>/revision/<rev>?blobs=true`
(commit sha and `siblings` with sizes, git blob ids and LFS sha256) and
`GET /<id>/resolve/<rev>/<path>` with HTTP Range support. Like the real Hub, LFS downloads are
redirected to another host (a "CDN" on a second port that rejects an Authorization header).
Tests can make it lie about a file, require a token, or inject a fault into chosen responses
(`Fault`: reset, early close, an error status with Retry-After, a stall, a trickle, an ignored
Range, corrupt bytes); every request is recorded with the time it arrived. For benchmarks, a file
can be generated on the fly (`GeneratedFile`, no GB in memory) and every connection throttled.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".msgpack", ".h5", ".model")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_WRITE_CHUNK = 256 * 1024


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class GeneratedFile:
    """`size` pseudo-random bytes made on demand: 1 MiB blocks, each stamped with its index so
    that any two blocks differ (a reordered download changes the digest)."""

    BLOCK = 1024 * 1024

    STAMP = 8

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self._base = memoryview(random.Random(seed).randbytes(self.BLOCK))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, span: slice) -> bytes:
        start, stop, _ = span.indices(self.size)
        return b"".join(self.chunks(start, stop))

    def chunks(self, start: int, stop: int) -> Iterator[bytes | memoryview]:
        """Bytes `start`..`stop` (exclusive) in pieces that copy nothing but the stamps."""
        position = start
        while position < stop:
            block, offset = divmod(position, self.BLOCK)
            end = min(self.BLOCK, offset + stop - position)
            if offset < self.STAMP:
                piece: bytes | memoryview = block.to_bytes(self.STAMP, "big")[offset:end]
            else:
                piece = self._base[offset:end]
            yield piece
            position += len(piece)

    @cached_property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks(0, self.size):
            digest.update(chunk)
        return digest.hexdigest()


Content = bytes | GeneratedFile


def _sha256(content: Content) -> str:
    if isinstance(content, GeneratedFile):
        return content.sha256
    return hashlib.sha256(content).hexdigest()


@dataclass
class Fault:
    """A misbehaviour of the responses that serve file bytes (or the revision listing).

    `kind`: "reset" (close without answering), "early_close" (the full Content-Length, then only
    half the body), "status" (`status`, with `retry_after` as Retry-After if set), "stall" (half
    the body, then silence for `seconds`), "trickle" (`slice_bytes` every `seconds`),
    "ignore_range" (a 200 with the whole file), "corrupt" (one byte flipped).
    It hits requests whose path contains `path` and, if `start` is set, whose Range starts there;
    `times` requests in all (None: every one).
    """

    kind: str
    path: str = ""
    start: int | None = None
    times: int | None = 1
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    slice_bytes: int = 1024
    hits: int = 0

    def matches(self, path: str, start: int | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return self.path in path and (self.start is None or self.start == start)


@dataclass
class FakeRepo:
    files: dict[str, Content]
    commit: str
    branches: dict[str, str]
    token: str | None = None
    # What the listing claims, when a test wants the Hub to disagree with the bytes it serves.
    listed_sizes: dict[str, int] = field(default_factory=dict)
    listed_sha256: dict[str, str] = field(default_factory=dict)
    # Bytes served instead of the listed file's, for a Hub that corrupts a download.
    served: dict[str, bytes] = field(default_factory=dict)

    def content(self, path: str) -> Content:
        return self.served.get(path, self.files[path])

    def sibling(self, path: str) -> dict[str, object]:
        content = self.files[path]
        size = self.listed_sizes.get(path, len(content))
        if not path.endswith(LFS_SUFFIXES):
            assert isinstance(content, bytes), f"{path}: only LFS files can be generated"
            return {"rfilename": path, "size": size, "blobId": git_blob_id(content)}
        sha256 = self.listed_sha256.get(path, _sha256(content))
        return {
            "rfilename": path,
            "size": size,
            "blobId": hashlib.sha1(path.encode()).hexdigest(),
            "lfs": {"sha256": sha256, "size": size, "pointerSize": 134},
        }


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: Mapping[str, str]
    at: float = 0.0  # time.monotonic() when it arrived
    connection: int = 0  # the client's port: requests on one kept-alive connection share it


class FakeHub:
    """The state behind the server: repositories, recorded requests and injected faults."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[RecordedRequest] = []
        self.url = ""
        self.cdn_url = ""
        self.drop_file_requests_after: int | None = None
        self.faults: list[Fault] = []
        # Per-connection throttle of response bodies, like one CDN connection's bandwidth.
        self.bytes_per_second: float | None = None
        self._file_requests = 0
        self._lock = threading.Lock()

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, path: str, start: int | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(path, start):
                    fault.hits += 1
                    return fault
        return None

    def add_repo(
        self,
        model_id: str,
        files: Mapping[str, Content],
        *,
        branches: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> FakeRepo:
        """Publish `files` as one commit of `model_id` (commit = sha1 of the contents)."""
        digest = hashlib.sha1(model_id.encode())
        for path in sorted(files):
            content = files[path]
            digest.update(path.encode() + b"\0")
            digest.update(
                _sha256(content).encode() if isinstance(content, GeneratedFile) else content
            )
        commit = digest.hexdigest()
        repo = FakeRepo(
            files=dict(files),
            commit=commit,
            branches={"main": commit, **(branches or {})},
            token=token,
        )
        self.repos[model_id] = repo
        return repo

    def file_requests(self, model_id: str | None = None) -> list[RecordedRequest]:
        """Requests for file bytes (resolve and CDN), optionally of one model only."""
        return [
            request
            for request in self.requests
            if ("/resolve/" in request.path or request.path.startswith("/cdn/"))
            and (model_id is None or f"/{model_id}/" in request.path)
        ]

    def record(self, path: str, headers: Mapping[str, str], connection: int) -> None:
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    path=path, headers=dict(headers), at=time.monotonic(), connection=connection
                )
            )

    def should_drop(self) -> bool:
        with self._lock:
            self._file_requests += 1
            limit = self.drop_file_requests_after
            return limit is not None and self._file_requests > limit


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            hub.record(urllib.parse.unquote(path), self.headers, self.client_address[1])
            parts = [urllib.parse.unquote(part) for part in path.strip("/").split("/")]
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
                self._revision("/".join(parts[2:4]), "/".join(parts[5:]))
            elif len(parts) >= 5 and parts[2] == "resolve":
                self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
            elif parts[0] == "cdn" and len(parts) >= 5:
                self._cdn("/".join(parts[1:3]), parts[3], "/".join(parts[4:]))
            else:
                self._send(404, b"no such route", {"X-Error-Code": "EntryNotFound"})

        def _repo(self, model_id: str) -> FakeRepo | None:
            repo = hub.repos.get(model_id)
            if repo is None:
                self._send(404, b"Repository not found", {"X-Error-Code": "RepoNotFound"})
                return None
            if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
                self._send(
                    401, b"Access to this model is restricted", {"X-Error-Code": "GatedRepo"}
                )
                return None
            return repo

        def _commit(self, repo: FakeRepo, revision: str) -> str | None:
            commit = repo.branches.get(revision, revision if revision == repo.commit else None)
            if commit is None:
                self._send(404, b"Revision Not Found", {"X-Error-Code": "RevisionNotFound"})
            return commit

        def _revision(self, model_id: str, revision: str) -> None:
            repo = self._repo(model_id)
            if repo is None or (commit := self._commit(repo, revision)) is None:
                return
            listing = {
                "id": model_id,
                "sha": commit,
                "siblings": [repo.sibling(path) for path in sorted(repo.files)],
            }
            body = json.dumps(listing).encode()
            fault = hub.take_fault(urllib.parse.unquote(self.path), None)
            if fault is None or not self._refuse(fault):
                self._send(200, body, {"Content-Type": "application/json"}, fault=fault)

        def _resolve(self, model_id: str, revision: str, file_path: str) -> None:
            repo = self._repo(model_id)
            if repo is None or (commit := self._commit(repo, revision)) is None:
                return
            if file_path not in repo.files:
                self._send(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
            elif file_path.endswith(LFS_SUFFIXES):
                location = f"{hub.cdn_url}/cdn/{model_id}/{commit}/{urllib.parse.quote(file_path)}"
                self._send(302, b"", {"Location": location})
            else:
                self._serve(repo.content(file_path))

        def _cdn(self, model_id: str, commit: str, file_path: str) -> None:
            if "Authorization" in self.headers:
                self._send(400, b"Only one auth mechanism allowed", {})
                return
            repo = hub.repos.get(model_id)
            if repo is None or repo.commit != commit or file_path not in repo.files:
                self._send(404, b"NoSuchKey", {})
                return
            self._serve(repo.content(file_path))

        def _serve(self, content: Content) -> None:
            if hub.should_drop():
                self._reset()
                return
            match = _RANGE.match(self.headers.get("Range", ""))
            start = int(match.group(1)) if match else None
            fault = hub.take_fault(urllib.parse.unquote(self.path), start)
            if fault is not None and self._refuse(fault):
                return
            if match is None or (fault is not None and fault.kind == "ignore_range"):
                self._send(200, content, {}, fault=fault)
                return
            first = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else len(content) - 1, len(content) - 1)
            if first >= len(content):
                self._send(416, b"", {"Content-Range": f"bytes */{len(content)}"})
                return
            self._send(
                206,
                content,
                {"Content-Range": f"bytes {first}-{end}/{len(content)}"},
                span=(first, end + 1),
                fault=fault,
            )

        def _reset(self) -> None:
            self.close_connection = True
            self.connection.shutdown(2)

        def _refuse(self, fault: Fault) -> bool:
            """Answer with the fault instead of the content; False if the fault is in the body."""
            if fault.kind == "reset":
                self._reset()
                return True
            if fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._send(fault.status, b"injected failure", headers)
                return True
            return False

        def _send(
            self,
            status: int,
            content: Content,
            headers: Mapping[str, str],
            *,
            span: tuple[int, int] | None = None,
            fault: Fault | None = None,
        ) -> None:
            start, stop = span or (0, len(content))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(stop - start))
            self.end_headers()
            kind = fault.kind if fault else None
            if kind in ("early_close", "stall"):
                stop = start + (stop - start) // 2
            sent = 0
            began = time.monotonic()
            for chunk in self._chunks(content, start, stop, fault):
                sent += len(chunk)
                if fault is not None and kind == "trickle":
                    time.sleep(fault.seconds)
                elif hub.bytes_per_second:
                    # Each chunk leaves when the rate allows it: the body ends on time.
                    time.sleep(max(0.0, began + sent / hub.bytes_per_second - time.monotonic()))
                self.wfile.write(chunk)
            if fault is not None and kind == "stall":
                self.wfile.flush()
                time.sleep(fault.seconds)
            if kind in ("early_close", "stall"):
                self.wfile.flush()
                self._reset()

        def _chunks(
            self, content: Content, start: int, stop: int, fault: Fault | None
        ) -> Iterator[bytes | memoryview]:
            if isinstance(content, GeneratedFile) and fault is None:
                yield from content.chunks(start, stop)
                return
            size = fault.slice_bytes if fault and fault.kind == "trickle" else _WRITE_CHUNK
            for position in range(start, stop, size):
                chunk = content[position : min(position + size, stop)]
                if fault is not None and fault.kind == "corrupt" and position == start:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                yield chunk

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gives up on a slow answer closes its end: not worth a traceback."""


@contextmanager
def running_fake_hub() -> Iterator[FakeHub]:
    """Serve a FakeHub on a free loopback port; LFS redirects go to a second port (the "CDN")."""
    hub = FakeHub()
    servers = [_QuietServer(("127.0.0.1", 0), _handler_for(hub)) for _ in range(2)]
    threads = []
    for server in servers:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        threads.append(thread)
    hub.url, hub.cdn_url = (f"http://127.0.0.1:{server.server_address[1]}" for server in servers)
    try:
        yield hub
    finally:
        for server, thread in zip(servers, threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
