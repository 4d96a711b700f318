"""The test sessions' S3 servers, started once for many pytest sessions.

`make mutation` runs one pytest session per mutant; a moto server per session would cost seconds
each. This module starts the two servers the tests use (the plain one and the one that accepts
KiB-sized parts) and runs a command with their URLs in the variables the fixtures read:

    python -m tests.support.shared_s3_servers mutmut run --max-children 1

Every test makes its own bucket, so sessions never see each other's objects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from musicgen_local.moto_server import running_s3_server

SHARED_S3_ENDPOINT_ENV = "MUSICGEN_TEST_S3_ENDPOINT"
SHARED_SMALL_PART_S3_ENDPOINT_ENV = "MUSICGEN_TEST_SMALL_PART_S3_ENDPOINT"
# Real S3 (and moto by default) refuses parts under 5 MiB; the tests use KiB-sized parts so that
# multipart uploads, resumes and part copies are exercised on small files.
SMALL_PART_SERVER_ENV = {
    "S3_UPLOAD_PART_MIN_SIZE": "1024",
    "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(16 * 1024 * 1024),
}


def main(command: Sequence[str]) -> int:
    if not command:
        raise SystemExit("usage: python -m tests.support.shared_s3_servers COMMAND [ARG ...]")
    with (
        running_s3_server() as plain,
        running_s3_server(SMALL_PART_SERVER_ENV) as small_part,
    ):
        environment = {
            **os.environ,
            SHARED_S3_ENDPOINT_ENV: plain,
            SHARED_SMALL_PART_S3_ENDPOINT_ENV: small_part,
        }
        return subprocess.run(list(command), env=environment, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
