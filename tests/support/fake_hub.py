"""A local stand-in for the Hugging Face Hub's file API, served from memory in a thread.

It speaks what the staging runtime uses: `GET /api/models/<id>/revision/<rev>?blobs=true`
(commit sha and `siblings` with sizes, git blob ids and LFS sha256) and
`GET /<id>/resolve/<rev>/<path>` with HTTP Range support. Like the real Hub, LFS downloads are
redirected to another host (a "CDN" on a second port that rejects an Authorization header).
Tests can make it lie about a file, require a token, or drop connections; every request is
recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".msgpack", ".h5", ".model")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    commit: str
    branches: dict[str, str]
    token: str | None = None
    # What the listing claims, when a test wants the Hub to disagree with the bytes it serves.
    listed_sizes: dict[str, int] = field(default_factory=dict)
    listed_sha256: dict[str, str] = field(default_factory=dict)
    # Bytes served instead of the listed file's, for a Hub that corrupts a download.
    served: dict[str, bytes] = field(default_factory=dict)

    def content(self, path: str) -> bytes:
        return self.served.get(path, self.files[path])

    def sibling(self, path: str) -> dict[str, object]:
        content = self.files[path]
        size = self.listed_sizes.get(path, len(content))
        if not path.endswith(LFS_SUFFIXES):
            return {"rfilename": path, "size": size, "blobId": git_blob_id(content)}
        sha256 = self.listed_sha256.get(path, hashlib.sha256(content).hexdigest())
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


class FakeHub:
    """The state behind the server: repositories, recorded requests and injected faults."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[RecordedRequest] = []
        self.url = ""
        self.cdn_url = ""
        self.drop_file_requests_after: int | None = None
        self._file_requests = 0
        self._lock = threading.Lock()

    def add_repo(
        self,
        model_id: str,
        files: Mapping[str, bytes],
        *,
        branches: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> FakeRepo:
        """Publish `files` as one commit of `model_id` (commit = sha1 of the contents)."""
        digest = hashlib.sha1(model_id.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + files[path])
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

    def record(self, path: str, headers: Mapping[str, str]) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(path=path, headers=dict(headers)))

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
            hub.record(urllib.parse.unquote(path), self.headers)
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
            self._send(200, json.dumps(listing).encode(), {"Content-Type": "application/json"})

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

        def _serve(self, content: bytes) -> None:
            if hub.should_drop():
                self.close_connection = True
                self.connection.shutdown(2)
                return
            match = _RANGE.match(self.headers.get("Range", ""))
            if not match:
                self._send(200, content, {})
                return
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else len(content) - 1, len(content) - 1)
            if start >= len(content):
                self._send(416, b"", {"Content-Range": f"bytes */{len(content)}"})
                return
            self._send(
                206,
                content[start : end + 1],
                {"Content-Range": f"bytes {start}-{end}/{len(content)}"},
            )

        def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def running_fake_hub() -> Iterator[FakeHub]:
    """Serve a FakeHub on a free loopback port; LFS redirects go to a second port (the "CDN")."""
    hub = FakeHub()
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(hub)) for _ in range(2)]
    threads = []
    for server in servers:
        server.daemon_threads = True
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
