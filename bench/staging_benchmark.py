"""Staging throughput: one large file from a throttled local Hub into a local S3 server, with one
part at a time and with parallel parts, measured in the same run.

    make bench-staging [BENCH_STAGING_ARGS="--size-mib 1024 --rate-mb-s 20 --workers 8"]

The fake Hub generates the file's bytes on demand (nothing stored on disk) and throttles every
connection, as one connection to a CDN is; the S3 side is a moto server process. Both run on
loopback. Prints a table; the last line is JSON with serial and parallel throughput, their ratio,
the peak memory of the staging process, and the CPU seconds the benchmark process (staging and
fake Hub) and the S3 server used with the machine's load average: where CPU, not the throttle,
limits a run, the ratio says so little about the network.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config

from constructs_lib.model_staging.runtime.staging.budget import Unlimited
from constructs_lib.model_staging.runtime.staging.hub import HubClient
from constructs_lib.model_staging.runtime.staging.s3_client import S3_RETRIES
from constructs_lib.model_staging.runtime.staging.s3_location import S3Location
from constructs_lib.model_staging.runtime.staging.snapshot import stage_snapshot
from musicgen_local.moto_server import FAKE_CREDENTIALS, running_s3_server
from tests.support.fake_hub import FakeHub, GeneratedFile, running_fake_hub

MIB = 1024 * 1024
MODEL_ID = "bench/large-model"
WEIGHTS = "model.safetensors"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.staging_benchmark", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="weights file size (1024)")
    parser.add_argument("--part-size-mib", type=int, default=64, help="part size (64)")
    parser.add_argument(
        "--rate-mb-s", type=float, default=20.0, help="throttle per Hub connection (20 MB/s)"
    )
    parser.add_argument("--workers", type=int, default=8, help="parallel parts (8)")
    args = parser.parse_args(argv)
    if not 1 <= args.size_mib <= 4096 or not 5 <= args.part_size_mib <= args.size_mib:
        parser.error("--size-mib must be 1-4096 and --part-size-mib 5..size")
    if args.rate_mb_s <= 0 or not 2 <= args.workers <= 32:
        parser.error("--rate-mb-s must be > 0 and --workers 2-32")
    return args


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _stage_once(s3: Any, hub: FakeHub, workers: int, part_size: int, sha256: str) -> float:
    """Seconds to stage the model into a fresh bucket, which is emptied afterwards."""
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    began = time.monotonic()
    with HubClient(endpoint=hub.url) as client:
        result = stage_snapshot(
            s3=s3,
            hub=client,
            model_id=MODEL_ID,
            revision="main",
            models_root=S3Location(bucket=bucket, prefix="models/"),
            budget=Unlimited(),
            part_size=part_size,
            workers=workers,
        )
    seconds = time.monotonic() - began
    manifest_key = result.location.key("manifest.json")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    staged = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    if not result.done or staged.get(WEIGHTS) != sha256:
        raise SystemExit(f"staging with {workers} workers did not produce the verified file")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=bucket)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    size = args.size_mib * MIB
    part_size = args.part_size_mib * MIB
    weights = GeneratedFile(size, seed=7)
    print(f"generating the sha256 of a {args.size_mib} MiB file ...", file=sys.stderr)
    sha256 = weights.sha256
    with running_s3_server() as endpoint, running_fake_hub() as hub:
        hub.add_repo(MODEL_ID, {"config.json": b'{"model_type": "musicgen"}', WEIGHTS: weights})
        hub.bytes_per_second = args.rate_mb_s * 1e6
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
            config=Config(
                retries=S3_RETRIES,
                max_pool_connections=args.workers + 2,
                # Over plain HTTP botocore would hash every part for the signature; over HTTPS, as
                # in a real account, it sends an unsigned payload with a checksum instead.
                s3={"payload_signing_enabled": False},
            ),
        )
        rss_before = _peak_rss_mib()
        cpu_before = _cpu_seconds(resource.RUSAGE_SELF)
        print("staging with 1 worker ...", file=sys.stderr)
        serial_seconds = _stage_once(s3, hub, 1, part_size, sha256)
        rss_serial = _peak_rss_mib()
        cpu_serial = _cpu_seconds(resource.RUSAGE_SELF)
        print(f"staging with {args.workers} workers ...", file=sys.stderr)
        parallel_seconds = _stage_once(s3, hub, args.workers, part_size, sha256)
        rss_parallel = _peak_rss_mib()
        cpu_parallel = _cpu_seconds(resource.RUSAGE_SELF)
        load_average = os.getloadavg()[0]
    serial = size / serial_seconds / 1e6
    parallel = size / parallel_seconds / 1e6
    summary = {
        "file_mib": args.size_mib,
        "part_size_mib": args.part_size_mib,
        "per_connection_mb_s": args.rate_mb_s,
        "workers": args.workers,
        "serial_seconds": round(serial_seconds, 2),
        "parallel_seconds": round(parallel_seconds, 2),
        "serial_mb_s": round(serial, 1),
        "parallel_mb_s": round(parallel, 1),
        "ratio": round(parallel / serial, 2),
        "peak_rss_mib_before": round(rss_before),
        "peak_rss_mib_serial": round(rss_serial),
        "peak_rss_mib_parallel": round(rss_parallel),
        "memory_bound_mib": args.workers * args.part_size_mib,
        "cpu_seconds_serial": round(cpu_serial - cpu_before, 1),
        "cpu_seconds_parallel": round(cpu_parallel - cpu_serial, 1),
        "cpu_seconds_s3_server": round(_cpu_seconds(resource.RUSAGE_CHILDREN), 1),
        "load_average_1m": round(load_average, 1),
        "cpu_cores": os.cpu_count(),
    }
    print(f"{'run':<12}{'seconds':>10}{'MB/s':>10}{'peak RSS MiB':>14}")
    print(f"{'1 worker':<12}{serial_seconds:>10.1f}{serial:>10.1f}{rss_serial:>14.0f}")
    label = f"{args.workers} workers"
    print(f"{label:<12}{parallel_seconds:>10.1f}{parallel:>10.1f}{rss_parallel:>14.0f}")
    print(f"ratio {summary['ratio']}x (target >= 4x with 8 workers)")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
