"""`musicgen`: generate music on the async endpoint from the command line, fetch a result later,
or run a batch.

Exit codes: 0 success; 1 the endpoint reported a failure (its message is printed), AWS refused a
call, or a batch line failed; 2 bad arguments or an invalid request (nothing was uploaded); 3 the
request expired in the queue; 4 no result yet (wait timed out, `fetch` too early, or a batch
stopped with lines unfinished); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import boto3

from inference_code.request_schema import (
    FORMATS,
    OPTIONS,
    GenerationOptions,
    OptionKind,
    RequestOption,
    RequestValidationError,
)
from musicgen_client.audio_info import sniff_format
from musicgen_client.aws_errors import AWS_ERRORS, AwsContext, explain
from musicgen_client.batch import DEFAULT_PARALLEL, MAX_PARALLEL, BatchRun
from musicgen_client.batch_display import BatchProgressDisplay, format_summary
from musicgen_client.batch_file import BatchFileError, read_batch_file
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
from musicgen_client.locations import check_inference_id, inference_id_from_location
from musicgen_client.output_files import (
    check_clip_suffix,
    check_file_suffix,
    clip_paths,
    is_folder_target,
    write_atomically,
)
from musicgen_client.request import CheckedRequest, check_request
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
# Request flags the CLI names or explains its own way; every other one follows the field table.
FLAG_NAMES = {"do_sample": "--no-sample"}
FLAG_HELP = {
    "do_sample": "greedy decoding (default: sampling)",
    "format": f"audio format (default: -o's suffix, else {OPTIONS['format'].default})",
}


class UsageError(Exception):
    """Arguments that parse but do not make sense together."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicgen",
        description="Generate music with a MusicGen SageMaker async endpoint of this repo.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_generate_command(commands)
    _add_fetch_command(commands)
    _add_batch_command(commands)
    return parser


