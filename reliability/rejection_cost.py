"""What refusing each hostile request costs a worker: peak RSS growth and seconds, case by case.

Run as `python -m reliability.rejection_cost --model mono=DIR [--model melody=DIR]`. The process
imports the handler package (`inference_code.inference`, the names its modules have in the
container too), loads each model
with `model_fn` and serves one good request with audio, so imports, caches and the codec are
warm. Then each case runs in a fresh process forked from that warm one: the child resets its
peak-RSS mark (`/proc/self/clear_refs`), feeds the body through `input_fn` and `predict_fn`
exactly as the toolkit would, and reports how far its peak rose above where it started and how
long the refusal took. A case that is not refused, or refused naming another field, is reported
as such. Prints one JSON object per case.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import soundfile

from reliability.hostile_corpus import CASES, HostileCase

# No hostile case may come near these (the bound: 256 MB and a few seconds).
MAX_RSS_GROWTH_MB = 256
MAX_SECONDS = 5.0


@dataclass(frozen=True)
class RejectionCost:
    case: str
    expected_field: str
    field: str | None  # what the rejection named; None when the request was served
    message: str
    rss_growth_mb: float
    seconds: float


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _reset_peak_rss() -> None:
    # Linux 4.0+: writing 5 sets VmHWM to the current RSS. A forked child starts its own peak
    # at its RSS anyway, so where this is not allowed the figure stays right.
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return


def _load_hooks() -> ModuleType:
    import torch

    import inference_code.inference as inference

    torch.set_num_threads(1)
    return inference


def _warm_up(hooks: ModuleType, model: Any) -> None:
    """Serve one good request with an audio prompt at a rate that needs resampling."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(4_410, dtype=np.float32), 44_100, format="WAV")
    body = {
        "prompt": "calm piano",
        "duration": 0.1,
        "seed": 1,
        "audio_prompt": base64.b64encode(buffer.getvalue()).decode(),
    }
    request = hooks.input_fn(json.dumps(body).encode(), "application/json")
    hooks.output_fn(hooks.predict_fn(request, model), "application/json")


def measure(hooks: ModuleType, model: Any, case: HostileCase, body: bytes) -> RejectionCost:
    """Refuse `body` in this process and report what it cost (call it in a fresh fork)."""
    from inference_code.request_schema import RequestValidationError

    _reset_peak_rss()
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    field: str | None = None
    try:
        request = hooks.input_fn(body, "application/json")
        hooks.predict_fn(request, model)
        message = "served: the request was not refused"
    except RequestValidationError as error:
        field, message = error.field, str(error)
    except Exception as error:  # the finding itself: anything but the schema's error
        field, message = f"<{type(error).__name__}>", str(error)[:300]
    seconds = time.perf_counter() - started
    growth_mb = (_status_kib("VmHWM") - before) / 1024
    return RejectionCost(
        case=case.name,
        expected_field=case.field,
        field=field,
        message=message,
        rss_growth_mb=round(growth_mb, 1),
        seconds=round(seconds, 3),
    )


def _in_fresh_fork(hooks: ModuleType, model: Any, case: HostileCase, body: bytes) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            result = asdict(measure(hooks, model, case, body))
        except BaseException as error:  # report, never fall back into the parent's code
            result = {"case": case.name, "error": repr(error)}
        with os.fdopen(write_end, "w") as out:
            json.dump(result, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not raw:
        # Killed (out of memory, say) before it could answer: that is the finding.
        return {"case": case.name, "error": f"worker died (wait status {status})"}
    return json.loads(raw)


def run(models: dict[str, Path], case_names: Sequence[str] | None = None) -> list[dict]:
    hooks = _load_hooks()
    loaded = {variant: hooks.model_fn(str(path)) for variant, path in models.items()}
    for model in loaded.values():
        _warm_up(hooks, model)
    chosen = [
        case
        for case in CASES
        if case.model in loaded and (case_names is None or case.name in case_names)
    ]
    results = []
    for case in chosen:
        body = case.body()
        results.append(_in_fresh_fork(hooks, loaded[case.model], case, body))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", required=True, help="VARIANT=DIR (mono, melody)"
    )
    parser.add_argument("--case", action="append", help="only this case (repeatable)")
    args = parser.parse_args(argv)
    models = {}
    for item in args.model:
        variant, _, directory = item.partition("=")
        models[variant] = Path(directory)
    for result in run(models, args.case):
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
