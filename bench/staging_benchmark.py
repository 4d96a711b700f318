"""Staging throughput: one large file from a throttled local Hub into a local S3 server, with one
part at a time and with parallel parts, measured in the same run.

    make bench-staging [BENCH_STAGING_ARGS="--size-mib 1024 --rate-mb-s 20 --workers 8"]

The fake Hub generates the file's bytes on demand (nothing stored on disk) and throttles every
connection, as one connection to a CDN is; the S3 side is a moto server process. Both run on
loopback. Prints a table; the last line is JSON with serial and parallel throughput and their
ratio, the peak memory of the staging process, and per run the CPU seconds of the benchmark
process (staging and fake Hub) and of the S3 server, and the machine's load average.

Each run is also split at the weights' CompleteMultipartUpload: the parts phase (download, upload
and hashing: what the number of workers changes) and the completion (tagging and manifest
included). The S3 stand-in completes an upload by copying the whole object in one Python thread,
the same work in both runs; on a shared machine that, not the staging code, can bound the
end-to-end ratio, so the parts-phase ratio is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import psutil
from botocore.config import Config

from constructs_lib.model_staging.runtime.staging.budget import Unlimited
from constructs_lib.model_staging.runtime.staging.hub import HubClient
from constructs_lib.model_staging.runtime.staging.s3_client import S3_RETRIES
from constructs_lib.model_staging.runtime.staging.s3_location import S3Location
from constructs_lib.model_staging.runtime.staging.snapshot import stage_snapshot
from musicgen_local.moto_server import FAKE_CREDENTIALS, running_s3_server
from tests.support.fake_hub import FakeHub, GeneratedFile, running_fake_hub
from tests.support.process_cpu import cpu_seconds

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


class CompletionClock:
    """When the client asked S3 to complete the largest multipart upload of a run."""

    def __init__(self, s3: Any) -> None:
        self.asked_at: float | None = None
        s3.meta.events.register("before-call.s3.CompleteMultipartUpload", self._asked)

    def _asked(self, **_: Any) -> None:
        self.asked_at = time.monotonic()


def _s3_server_process() -> psutil.Process:
    servers = [
        child for child in psutil.Process().children() if "moto.server" in " ".join(child.cmdline())
    ]
    if len(servers) != 1:
        raise SystemExit(f"expected one S3 server process, found {len(servers)}")
    return servers[0]


@dataclass
class Run:
    workers: int
    seconds: float
    parts_seconds: float
    cpu_seconds: float
    s3_server_cpu_seconds: float
    load_before: float
    load_after: float
    peak_rss_mib: float


def _measured_run(
    s3: Any,
    clock: CompletionClock,
    hub: FakeHub,
    server: psutil.Process,
    workers: int,
    part_size: int,
    sha256: str,
) -> Run:
    clock.asked_at = None
    load_before = os.getloadavg()[0]
    cpu = _cpu_seconds(resource.RUSAGE_SELF)
    server_cpu = cpu_seconds(server)
    began = time.monotonic()
    seconds = _stage_once(s3, hub, workers, part_size, sha256)
    if clock.asked_at is None:
        raise SystemExit("the weights were not uploaded in parts: raise --size-mib")
    return Run(
        workers=workers,
        seconds=seconds,
        parts_seconds=clock.asked_at - began,
        cpu_seconds=_cpu_seconds(resource.RUSAGE_SELF) - cpu,
        s3_server_cpu_seconds=cpu_seconds(server) - server_cpu,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        peak_rss_mib=_peak_rss_mib(),
    )


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


def _summary(
    args: argparse.Namespace, size: int, rss_before: float, serial: Run, parallel: Run
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "file_mib": args.size_mib,
        "part_size_mib": args.part_size_mib,
        "per_connection_mb_s": args.rate_mb_s,
        "workers": args.workers,
        "ratio": round(serial.seconds / parallel.seconds, 2),
        "parts_ratio": round(serial.parts_seconds / parallel.parts_seconds, 2),
        # One connection at the throttle, and `workers` of them: what the network alone allows.
        "throttle_bound_ratio": round(
            math.ceil(size / (args.part_size_mib * MIB))
            / math.ceil(size / (args.part_size_mib * MIB) / args.workers),
            2,
        ),
    }
    for name, run in (("serial", serial), ("parallel", parallel)):
        figures |= {
            f"{name}_seconds": round(run.seconds, 2),
            f"{name}_mb_s": round(size / run.seconds / 1e6, 1),
            f"{name}_parts_seconds": round(run.parts_seconds, 2),
            f"{name}_completion_seconds": round(run.seconds - run.parts_seconds, 2),
            f"{name}_cpu_seconds": round(run.cpu_seconds, 1),
            f"{name}_s3_server_cpu_seconds": round(run.s3_server_cpu_seconds, 1),
            f"{name}_load_average_1m": [round(run.load_before, 1), round(run.load_after, 1)],
            f"peak_rss_mib_{name}": round(run.peak_rss_mib),
        }
    figures |= {
        "peak_rss_mib_before": round(rss_before),
        "peak_rss_growth_mib_parallel": round(parallel.peak_rss_mib - rss_before),
        "memory_bound_mib": args.workers * args.part_size_mib,
        "cpu_cores": os.cpu_count(),
    }
    return figures


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
        server = _s3_server_process()
        clock = CompletionClock(s3)
        rss_before = _peak_rss_mib()
        print("staging with 1 worker ...", file=sys.stderr)
        serial = _measured_run(s3, clock, hub, server, 1, part_size, sha256)
        print(f"staging with {args.workers} workers ...", file=sys.stderr)
        parallel = _measured_run(s3, clock, hub, server, args.workers, part_size, sha256)
    summary = _summary(args, size, rss_before, serial, parallel)
    print(
        f"{'run':<12}{'seconds':>9}{'MB/s':>8}{'parts s':>9}{'CPU s':>7}{'S3 CPU s':>10}{'load':>6}"
    )
    for run in (serial, parallel):
        label = f"{run.workers} worker" + ("s" if run.workers > 1 else "")
        print(
            f"{label:<12}{run.seconds:>9.1f}{size / run.seconds / 1e6:>8.1f}"
            f"{run.parts_seconds:>9.1f}{run.cpu_seconds:>7.1f}{run.s3_server_cpu_seconds:>10.1f}"
            f"{run.load_before:>6.1f}"
        )
    print(
        f"ratio {summary['ratio']}x end to end, {summary['parts_ratio']}x in the parts phase "
        f"(target >= 4x with 8 workers)"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
