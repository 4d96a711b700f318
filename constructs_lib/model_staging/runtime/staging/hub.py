"""A small Hugging Face Hub client: revision info and ranged file downloads (stdlib only).

Every request, retries included, is bounded in time: by the run's deadline, by a limit per
attempt (a trickling server), and by a limit on silence (a stalling server). Connections are kept
alive and reused, by any thread, so parallel part downloads do not pay a TLS handshake each.
Proxies named by `https_proxy` / `http_proxy` (and `no_proxy`) are used through CONNECT tunnels.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import os
import re
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .budget import Budget, Unlimited
from .selection import HubFile

DEFAULT_ENDPOINT = "https://huggingface.co"
USER_AGENT = "musicgen-sagemaker-model-staging/1.1 (python http.client)"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
# A revision listing of a large repository is a few MB; anything far larger is not a listing.
_MAX_LISTING_BYTES = 64 * 1024 * 1024
# Error and redirect bodies are drained (to reuse the connection) only when this small.
_MAX_DRAIN_BYTES = 64 * 1024
_READ_CHUNK = 1024 * 1024


class HubError(RuntimeError):
    """The Hub refused or failed a request; the message says what was asked and why it failed."""


class RevisionNotFoundError(HubError):
    """The model or the revision does not exist (or is not visible with the given token)."""


class HubDeadlineError(HubError):
    """The run's deadline came before the request could finish; what is staged so far is kept."""


