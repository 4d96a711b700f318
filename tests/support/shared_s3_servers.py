"""The test sessions' S3 servers, started once for many pytest sessions.

`make mutation` runs one pytest session per mutant; a moto server per session would cost seconds
each. `running_shared_s3_servers()` starts the two servers the tests use (the plain one and the
one that accepts KiB-sized parts) and yields the environment variables the fixtures read to use
them instead of starting their own. Every test makes its own bucket, so sessions never see each
other's objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from musicgen_local.moto_server import running_s3_server

SHARED_S3_ENDPOINT_ENV = "MUSICGEN_TEST_S3_ENDPOINT"
SHARED_SMALL_PART_S3_ENDPOINT_ENV = "MUSICGEN_TEST_SMALL_PART_S3_ENDPOINT"
# Real S3 (and moto by default) refuses parts under 5 MiB; the tests use KiB-sized parts so that
# multipart uploads, resumes and part copies are exercised on small files.
SMALL_PART_SERVER_ENV = {
    "S3_UPLOAD_PART_MIN_SIZE": "1024",
    "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(16 * 1024 * 1024),
}


@contextmanager
def running_shared_s3_servers() -> Iterator[dict[str, str]]:
    with (
        running_s3_server() as plain,
        running_s3_server(SMALL_PART_SERVER_ENV) as small_part,
    ):
        yield {SHARED_S3_ENDPOINT_ENV: plain, SHARED_SMALL_PART_S3_ENDPOINT_ENV: small_part}
