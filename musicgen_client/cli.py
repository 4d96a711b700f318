"""`musicgen`: generate music on the async endpoint from the command line, or fetch a result later.

Exit codes: 0 success; 1 the endpoint reported a failure (its message is printed) or AWS refused a
call; 2 bad arguments or an invalid request (nothing was uploaded); 3 the request expired in the
queue; 4 no result yet (wait timed out, or `fetch` too early); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from inference_code.request_schema import FORMATS, NORMALIZATIONS, RequestValidationError
from musicgen_client.client import (
    DEFAULT_INVOCATION_TIMEOUT_SECONDS,
    DEFAULT_REQUEST_TTL_SECONDS,
    MusicGenClient,
    Submission,
)
from musicgen_client.errors import (
    ConfigurationError,
    InferenceExpiredError,
    InferenceFailedError,
    MusicGenClientError,
    OutputFormatError,
    ResultNotReadyError,
    WaitTimeoutError,
)
from musicgen_client.output_files import clip_paths, is_folder_target, write_atomically
from musicgen_client.request import build_request, validate_request
from musicgen_client.results import GenerationResult
from musicgen_client.stack_outputs import stack_name_for
from musicgen_client.terminal_progress import ProgressLine

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_EXPIRED = 3
EXIT_NOT_READY = 4
EXIT_INTERRUPTED = 130
DEFAULT_WAIT_TIMEOUT_SECONDS = 1800.0


class UsageError(Exception):
    """Arguments that parse but do not make sense together."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicgen",
        description="Generate music with a MusicGen SageMaker async endpoint of this repo.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser("generate", help="submit prompts and write the audio")
    generate.add_argument("prompts", nargs="+", metavar="PROMPT", help="text prompt(s), 1 to 8")
    _add_target_arguments(generate)
    request = generate.add_argument_group("request (defaults: the endpoint's)")
    request.add_argument("--duration", type=float, help="seconds of audio per prompt")
    request.add_argument("--seed", type=int, help="0 <= seed < 2^32; same seed, same audio")
    request.add_argument("--guidance-scale", type=float, help="1 to 20 (1 turns guidance off)")
    request.add_argument("--temperature", type=float, help="0.05 to 10")
    request.add_argument("--top-k", type=int, help="0 to 2048 (0 = off)")
    request.add_argument("--top-p", type=float, help="0 <= p <= 1 (0 = off)")
    request.add_argument(
        "--no-sample", dest="do_sample", action="store_const", const=False, help="greedy decoding"
    )
    request.add_argument(
        "--format", choices=FORMATS, help="audio format (default: from -o's suffix, else wav)"
    )
    request.add_argument("--normalize", choices=NORMALIZATIONS, help="loudness normalisation")
    request.add_argument("--melody", type=Path, help="WAV/FLAC melody to follow (melody models)")
    request.add_argument("--audio-prompt", type=Path, help="WAV/FLAC audio to continue")
    generate.add_argument(
        "-o",
        "--output",
        help="file (several prompts: FILE-0, FILE-1, ...) or folder/ to write into",
    )
    generate.add_argument(
        "--notify",
        choices=("poll", "sqs"),
        default="poll",
        help="wait by polling S3 (default) or through a temporary SQS queue on the topics",
    )
    generate.add_argument(
        "--no-wait", action="store_true", help="print the inference id and locations, then exit"
    )
    generate.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_WAIT_TIMEOUT_SECONDS,
        help=f"seconds to wait for the result (default {DEFAULT_WAIT_TIMEOUT_SECONDS:g})",
    )
    generate.add_argument("--inference-id", help="your own id (letters, digits, . _ -; <= 64)")
    generate.add_argument(
        "--invocation-timeout",
        type=int,
        default=DEFAULT_INVOCATION_TIMEOUT_SECONDS,
        help="seconds the endpoint may spend on the request (1-3600)",
    )
    generate.add_argument(
        "--request-ttl",
        type=int,
        default=DEFAULT_REQUEST_TTL_SECONDS,
        help="seconds the request may wait in the queue (60-21600)",
    )
    generate.add_argument("--quiet", action="store_true", help="no progress line")

    fetch = commands.add_parser("fetch", help="collect the result of an earlier request")
    fetch.add_argument(
        "references", nargs="+", metavar="ID", help="inference id, or its s3:// output location"
    )
    _add_target_arguments(fetch)
    fetch.add_argument("-o", "--output", help="file (one id) or folder/ to write into")
    return parser


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group(
        "endpoint (a deployed stack's outputs, or all four names explicitly)"
    )
    target.add_argument("--env", default="dev", help="environment; reads stack MusicGen-ENV (dev)")
    target.add_argument("--stack-name", help="read this stack's outputs instead of MusicGen-ENV")
    target.add_argument("--endpoint-name")
    target.add_argument("--input-s3-uri")
    target.add_argument("--output-s3-uri")
    target.add_argument("--failure-s3-uri")
    target.add_argument("--success-topic-arn")
    target.add_argument("--error-topic-arn")
    target.add_argument(
        "--max-duration", type=_positive_float, help="the endpoint's duration limit, for checks"
    )
    target.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    target.add_argument("--profile", help="AWS named profile")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            return _generate(args, sys.stdout, sys.stderr)
        return _fetch(args, sys.stdout, sys.stderr)
    except (UsageError, RequestValidationError) as error:
        parser.exit(EXIT_USAGE, f"musicgen: error: {error}\n")
    except ConfigurationError as error:
        return _fail(EXIT_USAGE, str(error))
    except InferenceFailedError as error:
        return _fail(
            EXIT_FAILED,
            f"the endpoint reported a failure for {error.inference_id}:\n{error.message}",
        )
    except InferenceExpiredError as error:
        return _fail(EXIT_EXPIRED, str(error))
    except (WaitTimeoutError, ResultNotReadyError) as error:
        return _fail(EXIT_NOT_READY, str(error))
    except (OutputFormatError, MusicGenClientError, BotoCoreError, ClientError) as error:
        return _fail(EXIT_FAILED, str(error))
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted; nothing was left half-written")


