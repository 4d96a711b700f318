"""A small Hugging Face Hub client: revision info and ranged file downloads (stdlib only)."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from .selection import HubFile

DEFAULT_ENDPOINT = "https://huggingface.co"
USER_AGENT = "musicgen-sagemaker-model-staging/1.0 (python-urllib)"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class HubError(RuntimeError):
    """The Hub refused or failed a request; the message says what was asked and why it failed."""


class RevisionNotFoundError(HubError):
    """The model or the revision does not exist (or is not visible with the given token)."""


class _DropAuthorizationOnHostChange(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send the Hub token to another host.

    The Hub redirects LFS downloads to a pre-signed CDN URL; forwarding `Authorization` there leaks
    the token and makes the CDN reject the request.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new_request = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new_request is not None:
            old_host = urllib.parse.urlsplit(req.full_url).netloc
            if urllib.parse.urlsplit(new_request.full_url).netloc != old_host:
                new_request.remove_header("Authorization")
        return new_request


@dataclass(frozen=True)
class RevisionInfo:
    model_id: str
    revision: str
    commit: str
    files: tuple[HubFile, ...]


class HubClient:
    """Talks to `HF_ENDPOINT` (default huggingface.co), optionally with a Bearer token."""

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        attempts: int = 4,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self._token = token
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._timeout_seconds = timeout_seconds
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_DropAuthorizationOnHostChange())

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
    ) -> bytes:
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
    ) -> bytes:
        headers = {**headers, "User-Agent": USER_AGENT}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        last_error = ""
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self._backoff_seconds * 2 ** (attempt - 1))
            request = urllib.request.Request(url, headers=headers)
            try:
                with self._opener.open(request, timeout=self._timeout_seconds) as response:
                    if span is None:
                        return response.read()
                    return _read_span(what, response, span)
            except urllib.error.HTTPError as error:
                if error.code in (401, 403, 404):
                    raise _refusal(what, error) from None
                if error.code == 416:
                    raise HubError(
                        f"{what}: size mismatch: the file is shorter on the Hub"
                    ) from None
                if error.code not in _RETRYABLE_STATUS:
                    raise HubError(f"{what}: HTTP {error.code} {error.reason}") from None
                last_error = f"HTTP {error.code} {error.reason}"
            except (urllib.error.URLError, HTTPException, OSError) as error:
                last_error = f"{type(error).__name__}: {error}"
        raise HubError(f"{what}: failed after {self._attempts} attempts ({last_error})")


def _quote_repo(model_id: str) -> str:
    return urllib.parse.quote(model_id, safe="/")


def _refusal(what: str, error: urllib.error.HTTPError) -> HubError:
    code = (error.headers.get("X-Error-Code") if error.headers else None) or ""
    status = f"HTTP {error.code} {code}".strip()
    if error.code == 404:
        return RevisionNotFoundError(
            f"{what}: not found on the Hub ({status}); check the model id and that the revision "
            "is an existing branch, tag or commit"
        )
    return RevisionNotFoundError(
        f"{what}: access refused by the Hub ({status}); the model may be gated or private: give a "
        "token secret whose account has accepted the model's terms"
    )


def _read_span(what: str, response: Any, span: tuple[int, int, int]) -> bytes:
    """Read the asked-for range, checking it against the headers before reading a byte."""
    start, end, file_size = span
    expected = end - start + 1 if file_size else 0
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
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
    body = response.read(expected + 1)
    if len(body) != expected:
        raise HubError(f"{what}: size mismatch: received {len(body)} bytes instead of {expected}")
    return body
