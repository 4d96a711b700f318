"""Operator CLI: stage a model by hand (air-gapped accounts, or to pre-warm the cache).

    python -m constructs_lib.model_staging stage --model-id facebook/musicgen-small \
        --revision main --s3-uri s3://my-model-bucket/models/ [--token-secret NAME]
    python -m constructs_lib.model_staging stage --model-id facebook/musicgen-small \
        --local-dir models/     # for the local loop: python -m musicgen_local --model-dir ...

Runs until the snapshot is complete (no time budget); honours HF_ENDPOINT and AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .budget import Unlimited
from .hub import HubClient, HubError
from .hub_token import read_hub_token
from .local_folder import stage_to_folder
from .s3_client import s3_client
from .s3_location import S3Location
from .snapshot import DEFAULT_PART_SIZE, stage_snapshot, validate_model_id
from .transfer import DEFAULT_WORKERS, MIN_PART_SIZE

MIB = 1024 * 1024
MAX_WORKERS = 32


def _model_id(value: str) -> str:
    try:
        return validate_model_id(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("model id: ")) from None


def _s3_uri(value: str) -> S3Location:
    try:
        return S3Location.parse(value, field="--s3-uri")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--s3-uri: ")) from None


def _part_size_mib(value: str) -> int:
    try:
        mib = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer number of MiB (got {value!r})"
        ) from None
    if not MIN_PART_SIZE // MIB <= mib <= 5 * 1024:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_PART_SIZE // MIB} and 5120 (got {mib})"
        )
    return mib * MIB


def _workers(value: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (got {value!r})") from None
    if not 1 <= workers <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS} (got {workers})")
    return workers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m constructs_lib.model_staging",
        description="Stage Hugging Face model snapshots into S3 for SageMaker.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    stage = commands.add_parser(
        "stage",
        help="copy model_id@revision from the Hub to <s3-uri><model_id>/<commit>/",
        description="Copy what inference needs from the Hub into S3, verified, manifest last.",
    )
    stage.add_argument("--model-id", required=True, type=_model_id, help="owner/name on the Hub")
    stage.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    target = stage.add_mutually_exclusive_group(required=True)
    target.add_argument("--s3-uri", type=_s3_uri, help="models root, e.g. s3://bucket/models/")
    target.add_argument(
        "--local-dir",
        type=Path,
        help="a local models root instead (<dir>/<model_id>/<commit>/), e.g. for the local loop",
    )
    stage.add_argument("--token-secret", help="Secrets Manager secret holding a Hub token")
    stage.add_argument(
        "--part-size-mib",
        type=_part_size_mib,
        default=DEFAULT_PART_SIZE,
        help=f"multipart part size held in memory (default {DEFAULT_PART_SIZE // MIB})",
    )
    stage.add_argument(
        "--workers",
        type=_workers,
        default=DEFAULT_WORKERS,
        help=f"parts transferred at once, each held in memory (default {DEFAULT_WORKERS})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        token = (
            read_hub_token(boto3.client("secretsmanager"), args.token_secret)
            if args.token_secret
            else None
        )
        with HubClient(token=token) as hub:
            if args.local_dir is not None:
                local = stage_to_folder(
                    hub=hub,
                    model_id=args.model_id,
                    revision=args.revision,
                    root=args.local_dir,
                    part_size=args.part_size_mib,
                )
                print(
                    f"staged {local.model_id}@{args.revision} (commit {local.commit}) in "
                    f"{local.path}: {local.files_copied} files copied, {local.bytes_from_hub} "
                    "bytes from the Hub"
                )
                return 0
            result = stage_snapshot(
                s3=s3_client(workers=args.workers),
                hub=hub,
                model_id=args.model_id,
                revision=args.revision,
                models_root=args.s3_uri,
                budget=Unlimited(),
                part_size=args.part_size_mib,
                workers=args.workers,
            )
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS: {_one_line(error)}", file=sys.stderr)
        return 1
    except (HubError, ValueError, RuntimeError, OSError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 1
    stats = result.stats
    print(
        f"staged {result.model_id}@{args.revision} (commit {result.commit}) at "
        f"{result.location.uri}: {stats.files_copied} files copied, {stats.files_skipped} "
        f"already staged, {stats.bytes_from_hub} bytes from the Hub"
    )
    return 0


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