def _add_generate_command(commands: Any) -> None:
    generate = commands.add_parser("generate", help="submit prompts and write the audio")
    generate.add_argument("prompts", nargs="+", metavar="PROMPT", help="text prompt(s), 1 to 8")
    _add_target_arguments(generate, submits=True)
    request = generate.add_argument_group("request (omitted: the handler's default, shown)")
    for name, option in OPTIONS.items():
        _add_request_argument(request, name, option)
    generate.add_argument(
        "-o",
        "--output",
        help="FILE.wav or FILE.flac (several prompts: FILE-0.wav, ...) or folder/ to write "
        "into (default: the current folder, files named after the inference id)",
    )
    generate.add_argument(
        "--notify",
        choices=("poll", "sqs"),
        default="poll",
        help="wait by polling S3, or through a temporary SQS queue on the topics (default poll)",
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
    generate.add_argument(
        "--inference-id",
        help="your own id (letters, digits, . _ -; <= 64); default: a new unique id",
    )
    generate.add_argument(
        "--overwrite",
        action="store_true",
        help="with --inference-id: delete that id's earlier output or failure instead of refusing",
    )
    _add_invocation_arguments(generate)
    generate.add_argument("--quiet", action="store_true", help="no progress line")


def request_flag(name: str, option: RequestOption) -> str:
    """The `generate` flag of request field `name`; a flag that is given flips a boolean."""
    if name in FLAG_NAMES:
        return FLAG_NAMES[name]
    flag = name.replace("_", "-")
    return f"--no-{flag}" if option.default is True else f"--{flag}"


def _add_request_argument(group: Any, name: str, option: RequestOption) -> None:
    flag = request_flag(name, option)
    text = FLAG_HELP.get(name) or _request_help(option)
    match option.kind:
        case OptionKind.NUMBER:
            group.add_argument(flag, dest=name, type=_number, help=text)
        case OptionKind.INTEGER:
            group.add_argument(flag, dest=name, type=int, help=text)
        case OptionKind.BOOLEAN:
            const = not option.default
            group.add_argument(flag, dest=name, action="store_const", const=const, help=text)
        case OptionKind.CHOICE:
            group.add_argument(flag, dest=name, choices=option.choices, help=text)
        case OptionKind.AUDIO:
            group.add_argument(flag, dest=name, type=Path, help=text)


def _request_help(option: RequestOption) -> str:
    rule = f"; {option.bound.describe().removeprefix('must be ')}" if option.bound else ""
    if option.default is None:
        default = f"default: {option.default_text}"
    elif isinstance(option.default, bool):
        default = f"default: {'on' if option.default else 'off'}"
    elif isinstance(option.default, float):
        default = f"default {option.default:g}"
    else:
        default = f"default {option.default}"
    return f"{option.help}{rule} ({default})"


def _add_fetch_command(commands: Any) -> None:
    fetch = commands.add_parser("fetch", help="collect the result of an earlier request")
    fetch.add_argument(
        "references", nargs="+", metavar="ID", help="inference id, or its s3:// output location"
    )
    _add_target_arguments(fetch, submits=False)
    fetch.add_argument(
        "-o",
        "--output",
        help="FILE.wav or FILE.flac (one id) or folder/ to write into "
        "(default: the current folder, files named after the inference id)",
    )


def _add_batch_command(commands: Any) -> None:
    batch = commands.add_parser(
        "batch",
        help="generate one clip (or set) per line of a JSON Lines file, resumably",
        description="Each line of PROMPTS is one request object (the request contract's "
        "fields). Files are written as FOLDER/<PROMPTS stem>-<line>.<format>; progress is "
        "kept in FOLDER/.<PROMPTS stem>.musicgen-batch.jsonl, so running the same command "
        "again skips lines whose files exist and collects requests still in flight.",
    )
    batch.add_argument("prompts_file", type=Path, metavar="PROMPTS", help="a .jsonl file")
    batch.add_argument(
        "-o", "--output", required=True, metavar="FOLDER", help="folder to write the clips into"
    )
    _add_target_arguments(batch, submits=True)
    batch.add_argument(
        "--parallel",
        type=_parallelism,
        default=DEFAULT_PARALLEL,
        help=f"requests in flight at once, 1-{MAX_PARALLEL} (default {DEFAULT_PARALLEL})",
    )
    batch.add_argument(
        "--timeout",
        type=_positive_float,
        help="seconds for the whole run; what is still in flight is collected by the next run "
        "(default: until every request finishes or expires)",
    )
    _add_invocation_arguments(batch)
    batch.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_target_arguments(parser: argparse.ArgumentParser, *, submits: bool) -> None:
    target = parser.add_argument_group(
        "endpoint (a deployed stack's outputs, or all four names explicitly)"
    )
    target.add_argument(
        "--env", default="dev", help="environment: read stack MusicGen-ENV (default dev)"
    )
    target.add_argument("--stack-name", help="read this stack's outputs instead of MusicGen-ENV")
    target.add_argument("--endpoint-name")
    target.add_argument("--input-s3-uri")
    target.add_argument("--output-s3-uri")
    target.add_argument("--failure-s3-uri")
    if submits:
        target.add_argument("--success-topic-arn", help="for --notify sqs")
        target.add_argument("--error-topic-arn", help="for --notify sqs")
        target.add_argument(
            "--max-duration",
            type=_positive_float,
            help="the endpoint's duration limit, for checks (default: the stack's)",
        )
    target.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    target.add_argument("--profile", help="AWS named profile (default: your AWS configuration's)")


def _add_invocation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--invocation-timeout",
        type=int,
        default=DEFAULT_INVOCATION_TIMEOUT_SECONDS,
        help="seconds the endpoint may spend on a request, 1-3600 "
        f"(default {DEFAULT_INVOCATION_TIMEOUT_SECONDS})",
    )
    parser.add_argument(
        "--request-ttl",
        type=int,
        default=DEFAULT_REQUEST_TTL_SECONDS,
        help="seconds a request may wait in the queue, 60-21600 "
        f"(default {DEFAULT_REQUEST_TTL_SECONDS})",
    )


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _number(text: str) -> int | float:
    """Keep `--duration 45` an integer, so messages quote it as typed (got 45, not 45.0)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _parallelism(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_PARALLEL:
        raise argparse.ArgumentTypeError(f"must be 1-{MAX_PARALLEL}, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"generate": _generate, "fetch": _fetch, "batch": _batch}
    try:
        return commands[args.command](args, sys.stdout, sys.stderr)
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
    except (OutputFormatError, MusicGenClientError) as error:
        return _fail(EXIT_FAILED, str(error))
    except AWS_ERRORS as error:
        context = AwsContext.resolve(_target_name(args), region=args.region, profile=args.profile)
        return _fail(EXIT_FAILED, explain(error, context))
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        return _fail(EXIT_FAILED, f"cannot write{where}: {error.strerror or error}")
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted; nothing was left half-written")


def _fail(code: int, message: str) -> int:
    print(f"musicgen: error: {message}", file=sys.stderr)
    return code


def _target_name(args: argparse.Namespace) -> str:
    if args.endpoint_name:
        return f"endpoint {args.endpoint_name}"
    return f"stack {args.stack_name or stack_name_for(args.env)}"


def _client(
    args: argparse.Namespace,
    *,
    invocation_timeout: int = DEFAULT_INVOCATION_TIMEOUT_SECONDS,
    request_ttl: int = DEFAULT_REQUEST_TTL_SECONDS,
) -> MusicGenClient:
    session = boto3.Session(region_name=args.region, profile_name=args.profile)
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
            success_topic_arn=getattr(args, "success_topic_arn", None),
            error_topic_arn=getattr(args, "error_topic_arn", None),
            max_duration_seconds=getattr(args, "max_duration", None),
            session=session,
            invocation_timeout_seconds=invocation_timeout,
            request_ttl_seconds=request_ttl,
        )
    given = [flag for flag, value in explicit.items() if value]
    if given:
        raise UsageError(f"{', '.join(given)} only apply together with --endpoint-name")
    return MusicGenClient.from_stack(
        args.stack_name or stack_name_for(args.env),
        session=session,
        invocation_timeout_seconds=invocation_timeout,
        request_ttl_seconds=request_ttl,
    )


def _check_output_name(output: str | None) -> None:
    try:
        check_file_suffix(output)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _resolve_format(requested: str | None, output: str | None) -> str | None:
    """--format wins; else a file target's suffix decides; a contradiction is a usage error."""
    _check_output_name(output)
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
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"{flag}: cannot read {path} ({error.strerror})") from None
    if sniff_format(data) is None:
        raise UsageError(f"{flag}: {path} is not a WAV or FLAC file")
    return data


