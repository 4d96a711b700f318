"""Load and faults on the local loop: moto (S3/SNS/SQS), the real model server, the async emulator.

- 200 requests, 10 % of them invalid, from 24 client threads: each good one gets exactly one
  output that matches its prompt, seed and duration, each bad one exactly one failure naming its
  field, each one notification; nothing lost, nothing duplicated.
- The model worker killed mid-request (what an out-of-memory kill does): that request fails with
  a failure object that says so, and the next one succeeds.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest
import soundfile

from musicgen_local.model_server import worker_processes
from reliability.results import record
from tests.integration.e2e.conftest import LocalStack
from tests.integration.reliability.loop_traffic import LoopTraffic, Outcome
from tests.support.process_cpu import cpu_seconds

pytestmark = [pytest.mark.integration, pytest.mark.heavy, pytest.mark.reliability]

REQUESTS = 200
CLIENT_THREADS = 24
SAMPLE_RATE = 32_000
WORDS = ["calm", "lofi", "jazz", "rock", "epic", "happy", "sad", "slow", "fast", "synth"]
# (body fields, the field the failure must name); each stays invalid on the endpoint (max 4 s)
BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"prompt": "calm piano", "guidance_scale": 25}, "guidance_scale"),
    ({"prompt": "calm piano", "temperature": 0.01}, "temperature"),
    ({"prompt": "calm piano", "top_k": 5000}, "top_k"),
    ({"prompt": "calm piano", "duration": 9}, "duration"),
    ({"prompt": "calm \ud800 piano"}, "prompt"),
    ({"prompt": "calm piano", "tempo": 120}, "tempo"),
    ({"prompts": []}, "prompts"),
    ({"prompt": "calm piano", "seed": -1}, "seed"),
    ({"prompt": "calm piano", "format": "mp3"}, "format"),
    ({"prompt": "calm piano", "top_p": 2}, "top_p"),
]
LOAD_TIMEOUT_SECONDS = 600


@pytest.fixture(scope="module")
def traffic(local_stack: LocalStack, s3_endpoint_url: str) -> LoopTraffic:
    return LoopTraffic(
        outputs=local_stack.outputs,
        aws_endpoint_url=s3_endpoint_url,
        runtime_endpoint_url=local_stack.emulator.url,
    )


def _requests() -> list[tuple[str, bytes, dict[str, Any] | str]]:
    """(inference id, body, the good request or the field a bad one must be refused for)."""
    made: list[tuple[str, bytes, dict[str, Any] | str]] = []
    for number in range(REQUESTS):
        inference_id = f"load-{number:03d}-{uuid.uuid4().hex[:8]}"
        if number % 10 == 9:
            fields, field = BAD_REQUESTS[(number // 10) % len(BAD_REQUESTS)]
            made.append((inference_id, json.dumps(fields).encode(), field))
        else:
            good = {
                "prompt": f"{WORDS[number % 10]} {WORDS[(number * 7 + 3) % 10]} {number}",
                "seed": 5000 + number,
                "duration": (1, 2, 3)[number % 3] / 10,
            }
            made.append((inference_id, json.dumps(good).encode(), good))
    return made


def _check_good(outcome: Outcome, request: dict[str, Any]) -> None:
    assert outcome.failures == [], outcome.inference_id
    assert len(outcome.outputs) == 1, outcome.inference_id
    (clip,) = json.loads(outcome.outputs[0])["clips"]
    assert (clip["prompt"], clip["seed"]) == (request["prompt"], request["seed"])
    audio, rate = soundfile.read(io.BytesIO(base64.b64decode(clip["audio"])))
    assert (rate, len(audio)) == (SAMPLE_RATE, round(request["duration"] * SAMPLE_RATE))
    statuses = [message["invocationStatus"] for message in outcome.notifications]
    assert statuses == ["Completed"], outcome.inference_id


def _check_bad(outcome: Outcome, field: str) -> None:
    assert outcome.outputs == [], outcome.inference_id
    assert len(outcome.failures) == 1, outcome.inference_id
    assert f"{field}: " in outcome.failures[0].decode("utf-8", "replace")
    (message,) = outcome.notifications
    assert message["invocationStatus"] == "Failed"
    assert f"{field}: " in message["failureReason"]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def test_200_requests_from_24_threads_none_lost_none_duplicated(
    traffic: LoopTraffic, local_stack: LocalStack
) -> None:
    made = _requests()
    local_runtime = [traffic.runtime() for _ in range(CLIENT_THREADS)]

    def submit(index: int) -> None:
        inference_id, body, _ = made[index]
        traffic.submit(local_runtime[index % CLIENT_THREADS], body, inference_id)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        list(pool.map(submit, range(REQUESTS)))
    ids = [inference_id for inference_id, _, _ in made]
    outcomes = traffic.wait_for(ids, timeout=LOAD_TIMEOUT_SECONDS)
    local_stack.emulator.wait_until_idle()
    elapsed = time.monotonic() - started

    lost = [i for i in ids if not outcomes[i].notifications and not outcomes[i].outputs]
    duplicated = [i for i in ids if len(outcomes[i].notifications) > 1]
    strays = traffic.notified_ids() - set(ids)
    latencies = [o.latency_seconds for o in outcomes.values() if o.latency_seconds is not None]
    figures = {
        "requests": REQUESTS,
        "invalid": sum(isinstance(expected, str) for _, _, expected in made),
        "client_threads": CLIENT_THREADS,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "throughput_per_s": round(REQUESTS / elapsed, 2),
        "p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "p95_s": round(_percentile(latencies, 0.95), 2) if latencies else None,
        "wall_s": round(elapsed, 1),
    }
    record("load: local loop, 200 requests (10 % invalid), 24 threads", **figures)
    print(json.dumps(figures))
    assert (lost, duplicated, strays) == ([], [], set())
    for inference_id, _, expected in made:
        if isinstance(expected, str):
            _check_bad(outcomes[inference_id], expected)
        else:
            _check_good(outcomes[inference_id], expected)
    emulator_outcomes = local_stack.emulator.record.outcomes
    assert sorted(emulator_outcomes[i] for i in ids).count("Completed") == 180


def _wait_until_idle(
    workers: list[psutil.Process], *, deadline_seconds: float = 120.0, window: float = 0.5
) -> None:
    """Until no worker burns CPU for `window`: each has loaded the model and holds no request
    (a worker still in model_fn would look like the request's holder)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        before = [cpu_seconds(worker) for worker in workers]
        time.sleep(window)
        if all(cpu_seconds(w) - b < 0.02 for w, b in zip(workers, before, strict=True)):
            return
    raise AssertionError(f"the workers {[w.pid for w in workers]} never went idle")


def _holder_of_the_request(
    workers: list[psutil.Process],
    *,
    deadline_seconds: float = 60.0,
    probe_seconds: float = 0.5,
    busy_cpu_seconds: float = 0.05,
) -> psutil.Process:
    """Of workers all stopped (SIGSTOP) before a request was sent, the one holding it, stopped.

    Workers are resumed one at a time, round robin, for a short probe each; only the probed one
    can run, so the request cannot finish anywhere unseen. An idle worker waits on its socket and
    burns (next to) no CPU; the holder starts on the request and is stopped again within one
    poll, long before any decoder could finish it.
    """
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        for worker in workers:
            before = cpu_seconds(worker)
            worker.resume()
            probe_end = time.monotonic() + probe_seconds
            while time.monotonic() < probe_end:
                time.sleep(0.02)
                if cpu_seconds(worker) - before > busy_cpu_seconds:
                    worker.suspend()
                    return worker
            worker.suspend()
    raise AssertionError(f"no worker of {[w.pid for w in workers]} took the request")


def test_worker_killed_mid_request_fails_that_request_and_the_next_succeeds(
    traffic: LoopTraffic, local_stack: LocalStack, model_server_url: str
) -> None:
    runtime = traffic.runtime()
    workers = worker_processes(model_server_url)
    _wait_until_idle(workers)
    # Stopped before the request reaches them, so the kill lands mid-request however fast the
    # decoder is.
    for worker in workers:
        worker.suspend()
    victim = None
    doomed = f"kill-{uuid.uuid4().hex[:8]}"
    body = {"prompts": [f"{word} anthem" for word in WORDS[:8]], "duration": 4, "seed": 9}
    try:
        traffic.submit(runtime, json.dumps(body).encode(), doomed)
        deadline = time.monotonic() + 60
        while local_stack.emulator.record.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert local_stack.emulator.record.in_flight, "the emulator never took the request"
        victim = _holder_of_the_request(workers)
        victim.kill()
    finally:
        for worker in workers:
            if worker is not victim:
                with contextlib.suppress(psutil.NoSuchProcess):
                    worker.resume()
    killed_at = time.monotonic()
    victim.wait(timeout=10)

    (failed,) = traffic.wait_for([doomed], timeout=120).values()
    assert failed.outputs == []
    assert len(failed.failures) == 1 and failed.failures[0].strip()
    (message,) = failed.notifications
    assert message["invocationStatus"] == "Failed"
    assert "server error" in message["failureReason"] or "unreachable" in message["failureReason"]

    recovered = f"after-kill-{uuid.uuid4().hex[:8]}"
    good = {"prompt": "calm piano after the crash", "seed": 11, "duration": 0.5}
    traffic.submit(runtime, json.dumps(good).encode(), recovered)
    (outcome,) = traffic.wait_for([recovered], timeout=300).values()
    recovery_seconds = time.monotonic() - killed_at
    _check_good(outcome, good)
    replaced_deadline = time.monotonic() + 120
    while time.monotonic() < replaced_deadline:
        current = {worker.pid for worker in worker_processes(model_server_url)}
        if victim.pid not in current and len(current) >= len(workers):
            break
        time.sleep(0.5)
    worker_back_seconds = time.monotonic() - killed_at
    record(
        "fault: model worker SIGKILLed mid-request",
        requests=2,
        faults=1,
        lost=0,
        duplicated=0,
        recovery_seconds=round(recovery_seconds, 1),
        worker_replaced_s=round(worker_back_seconds, 1),
        failure_reason=" ".join(message["failureReason"].split())[:100],
    )
    print(f"recovery {recovery_seconds:.1f} s, worker back {worker_back_seconds:.1f} s")
