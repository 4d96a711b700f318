"""`make local` / `python -m musicgen_local`: run the local loop until Ctrl-C.

Prints the variables a shell exports to point any AWS SDK, the AWS CLI or `musicgen` at it, then
waits. Ctrl-C (SIGINT) or SIGTERM stops every process it started: the model server's Java
frontend and workers, moto's server and the emulator.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from musicgen_local.code_package import assemble_model_dir, install_inference_code
from musicgen_local.loop import DEFAULT_MAX_DURATION_SECONDS, LocalEndpoint, running_local_loop
from musicgen_local.model_server import ModelServerError

DEFAULT_ENV_NAME = "local"
DEFAULT_AWS_PORT = 4566
DEFAULT_SAGEMAKER_PORT = 4567
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
ENV_NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,31}")
READY_LINE = "# Ready: Ctrl-C stops the local loop."
# A checkpoint the size of musicgen-large takes minutes to load on a CPU.
STARTUP_TIMEOUT_SECONDS = 900


class _Stop(Exception):
    """SIGINT or SIGTERM arrived: unwind, so that every context manager stops its part."""


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (got {value!r})") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 (any free port) to 65535 (got {port})")
    return port


def _env_name(value: str) -> str:
    # It names the stack (MusicGen-<env>), the endpoint and the bucket (lower case, <= 63).
    if not ENV_NAME_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(
            "must be 1-32 lower-case letters, digits or '-', starting with a letter "
            f"(got {value!r})"
        )
    return value


def _duration(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {value!r})") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 3600 (got {value})")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m musicgen_local",
        description=(
            "Run the MusicGen async endpoint on this machine (moto for S3/SNS/SQS/CloudFormation, "
            "the inference container's model server, an async SageMaker emulator) until Ctrl-C."
        ),
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="a MusicGen checkpoint folder (config.json, weights, processor files), e.g. one "
        "staged with `python -m constructs_lib.model_staging stage --local-dir`; "
        "default: a tiny random MusicGen built in seconds",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_AWS_PORT,
        help=f"port of S3, SNS, SQS and CloudFormation (default {DEFAULT_AWS_PORT}; 0: any)",
    )
    parser.add_argument(
        "--sagemaker-port",
        type=_port,
        default=DEFAULT_SAGEMAKER_PORT,
        help=f"port of SageMaker and SageMaker Runtime (default {DEFAULT_SAGEMAKER_PORT}; 0: any)",
    )
    parser.add_argument(
        "--env",
        type=_env_name,
        default=DEFAULT_ENV_NAME,
        help=f"environment name: the stack is MusicGen-<env> (default {DEFAULT_ENV_NAME})",
    )
    parser.add_argument(
        "--max-duration",
        type=_duration,
        default=DEFAULT_MAX_DURATION_SECONDS,
        help=f"the endpoint's longest clip, seconds (default {DEFAULT_MAX_DURATION_SECONDS:g})",
    )
    return parser


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    # A second Ctrl-C while the parts stop must not cut their clean-up short.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def _require_free(port: int, option: str) -> None:
    if port == 0:
        return
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ValueError(
                f"{option}: port {port} is in use (choose another, or 0 for any free port)"
            ) from None


def _model_dir(args: argparse.Namespace, scratch: Path) -> Path:
    if args.model_dir is not None:
        return assemble_model_dir(args.model_dir, scratch / "model")
    # torch and transformers load only for the tiny model, which a checkpoint does not need.
    import transformers

    from musicgen_local.tiny_musicgen import build_tiny_musicgen

    # Building a model from sub-configs logs each config in full: noise in the user's terminal.
    transformers.logging.set_verbosity_error()
    model_dir = build_tiny_musicgen(scratch / "model", variant="mono")
    install_inference_code(model_dir)
    return model_dir


def _announce(endpoint: LocalEndpoint, environment: dict[str, str], started: float) -> None:
    print(
        f"# MusicGen local loop up in {time.monotonic() - started:.0f} s: stack "
        f"{endpoint.stack_name}, endpoint {endpoint.endpoint_name}, bucket {endpoint.bucket}"
    )
    names = {
        "MUSICGEN_STACK_NAME": endpoint.stack_name,
        "MUSICGEN_ENDPOINT_NAME": endpoint.endpoint_name,
        "MUSICGEN_BUCKET": endpoint.bucket,
    }
    print("# Export these in the shell that calls it:")
    for name, value in {**environment, **names}.items():
        print(f"export {name}={shlex.quote(value)}")
    print(READY_LINE, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    endpoint = LocalEndpoint(
        env_name=args.env,
        endpoint_name=f"musicgen-{args.env}",
        bucket=f"musicgen-{args.env}-async",
        max_duration_seconds=args.max_duration,
    )
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    try:
        _require_free(args.port, "--port")
        _require_free(args.sagemaker_port, "--sagemaker-port")
        with tempfile.TemporaryDirectory(prefix="musicgen-local-") as scratch:
            model_dir = _model_dir(args, Path(scratch))
            print(f"# Starting the model server on {model_dir} ...", file=sys.stderr, flush=True)
            with running_local_loop(
                model_dir,
                endpoint,
                aws_port=args.port,
                sagemaker_port=args.sagemaker_port,
                startup_timeout=STARTUP_TIMEOUT_SECONDS,
            ) as loop:
                _announce(endpoint, loop.environment, started)
                while True:
                    signal.pause()
    except _Stop as stop:
        print(f"# {stop}: the local loop has stopped.", file=sys.stderr)
        return 0
    except (ModelServerError, ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