def check_request_duration(
    request: dict[str, Any], *, max_duration: float | None
) -> CheckedRequest:
    """Check with the endpoint's limit; name the limit's source when it is only a guess."""
    try:
        return check_request(request, max_duration_seconds=max_duration)
    except RequestValidationError as error:
        if error.field == "duration" and max_duration is None:
            raise UsageError(
                f"{error}; the endpoint's own limit is unknown here: pass --max-duration, or "
                "--env/--stack-name to read its MaxDurationSeconds"
            ) from None
        raise


def _check_before_aws(request: dict[str, Any], args: argparse.Namespace) -> CheckedRequest | None:
    """Refuse what needs no endpoint facts before touching AWS; the checked request, if final.

    The duration limit is a fact of the endpoint: when its stack is about to be read, a
    duration error waits for the stack's MaxDurationSeconds instead of quoting a guessed limit.
    """
    if args.max_duration is not None or args.endpoint_name:
        return check_request_duration(request, max_duration=args.max_duration)
    try:
        check_request(request, max_duration_seconds=None)
    except RequestValidationError as error:
        if error.field != "duration":
            raise
    return None


def request_from_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The request the `generate` flags describe, one flag per field of the request table."""
    values = {name: getattr(args, name) for name in OPTIONS}
    values["format"] = _resolve_format(args.format, args.output)
    values["melody"] = _read_audio_argument(args.melody, "--melody")
    values["audio_prompt"] = _read_audio_argument(args.audio_prompt, "--audio-prompt")
    prompt = args.prompts[0] if len(args.prompts) == 1 else args.prompts
    return GenerationOptions(**values).to_payload(prompt)


def _generate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    request = request_from_arguments(args)
    if args.inference_id is not None:
        check_inference_id(args.inference_id)
    elif args.overwrite:
        raise UsageError("--overwrite only applies together with --inference-id")
    checked = _check_before_aws(request, args)
    client = _client(args, invocation_timeout=args.invocation_timeout, request_ttl=args.request_ttl)
    if checked is None:
        checked = check_request_duration(request, max_duration=client.settings.max_duration_seconds)
    submission = client.submit(checked, inference_id=args.inference_id, overwrite=args.overwrite)
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
    paths = clip_paths(output, result.inference_id, result.clips)
    for clip, path in zip(result.clips, paths, strict=True):
        try:
            check_clip_suffix(path, clip)
        except ValueError as error:
            raise UsageError(str(error)) from None
    for clip, path in zip(result.clips, paths, strict=True):
        write_atomically(path, clip.audio)
        seed = "unknown" if clip.seed is None else str(clip.seed)
        prompt = "" if clip.prompt is None else f"  prompt={clip.prompt!r}"
        out.write(f"{path}  {clip.duration:.2f} s  {clip.sample_rate} Hz  seed={seed}{prompt}\n")
    for warning in result.warnings:
        print(f"musicgen: warning: {warning}", file=sys.stderr)


def _fetch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _check_output_name(args.output)
    if len(args.references) > 1 and not is_folder_target(args.output):
        raise UsageError("-o: several ids need a folder (end it with /), not a file name")
    for reference in args.references:
        if reference.startswith("s3://"):
            inference_id_from_location(reference)
        else:
            check_inference_id(reference)
    client = _client(args)
    for reference in args.references:
        _write_result(client.fetch(reference), args.output, out)
    return EXIT_OK


def _batch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not is_folder_target(args.output) and Path(args.output).exists():
        raise UsageError(f"-o {args.output}: must be a folder (it is a file)")
    try:
        lines = read_batch_file(args.prompts_file)
    except BatchFileError as error:
        raise UsageError(str(error)) from None
    client = _client(args, invocation_timeout=args.invocation_timeout, request_ttl=args.request_ttl)
    max_duration = args.max_duration or client.settings.max_duration_seconds
    run = BatchRun(
        client=client,
        lines=lines,
        folder=Path(args.output),
        stem=args.prompts_file.stem,
        max_duration_seconds=max_duration,
        parallel=args.parallel,
    )
    display = None if args.quiet else BatchProgressDisplay(err)
    try:
        report = run.run(timeout=args.timeout, on_progress=display)
    finally:
        if display is not None:
            display.finish()
    out.write(format_summary(report))
    if report.interrupted:
        return EXIT_INTERRUPTED
    if report.failed:
        return EXIT_FAILED
    if report.unfinished:
        return EXIT_NOT_READY
    return EXIT_OK
