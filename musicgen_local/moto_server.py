"""A real S3-compatible server process (moto in server mode) on a loopback port.

moto serves every AWS service it emulates on the one port: the loop uses its S3, SNS, SQS and
CloudFormation.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import requests

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_s3_server(settings: Mapping[str, str] | None = None, *, port: int = 0) -> Iterator[str]:
    """Start `moto_server` as its own process; yield its endpoint URL; stop it afterwards.

    `settings` are extra environment variables for the server (moto reads its options there);
    `port` 0 picks a free one. The server has its own session: a Ctrl-C in the terminal reaches
    the process that started it, which stops it, not the server directly.
    """
    port = port or free_port()
    env = {**os.environ, **FAKE_CREDENTIALS, **(settings or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