class _Retryable(Exception):
    """One attempt failed in a way worth another try (after `retry_after` seconds if given)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RevisionInfo:
    model_id: str
    revision: str
    commit: str
    files: tuple[HubFile, ...]


class _AttemptClock:
    """When one attempt must end: its own limit or the run's deadline, whichever comes first."""

    def __init__(self, attempt_seconds: float, deadline: Budget, stall_seconds: float) -> None:
        left = deadline.remaining()
        self.deadline_bound = left <= attempt_seconds
        self.limit = min(attempt_seconds, left)
        self.stall_seconds = stall_seconds
        self._end = time.monotonic() + self.limit

    def socket_timeout(self) -> float:
        """How long the next socket operation may block; raises when no time is left."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("attempt time is up")
        return min(self.stall_seconds, left)

    def expired(self) -> bool:
        return time.monotonic() >= self._end - 0.01


class _Connections:
    """Idle keep-alive connections by (scheme, host, port), shared by all threads."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()

    def take(
        self, key: tuple[str, str, int], timeout: float
    ) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (and True) or a new one (and False)."""
        with self._lock:
            idle = self._idle.get(key)
            connection = idle.pop() if idle else None
        if connection is not None:
            return connection, True
        scheme, host, port = key
        proxy = _proxy_for(scheme, f"{host}:{port}")
        address = (proxy.hostname or "", proxy.port or 80) if proxy else (host, port)
        connection = (
            http.client.HTTPSConnection(*address, timeout=timeout, context=self._tls)
            if scheme == "https"
            else http.client.HTTPConnection(*address, timeout=timeout)
        )
        if proxy:
            headers = {}
            if proxy.username:
                user = urllib.parse.unquote(proxy.username)
                password = urllib.parse.unquote(proxy.password or "")
                token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
                headers["Proxy-Authorization"] = f"Basic {token}"
            connection.set_tunnel(host, port, headers=headers)
        return connection, False

    def give_back(self, key: tuple[str, str, int], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


class HubClient:
    """Talks to `HF_ENDPOINT` (default huggingface.co), optionally with a Bearer token.

    `deadline` bounds every request including its retries and waits; `attempt_seconds` bounds
    one attempt (a server trickling bytes); `stall_seconds` bounds silence (a stalled server).
    A request cut short by the deadline raises HubDeadlineError.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        deadline: Budget | None = None,
        attempts: int = 4,
        backoff_seconds: float = 1.0,
        stall_seconds: float = 30.0,
        attempt_seconds: float = 300.0,
        max_retry_after_seconds: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self._token = token
        self._deadline = deadline or Unlimited()
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._stall_seconds = stall_seconds
        self._attempt_seconds = attempt_seconds
        self._max_retry_after_seconds = max_retry_after_seconds
        self._sleep = sleep
        self._connections = _Connections()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the idle connections (a client stays usable; it reconnects when needed)."""
        self._connections.close()

    def revision_info(self, model_id: str, revision: str) -> RevisionInfo:
        """Resolve `revision` (branch, tag or commit) to its commit and list its files."""
        url = (
            f"{self.endpoint}/api/models/{_quote_repo(model_id)}/revision/"
            f"{urllib.parse.quote(revision, safe='')}?blobs=true"
        )
        what = f"model {model_id} at revision {revision}"
        body = self._request(url, what=what, headers={"Accept": "application/json"})
        try:
            info: Any = json.loads(body)
        except ValueError as error:
            raise HubError(f"{what}: the Hub answered with invalid JSON: {error}") from None
        commit = info.get("sha") if isinstance(info, dict) else None
        if not isinstance(commit, str) or not _COMMIT.match(commit):
            raise HubError(f"{what}: the Hub answer has no 40-hex commit sha (got {commit!r})")
        siblings = info.get("siblings")
        if not isinstance(siblings, list):
            raise HubError(f"{what}: the Hub answer has no file list (siblings)")
        files = tuple(HubFile.from_sibling(sibling) for sibling in siblings)
        return RevisionInfo(model_id=model_id, revision=revision, commit=commit, files=files)

    def download(
        self, model_id: str, commit: str, path: str, *, start: int, end: int, file_size: int
    ) -> bytes | bytearray:
        """Bytes `start`..`end` (inclusive) of `path`, a file of `file_size` bytes.

        Raises HubError when the Hub serves another range or another total size than expected.
        """
        url = (
            f"{self.endpoint}/{_quote_repo(model_id)}/resolve/{commit}/"
            f"{urllib.parse.quote(path, safe='/')}"
        )
        what = f"{model_id}@{commit}: {path} bytes {start}-{end}"
        headers = {"Range": f"bytes={start}-{end}"} if file_size else {}
        return self._request(url, what=what, headers=headers, span=(start, end, file_size))

    def _request(
        self,
        url: str,
        *,
        what: str,
        headers: dict[str, str],
        span: tuple[int, int, int] | None = None,
    ) -> bytes | bytearray:
        headers = {**headers, "User-Agent": USER_AGENT}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        last_error = ""
        for attempt in range(1, self._attempts + 1):
            if self._deadline.remaining() <= 0:
                raise HubDeadlineError(
                    f"{what}: out of time: the run's deadline passed"
                    + (f" (after {attempt - 1} attempts: {last_error})" if last_error else "")
                )
            try:
                return self._attempt(url, what=what, headers=headers, span=span)
            except _Retryable as error:
                last_error = str(error)
                if attempt < self._attempts:
                    self._wait_before_retry(what, attempt, error)
        raise HubError(f"{what}: failed after {self._attempts} attempts ({last_error})")

    def _wait_before_retry(self, what: str, attempt: int, error: _Retryable) -> None:
        """Back off exponentially, or as long as the server's Retry-After asks, if time allows."""
        delay = error.retry_after
        if delay is None:
            delay = self._backoff_seconds * 2 ** (attempt - 1)
        left = self._deadline.remaining()
        if delay >= left:
            raise HubDeadlineError(
                f"{what}: out of time: a retry in {delay:.0f} s would pass the run's deadline "
                f"({left:.0f} s left, after {attempt} attempts: {error})"
            )
        if delay > self._max_retry_after_seconds:
            raise HubError(
                f"{what}: the Hub asked to retry after {delay:.0f} s, more than the "
                f"{self._max_retry_after_seconds:.0f} s this client waits ({error})"
            )
        self._sleep(delay)

    def _attempt(
        self, url: str, *, what: str, headers: dict[str, str], span: tuple[int, int, int] | None
    ) -> bytes | bytearray:
        clock = _AttemptClock(self._attempt_seconds, self._deadline, self._stall_seconds)
        headers = dict(headers)
        for _ in range(_MAX_REDIRECTS + 1):
            key, connection, response = self._send(url, what, headers, clock)
            failure: Exception | None = None
            location: str | None = None
            body: bytes | bytearray = b""
            try:
                if response.status in _REDIRECT_STATUS:
                    location = response.getheader("Location") or ""
                elif response.status >= 400:
                    failure = _failure(what, response)
                elif span is None:
                    body = _read_all(response, connection, clock)
                else:
                    body = _read_span(what, response, connection, clock, span)
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise self._transport_failure(what, clock, error) from None
            except BaseException:
                connection.close()
                raise
            self._finish(key, connection, response, drain=location is not None or bool(failure))
            if failure is not None:
                raise failure
            if location is None:
                return body
            new_url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(new_url).netloc != urllib.parse.urlsplit(url).netloc:
                # A pre-signed CDN URL: the token must not leak there (and is refused there).
                headers.pop("Authorization", None)
            url = new_url
        raise HubError(f"{what}: more than {_MAX_REDIRECTS} redirects")

    def _send(
        self, url: str, what: str, headers: dict[str, str], clock: _AttemptClock
    ) -> tuple[tuple[str, str, int], http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a GET; a kept-alive connection the server has meanwhile closed is replaced once."""
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme or "https"
        key = (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        while True:
            try:
                timeout = clock.socket_timeout()
            except TimeoutError as error:
                raise self._transport_failure(what, clock, error) from None
            connection, reused = self._connections.take(key, timeout)
            try:
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                connection.request("GET", target, headers=headers)
                return key, connection, connection.getresponse()
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
            ) as error:
                connection.close()
                if not reused:
                    raise self._transport_failure(what, clock, error) from None
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise self._transport_failure(what, clock, error) from None

    def _transport_failure(
        self, what: str, clock: _AttemptClock, error: BaseException
    ) -> Exception:
        if clock.expired():
            if clock.deadline_bound:
                return HubDeadlineError(
                    f"{what}: out of time: the run's deadline came during the request ({error})"
                )
            return _Retryable(f"the attempt took longer than {clock.limit:.0f} s")
        if isinstance(error, TimeoutError):
            return _Retryable(f"no data from the Hub for {clock.stall_seconds:.0f} s")
        return _Retryable(f"{type(error).__name__}: {error}")

    def _finish(
        self,
        key: tuple[str, str, int],
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        *,
        drain: bool,
    ) -> None:
        """Keep the connection for the next request when its response was read to the end."""
        if drain:
            if response.length is None or response.length > _MAX_DRAIN_BYTES:
                connection.close()
                return
            try:
                response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                return
        response.close()
        if response.will_close:
            connection.close()
        else:
            self._connections.give_back(key, connection)


def _proxy_for(scheme: str, netloc: str) -> urllib.parse.SplitResult | None:
    """The proxy the environment names for `scheme`, unless `no_proxy` exempts `netloc`."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(netloc):
        return None
    return urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")


def _quote_repo(model_id: str) -> str:
    return urllib.parse.quote(model_id, safe="/")


def _failure(what: str, response: http.client.HTTPResponse) -> Exception:
    status = response.status
    if status in (401, 403, 404):
        return _refusal(what, status, response.getheader("X-Error-Code") or "")
    if status == 416:
        return HubError(f"{what}: size mismatch: the file is shorter on the Hub")
    reason = f"HTTP {status} {response.reason}"
    if status in _RETRYABLE_STATUS:
        return _Retryable(reason, retry_after=_retry_after(response.getheader("Retry-After")))
    return HubError(f"{what}: {reason}")


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), if valid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _refusal(what: str, code: int, error_code: str) -> HubError:
    status = f"HTTP {code} {error_code}".strip()
    if code == 404:
        return RevisionNotFoundError(
            f"{what}: not found on the Hub ({status}); check the model id and that the revision "
            "is an existing branch, tag or commit"
        )
    return RevisionNotFoundError(
        f"{what}: access refused by the Hub ({status}); the model may be gated or private: give a "
        "token secret whose account has accepted the model's terms"
    )