def _fail(code: int, message: str) -> int:
    print(f"musicgen: error: {message}", file=sys.stderr)
    return code


def _client(
    args: argparse.Namespace,
    *,
    invocation_timeout: int | None = None,
    request_ttl: int | None = None,
) -> MusicGenClient:
    session = boto3.Session(region_name=args.region, profile_name=args.profile)
    options = {}
    if invocation_timeout is not None:
        options["invocation_timeout_seconds"] = invocation_timeout
    if request_ttl is not None:
        options["request_ttl_seconds"] = request_ttl
    explicit = {
        "--input-s3-uri": args.input_s3_uri,
        "--output-s3-uri": args.output_s3_uri,
        "--failure-s3-uri": args.failure_s3_uri,
    }
    if args.endpoint_name:
        missing = [flag for flag, value in explicit.items() if not value]
        if missing:
            raise UsageError(f"--endpoint-name also needs {', '.join(missing)}")
        return MusicGenClient(
            endpoint_name=args.endpoint_name,
            input_s3_uri=args.input_s3_uri,
            output_s3_uri=args.output_s3_uri,
            failure_s3_uri=args.failure_s3_uri,
            success_topic_arn=args.success_topic_arn,
            error_topic_arn=args.error_topic_arn,
            max_duration_seconds=args.max_duration,
            session=session,
            **options,
        )
    given = [flag for flag, value in explicit.items() if value]
    if given:
        raise UsageError(f"{', '.join(given)} only apply together with --endpoint-name")
    return MusicGenClient.from_stack(
        args.stack_name or stack_name_for(args.env), session=session, **options
    )


def _resolve_format(requested: str | None, output: str | None) -> str | None:
    """--format wins; else a file target's suffix decides; a contradiction is a usage error."""
    if output is None or is_folder_target(output):
        return requested
    suffix = Path(output).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        return requested
    if requested is not None and requested != suffix:
        raise UsageError(f"--format {requested} contradicts the output name {output}")
    return suffix


def _read_audio_argument(path: Path | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"{flag}: cannot read {path} ({error.strerror})") from None


def _generate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    prompt = args.prompts[0] if len(args.prompts) == 1 else args.prompts
    request = build_request(
        prompt,
        duration=args.duration,
        seed=args.seed,
        guidance_scale=args.guidance_scale,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        do_sample=args.do_sample,
        format=_resolve_format(args.format, args.output),
        normalize=args.normalize,
        melody=_read_audio_argument(args.melody, "--melody"),
        audio_prompt=_read_audio_argument(args.audio_prompt, "--audio-prompt"),
    )
    # Catch what needs no endpoint facts before touching AWS; submit re-checks with its limit.
    validate_request(request, max_duration_seconds=args.max_duration)
    client = _client(args, invocation_timeout=args.invocation_timeout, request_ttl=args.request_ttl)
    submission = client.submit(request, inference_id=args.inference_id)
    if args.no_wait:
        _print_submission(submission, args, out)
        return EXIT_OK
    progress = None if args.quiet else ProgressLine(err)
    try:
        result = client.wait(
            submission, notify=args.notify, timeout=args.timeout, on_progress=progress
        )
    finally:
        if progress is not None:
            progress.finish()
    _write_result(result, args.output, out)
    return EXIT_OK


def _print_submission(submission: Submission, args: argparse.Namespace, out: TextIO) -> None:
    out.write(
        f"inference id: {submission.inference_id}\n"
        f"input:        {submission.input_location}\n"
        f"output:       {submission.output_location}\n"
        f"failure:      {submission.failure_location}\n"
        f"collect it with: musicgen fetch {submission.inference_id}{_target_flags(args)}\n"
    )


def _target_flags(args: argparse.Namespace) -> str:
    if args.endpoint_name:
        return (
            f" --endpoint-name {args.endpoint_name} --input-s3-uri {args.input_s3_uri}"
            f" --output-s3-uri {args.output_s3_uri} --failure-s3-uri {args.failure_s3_uri}"
        )
    if args.stack_name:
        return f" --stack-name {args.stack_name}"
    return f" --env {args.env}"


def _write_result(result: GenerationResult, output: str | None, out: TextIO) -> None:
    for clip, path in zip(
        result.clips, clip_paths(output, result.inference_id, result.clips), strict=True
    ):
        write_atomically(path, clip.audio)
        seed = "unknown" if clip.seed is None else str(clip.seed)
        prompt = "" if clip.prompt is None else f"  prompt={clip.prompt!r}"
        out.write(f"{path}  {clip.duration:.2f} s  {clip.sample_rate} Hz  seed={seed}{prompt}\n")
    for warning in result.warnings:
        print(f"musicgen: warning: {warning}", file=sys.stderr)


def _fetch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if len(args.references) > 1 and not is_folder_target(args.output):
        raise UsageError("-o: several ids need a folder (end it with /), not a file name")
    client = _client(args)
    for reference in args.references:
        _write_result(client.fetch(reference), args.output, out)
    return EXIT_OK