def _read_exactly(
    response: http.client.HTTPResponse,
    connection: http.client.HTTPConnection,
    clock: _AttemptClock,
    length: int,
) -> bytearray:
    """`length` bytes, one socket read at a time so that silence and slowness are both bounded.

    A body that ends early (the server closed the connection) is retryable, like a reset.
    """
    buffer = bytearray(length)
    view = memoryview(buffer)
    received = 0
    while received < length:
        if connection.sock is not None:
            connection.sock.settimeout(clock.socket_timeout())
        chunk = response.read1(min(_READ_CHUNK, length - received))
        if not chunk:
            raise _Retryable(f"the connection closed after {received} of {length} bytes")
        view[received : received + len(chunk)] = chunk
        received += len(chunk)
    return buffer


def _read_all(
    response: http.client.HTTPResponse,
    connection: http.client.HTTPConnection,
    clock: _AttemptClock,
) -> bytes:
    if response.length is not None:
        if response.length > _MAX_LISTING_BYTES:
            raise HubError(f"answer of {response.length} bytes exceeds {_MAX_LISTING_BYTES}")
        return bytes(_read_exactly(response, connection, clock, response.length))
    chunks: list[bytes] = []
    size = 0
    while True:
        if connection.sock is not None:
            connection.sock.settimeout(clock.socket_timeout())
        chunk = response.read1(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > _MAX_LISTING_BYTES:
            raise HubError(f"answer exceeds {_MAX_LISTING_BYTES} bytes")
        chunks.append(chunk)


def _read_span(
    what: str,
    response: http.client.HTTPResponse,
    connection: http.client.HTTPConnection,
    clock: _AttemptClock,
    span: tuple[int, int, int],
) -> bytearray:
    """Read the asked-for range, checking it against the headers before reading a byte."""
    start, end, file_size = span
    expected = end - start + 1 if file_size else 0
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.getheader("Content-Range", ""))
        if not match:
            raise HubError(f"{what}: partial answer without a valid Content-Range header")
        got_start, got_end, total = match.groups()
        if total != "*" and int(total) != file_size:
            raise HubError(
                f"{what}: size mismatch: the file is {total} bytes on the Hub, "
                f"its listing says {file_size}"
            )
        if (int(got_start), int(got_end)) != (start, end):
            raise HubError(f"{what}: the Hub served bytes {got_start}-{got_end} instead")
    elif start != 0 or expected != file_size:
        raise HubError(f"{what}: the Hub ignored the Range header (HTTP {response.status})")
    if response.length is not None and response.length != expected:
        raise HubError(
            f"{what}: size mismatch: the Hub sends {response.length} bytes instead of {expected}"
        )
    body = _read_exactly(response, connection, clock, expected)
    if response.length is None and response.read1(1):
        raise HubError(f"{what}: size mismatch: the Hub sends more than {expected} bytes")
    return body
