"""How fast the handler generates, against a bare `generate` and the seed sample's way of serving.

Builds a random-weight checkpoint with the exact architecture of musicgen-small (or medium,
large), installs `inference_code/` beside it as `code/` (the container's layout), then in one
run measures:

- the handler hooks (model_fn once, then input_fn -> predict_fn -> output_fn per request);
- a bare `model.generate` with the very settings the handler passed to generate (recorded from
  the handler's own call), on the same loaded model;
- the seed sample's serving style: fp32, the processor reloaded from disk and the model moved
  to the device on every request, the clip written as WAV;
- four prompts in one request against four single-prompt requests.

A "token" is one decoder step of the generate call (one 20 ms frame of all codebooks; the
handler adds the delay pattern's steps to the clip's frames). Handler and bare
runs alternate on the same prompt and seed, so drift in the machine's speed hits both alike;
the overhead is the median of those pairs, the other times are medians. The seed-sample runs
share the handler's model when that is fp32 (interleaved too); otherwise its own fp32 copy is
loaded after the handler's figures, which therefore never include it (peak memory included).
The last line printed is one JSON object with every figure.

Those handler figures are taken on the transformers decoder (`MUSICGEN_DECODER=transformers`):
their baseline replays the handler's own `generate` call. The handler's default decoder, the
static-cache loop, is measured against `generate` one window at a time (`--only decode` runs
only that part):

- `decode_overhead_ratio`: per-step time of the transformers path ÷ the loop's, eager, on the
  tests' tiny model, where the model's compute is negligible and a step is all overhead;
- `loop_vs_generate_<arch>`: tokens/s of the loop ÷ the transformers path on the checkpoint,
  paired runs, with `..._noise`, how far two transformers runs of the same round differ;
- `loop_batch4_vs_sequential_ratio`: the handler on the loop, 4 prompts at once against 4
  single-prompt requests.

    make bench BENCH_ARGS="--device cuda --arch large --dtype bf16 --duration 10"
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import scipy.io.wavfile
import torch
import transformers
from transformers import AutoProcessor, MusicgenForConditionalGeneration

from bench.musicgen_checkpoint import ARCHES, build_random_musicgen
from inference_code.contract import DECODER_ENV, STATIC_CACHE_DECODER, TRANSFORMERS_DECODER
from musicgen_local.code_package import install_inference_code
from musicgen_local.tiny_musicgen import build_tiny_musicgen

JSON_CONTENT_TYPE = "application/json"
PROMPTS = (
    "lofi hip hop beat with mellow piano and soft vinyl crackle",
    "upbeat electronic dance track with punchy drums and a bright synth lead",
    "cinematic orchestral theme with swelling strings and deep brass",
    "acoustic folk song with fingerpicked guitar and warm harmonica",
)
# Long enough to run every kernel of a request once; short enough not to matter.
WARMUP_SECONDS = 0.3
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# By default the bench serves what model_fn serves on the device: fp32 on a CPU, half precision
# on a GPU. bf16 on a CPU without bf16 matrix instructions (no AVX512-BF16/AMX, as on this
# project's 2-core AMD EPYC) is compute-bound: there a 4-prompt batch ran only 1.17x faster
# than 4 requests (fp32: 2.65x), so it says nothing of the GPU path it would stand for. On
# that CPU musicgen-small makes about 4 tokens/s in fp32, so the CPU clip is 2 s (about 4
# minutes for the handler figures); on a GPU it is 5 s.
DEFAULT_DURATION_SECONDS = {"cpu": 2.0, "cuda": 5.0}
DEFAULT_REPEATS = 1
DEFAULT_DTYPE = "auto"
# The decoder comparison: frames per window on the tiny model (overhead-bound, a step takes a few
# ms) and on the checkpoint (a 1 s window), and paired rounds of each.
OVERHEAD_FRAMES = 100
OVERHEAD_ROUNDS = 5
LOOP_SECONDS = 1.0
LOOP_ROUNDS = 3
PARTS = ("all", "handler", "decode")


@dataclasses.dataclass
class GenerateRecorder:
    """Stands in for `model.generate`, calls the real one, and remembers each call's settings.

    The bare and seed-sample runs replay exactly what the handler asked generate for, so every
    variant makes the same number of tokens with the same sampling settings.
    """

    generate: Callable[..., Any]
    device: torch.device
    settings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        settings = fresh_lists(
            {name: value for name, value in kwargs.items() if not isinstance(value, torch.Tensor)}
        )
        started = time.perf_counter()
        output = self.generate(*args, **kwargs)
        _synchronize(self.device)
        self.seconds.append(time.perf_counter() - started)
        self.settings.append(settings)
        return output


def fresh_lists(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with each list copied: generate appends its own processors to a list it is
    given, so a list replayed as it was left would hold them twice."""
    return {
        name: type(value)(value) if isinstance(value, list) else value
        for name, value in settings.items()
    }


@dataclasses.dataclass
class Timings:
    handler: list[float] = dataclasses.field(default_factory=list)
    handler_generate: list[float] = dataclasses.field(default_factory=list)
    bare: list[float] = dataclasses.field(default_factory=list)
    seed_sample: list[float] = dataclasses.field(default_factory=list)
    batch4: float = 0.0


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def import_handler(code_dir: Path) -> ModuleType:
    """Import `inference` the way the toolkit does: code/ on sys.path, a top-level module.

    A process that imported the handler package already (a test session) keeps it: the handler's
    modules are named `inference_code.*` wherever they are loaded from, so two copies of the same
    source cannot coexist.
    """
    if "inference_code.inference" in sys.modules:
        return sys.modules["inference_code.inference"]
    if "inference" not in sys.modules:
        sys.path.insert(0, str(code_dir))
    return importlib.import_module("inference")


def evict_from_page_cache(model_dir: Path) -> None:
    """Drop the checkpoint's pages from the OS cache so model_fn reads it from disk.

    The benchmark has just written the files; without this the load would only copy memory.
    Only these files are evicted (nothing machine-wide), and only where the OS supports it.
    """
    if not hasattr(os, "posix_fadvise"):
        return
    for path in model_dir.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def load_model(
    hooks: ModuleType, model_dir: Path, *, device: torch.device, dtype: str
) -> tuple[Any, float]:
    """The handler's loaded model and the seconds it took, reading the checkpoint from disk.

    `auto` on the device the handler would pick is model_fn itself; anything else goes through
    the same loader with the device and precision forced.
    """
    loader = importlib.import_module("inference_code.model_loading")
    evict_from_page_cache(model_dir)
    default_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    if dtype == "auto" and device.type == default_device.type:
        loaded = hooks.model_fn(str(model_dir))
    elif dtype == "auto":
        loaded = loader.load_musicgen(model_dir, device=device)
    elif dtype == "fp32" and device.type != "cpu":
        # The loader always halves the language model on a GPU: load fp32 on the CPU, move once.
        on_cpu = loader.load_musicgen(model_dir, device=torch.device("cpu"))
        loaded = dataclasses.replace(on_cpu, model=on_cpu.model.to(device), device=device)
    elif dtype == "fp32":
        loaded = loader.load_musicgen(model_dir, device=device)
    else:
        loaded = loader.load_musicgen(model_dir, device=device, half_dtype=DTYPES[dtype])
    _synchronize(device)
    return loaded, time.perf_counter() - started


def handler_request(
    hooks: ModuleType, loaded: Any, prompts: Sequence[str], *, duration: float, seed: int
) -> float:
    """One request through input_fn -> predict_fn -> output_fn; its wall seconds."""
    fields: dict[str, Any] = {"duration": duration, "seed": seed}
    if len(prompts) == 1:
        fields["prompt"] = prompts[0]
    else:
        fields["prompts"] = list(prompts)
    body = json.dumps(fields)
    started = time.perf_counter()
    request = hooks.input_fn(body, JSON_CONTENT_TYPE)
    prediction = hooks.predict_fn(request, loaded)
    response = hooks.output_fn(prediction, JSON_CONTENT_TYPE)
    elapsed = time.perf_counter() - started
    clips = json.loads(response)["clips"]
    if len(clips) != len(prompts):
        raise RuntimeError(f"handler returned {len(clips)} clip(s) for {len(prompts)} prompt(s)")
    return elapsed


@torch.inference_mode()
def bare_request(loaded: Any, prompt: str, *, seed: int, settings: dict[str, Any]) -> float:
    """`model.generate` alone, with the handler's settings; tokenising is not timed."""
    inputs = loaded.tokenizer([prompt], padding=True, return_tensors="pt").to(loaded.device)
    torch.manual_seed(seed)
    started = time.perf_counter()
    audio = loaded.model.generate(**inputs, **fresh_lists(settings))
    audio.cpu()
    return time.perf_counter() - started


def seed_sample_request(
    model: MusicgenForConditionalGeneration,
    model_dir: Path,
    prompt: str,
    *,
    device: torch.device,
    seed: int,
    settings: dict[str, Any],
) -> float:
    """A request served the seed sample's way (its S3 upload left out)."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    processor = AutoProcessor.from_pretrained(model_dir)
    model.to(device)
    inputs = processor(text=[prompt], padding=True, return_tensors="pt").to(device)
    audio = model.generate(**inputs, **fresh_lists(settings))
    samples = audio[0, 0].cpu().numpy()
    scipy.io.wavfile.write(
        io.BytesIO(), rate=model.config.audio_encoder.sampling_rate, data=samples
    )
    return time.perf_counter() - started


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """High-water marks so far: the process's resident set and, on a GPU, its allocations."""
    peaks = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB
    if device.type == "cuda":
        peaks["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peaks


def run_benchmark(
    model_dir: Path, *, device: str, dtype: str, duration: float, repeats: int, arch: str
) -> dict[str, Any]:
    """Measure every handler variant on the checkpoint in `model_dir` on the transformers decoder
    (the bare baseline replays the handler's `generate` call); return the figures."""
    with decoder_selected(TRANSFORMERS_DECODER):
        figures = _run_handler_benchmark(
            model_dir, device=device, dtype=dtype, duration=duration, repeats=repeats, arch=arch
        )
    return {**figures, "handler_decoder": TRANSFORMERS_DECODER}


@contextlib.contextmanager
def decoder_selected(decoder: str) -> Iterator[None]:
    """Run the handler with MUSICGEN_DECODER set to `decoder`, restoring it afterwards."""
    previous = os.environ.get(DECODER_ENV)
    os.environ[DECODER_ENV] = decoder
    try:
        yield
    finally:
        if previous is None:
            del os.environ[DECODER_ENV]
        else:
            os.environ[DECODER_ENV] = previous


@dataclasses.dataclass(frozen=True)
class DecodeWindow:
    """One window's decode call, the same for both decoders."""

    loaded: Any
    conditioning: dict[str, torch.Tensor]
    settings: Any
    frames: int

    def seconds(self, decoder: str, seed: int) -> float:
        sampling = importlib.import_module("inference_code.row_sampling")
        window = importlib.import_module("inference_code.windowed_generation")
        codebooks = self.loaded.codebooks_per_channel * self.loaded.channels
        context = torch.zeros((1, codebooks, 0), dtype=torch.long, device=self.loaded.device)
        generators = sampling.clip_generators([seed], self.loaded.device)
        with decoder_selected(decoder):
            started = time.perf_counter()
            codes = window.decode_window(
                self.loaded, self.conditioning, self.settings, generators, context, self.frames
            )
            _synchronize(self.loaded.device)
            elapsed = time.perf_counter() - started
        if codes.shape[-1] != self.frames:
            raise RuntimeError(f"{decoder} made {codes.shape[-1]} frames, not {self.frames}")
        return elapsed

    @property
    def steps(self) -> int:
        return self.frames + self.loaded.codebooks_per_channel - 1


def decode_window_for(hooks: ModuleType, loaded: Any, frames: int) -> DecodeWindow:
    """A one-prompt window with the request defaults (sampling, top-k 250, guidance 3)."""
    window = importlib.import_module("inference_code.windowed_generation")
    request = hooks.input_fn(json.dumps({"prompt": PROMPTS[0]}), JSON_CONTENT_TYPE)
    conditioning = window._text_conditioning(loaded, request)
    return DecodeWindow(loaded, conditioning, window._settings(request), frames)


def measure_decode_overhead(hooks: ModuleType, tiny_dir: Path, *, rounds: int) -> dict[str, Any]:
    """Per-step time of both decoders on a tiny fp32 model, alternating, paired per round."""
    loader = importlib.import_module("inference_code.model_loading")
    loaded = loader.load_musicgen(tiny_dir, device=torch.device("cpu"))
    window = decode_window_for(hooks, loaded, OVERHEAD_FRAMES)
    # The tiny matrices gain nothing from threads; on a busy machine every hand-off to a second
    # thread waits for a core and would swamp the overhead being measured.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        figures = _decode_overhead(window, rounds=rounds)
    finally:
        torch.set_num_threads(threads)
    return figures


def _decode_overhead(window: DecodeWindow, *, rounds: int) -> dict[str, Any]:
    window.seconds(TRANSFORMERS_DECODER, seed=0)
    window.seconds(STATIC_CACHE_DECODER, seed=0)
    generate_steps, loop_steps = [], []
    for index in range(rounds):
        generate_steps.append(window.seconds(TRANSFORMERS_DECODER, seed=index) / window.steps)
        loop_steps.append(window.seconds(STATIC_CACHE_DECODER, seed=index) / window.steps)
        _ratio_progress(
            f"tiny: generate / loop, round {index}", generate_steps[-1] / loop_steps[-1]
        )
    return {
        "decode_generate_ms_per_step": round(statistics.median(generate_steps) * 1e3, 3),
        "decode_loop_ms_per_step": round(statistics.median(loop_steps) * 1e3, 3),
        "decode_overhead_ratio": round(
            statistics.median(g / s for g, s in zip(generate_steps, loop_steps, strict=True)), 3
        ),
    }


def measure_loop_vs_generate(
    hooks: ModuleType, loaded: Any, *, arch: str, rounds: int, seconds: float
) -> dict[str, Any]:
    """Tokens/s of the loop ÷ the transformers path on the checkpoint: each round runs
    generate, the loop, generate again; the ratio pairs the loop with the first, the noise is
    how far the second generate is from the first."""
    window = decode_window_for(hooks, loaded, round(seconds * loaded.frame_rate))
    window.seconds(STATIC_CACHE_DECODER, seed=0)
    ratios, noise = [], []
    loop_times, generate_times = [], []
    for index in range(rounds):
        first = window.seconds(TRANSFORMERS_DECODER, seed=index)
        loop = window.seconds(STATIC_CACHE_DECODER, seed=index)
        again = window.seconds(TRANSFORMERS_DECODER, seed=index)
        ratios.append(first / loop)
        noise.append(abs(again / first - 1))
        loop_times.append(loop)
        generate_times.append(first)
        _ratio_progress(f"{arch}: generate / loop, round {index}", first / loop)
    return {
        f"loop_tokens_per_s_{arch}": round(window.steps / statistics.median(loop_times), 2),
        f"generate_tokens_per_s_{arch}": round(window.steps / statistics.median(generate_times), 2),
        f"loop_vs_generate_{arch}": round(statistics.median(ratios), 3),
        f"loop_vs_generate_{arch}_noise": round(statistics.median(noise), 3),
    }


def measure_loop_batching(hooks: ModuleType, loaded: Any, *, seconds: float) -> dict[str, Any]:
    """The handler on the loop: 4 prompts in one request against 4 single-prompt requests."""
    with decoder_selected(STATIC_CACHE_DECODER):
        handler_request(hooks, loaded, PROMPTS[:1], duration=WARMUP_SECONDS, seed=1)
        sequential = sum(
            handler_request(hooks, loaded, [prompt], duration=seconds, seed=3000 + index)
            for index, prompt in enumerate(PROMPTS)
        )
        batch = handler_request(hooks, loaded, PROMPTS, duration=seconds, seed=3000)
    _ratio_progress("loop: 4 sequential / 4 at once", sequential / batch)
    return {"loop_batch4_vs_sequential_ratio": round(sequential / batch, 3)}


def run_decode_benchmark(
    model_dir: Path,
    tiny_dir: Path,
    *,
    device: str,
    dtype: str,
    arch: str,
    overhead_rounds: int = OVERHEAD_ROUNDS,
    loop_rounds: int = LOOP_ROUNDS,
) -> dict[str, Any]:
    """The static-cache loop against transformers' generate; return the figures."""
    hooks = import_handler(install_inference_code(model_dir))
    figures = measure_decode_overhead(hooks, tiny_dir, rounds=overhead_rounds)
    loaded, _ = load_model(hooks, model_dir, device=torch.device(device), dtype=dtype)
    figures |= measure_loop_vs_generate(
        hooks, loaded, arch=arch, rounds=loop_rounds, seconds=LOOP_SECONDS
    )
    figures |= measure_loop_batching(hooks, loaded, seconds=LOOP_SECONDS)
    return {**figures, "decode_dtype": str(loaded.dtype).removeprefix("torch.")}


def _run_handler_benchmark(
    model_dir: Path, *, device: str, dtype: str, duration: float, repeats: int, arch: str
) -> dict[str, Any]:
    torch_device = torch.device(device)
    hooks = import_handler(install_inference_code(model_dir))
    loaded, load_seconds = load_model(hooks, model_dir, device=torch_device, dtype=dtype)
    _progress(f"load ({loaded.dtype}, {loaded.device})", load_seconds)
    recorder = GenerateRecorder(loaded.model.generate, torch_device)
    loaded.model.generate = recorder
    timings = Timings()

    handler_request(hooks, loaded, PROMPTS[:1], duration=min(duration, WARMUP_SECONDS), seed=1)
    # An fp32 handler model is the seed sample's model too; otherwise the sample's own fp32 copy
    # is loaded after the handler's figures, so it counts in neither its memory nor its timings.
    shares_model = loaded.dtype == torch.float32

    def seed_sample_run(index: int, settings: dict[str, Any]) -> None:
        seconds = seed_sample_request(
            baseline_model,
            model_dir,
            PROMPTS[index % len(PROMPTS)],
            device=torch_device,
            seed=1000 + index,
            settings=settings,
        )
        timings.seed_sample.append(_progress(f"seed-sample style, prompt {index}", seconds))

    baseline_model = loaded.model
    # Four single-prompt requests are the sequential side of the batching comparison.
    for index in range(max(len(PROMPTS), repeats)):
        prompt = PROMPTS[index % len(PROMPTS)]
        seed = 1000 + index
        seconds = handler_request(hooks, loaded, [prompt], duration=duration, seed=seed)
        timings.handler.append(_progress(f"handler, prompt {index}", seconds))
        timings.handler_generate.append(recorder.seconds[-1])
        settings = recorder.settings[-1]
        if index < repeats:
            seconds = bare_request(loaded, prompt, seed=seed, settings=settings)
            timings.bare.append(_progress(f"bare generate, prompt {index}", seconds))
            if shares_model:
                seed_sample_run(index, settings)
    seconds = handler_request(hooks, loaded, PROMPTS, duration=duration, seed=2000)
    timings.batch4 = _progress("handler, 4 prompts at once", seconds)
    serving_peaks = peak_memory_mb(torch_device)

    if not shares_model:
        baseline_model = MusicgenForConditionalGeneration.from_pretrained(
            model_dir, torch_dtype=torch.float32
        )
        warmup_settings = recorder.settings[0]
        seed_sample_request(
            baseline_model,
            model_dir,
            PROMPTS[0],
            device=torch_device,
            seed=1,
            settings=warmup_settings,
        )
        for index in range(repeats):
            seed_sample_run(index, settings)

    return _figures(
        timings,
        device=torch_device,
        arch=arch,
        dtype=str(loaded.dtype).removeprefix("torch."),
        duration=duration,
        tokens=int(settings["max_new_tokens"]),
        repeats=repeats,
        load_seconds=load_seconds,
        peaks=serving_peaks,
    )


def _progress(label: str, seconds: float) -> float:
    print(f"  {label:<34} {seconds:8.2f} s", flush=True)
    return seconds


def _ratio_progress(label: str, ratio: float) -> None:
    print(f"  {label:<34} {ratio:8.2f} x", flush=True)


def _figures(
    timings: Timings,
    *,
    device: torch.device,
    arch: str,
    dtype: str,
    duration: float,
    tokens: int,
    repeats: int,
    load_seconds: float,
    peaks: dict[str, float],
) -> dict[str, Any]:
    paired = list(zip(timings.handler, timings.bare, strict=False))
    handler_seconds = statistics.median(timings.handler)
    bare_seconds = statistics.median(timings.bare)
    seed_seconds = statistics.median(timings.seed_sample)
    # Four requests of one shape, one after another: four medians, so one run slowed by a
    # neighbour on a shared machine does not inflate the batching gain.
    sequential4 = len(PROMPTS) * handler_seconds
    outside_generate = [
        (total - inside) / inside * 100
        for total, inside in zip(timings.handler, timings.handler_generate, strict=True)
    ]
    figures: dict[str, Any] = {
        "device": device.type,
        "device_name": _device_name(device),
        "arch": arch,
        "dtype": dtype,
        "torch_threads": torch.get_num_threads(),
        "duration_s": duration,
        "tokens_per_request": tokens,
        "repeats": repeats,
        "handler_seconds": round(handler_seconds, 3),
        "handler_tokens_per_s": round(tokens / handler_seconds, 2),
        "handler_audio_s_per_s": round(duration / handler_seconds, 4),
        "bare_seconds": round(bare_seconds, 3),
        "bare_tokens_per_s": round(tokens / bare_seconds, 2),
        "bare_audio_s_per_s": round(duration / bare_seconds, 4),
        "handler_overhead_pct": round(
            statistics.median((handler / bare - 1) * 100 for handler, bare in paired), 2
        ),
        "handler_outside_generate_pct": round(statistics.median(outside_generate), 2),
        "seed_baseline_seconds": round(seed_seconds, 3),
        "seed_baseline_ratio": round(seed_seconds / handler_seconds, 3),
        "sequential4_seconds": round(sequential4, 3),
        "batch4_seconds": round(timings.batch4, 3),
        "batch4_vs_sequential_ratio": round(sequential4 / timings.batch4, 3),
        "load_seconds": round(load_seconds, 2),
        **{name: round(megabytes, 1) for name, megabytes in peaks.items()},
    }
    return figures


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{multiprocessing.cpu_count()}"
    except OSError:
        pass
    return f"cpu x{multiprocessing.cpu_count()}"


def build_checkpoint(model_dir: Path, *, arch: str, device: str) -> float:
    """Build the checkpoint in a child process so its memory does not count as the server's."""
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pool.submit(_build_quietly, model_dir, arch=arch, device=device).result()
    return time.perf_counter() - started


def _build_quietly(model_dir: Path, *, arch: str, device: str) -> None:
    transformers.logging.set_verbosity_error()
    build_random_musicgen(model_dir, arch=arch, device=device)


def format_table(figures: dict[str, Any]) -> str:
    width = max(len(name) for name in figures)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in figures.items())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--arch", choices=ARCHES, default="small")
    parser.add_argument(
        "--dtype",
        choices=["auto", *DTYPES],
        default=DEFAULT_DTYPE,
        help="auto (default) = what model_fn picks on the device: fp32 on cpu, half on cuda",
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="clip seconds (0 < d <= 30; default 2 on cpu, 5 on cuda)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help="timed bare and seed-sample runs, each paired with a handler run (>= 1)",
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        default="all",
        help="handler: the handler figures; decode: the static-cache loop against generate",
    )
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = DEFAULT_DURATION_SECONDS[args.device]
    if not 0 < args.duration <= 30:
        parser.error(f"--duration: must be > 0 and <= 30 (got {args.duration:g})")
    if args.repeats < 1:
        parser.error(f"--repeats: must be >= 1 (got {args.repeats})")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build")
    if args.device == "cpu" and args.dtype == "fp16":
        parser.error("--dtype fp16: not supported on --device cpu (use bf16 or fp32)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # transformers prints every sub-model config on load; the figures are the output.
    transformers.logging.set_verbosity_error()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="musicgen-bench-") as scratch:
        model_dir = Path(scratch) / "model"
        print(f"building a random musicgen-{args.arch} checkpoint ...", flush=True)
        build_seconds = build_checkpoint(model_dir, arch=args.arch, device=args.device)
        print(f"built in {build_seconds:.1f} s; measuring ...", flush=True)
        figures: dict[str, Any] = {}
        if args.only in ("all", "handler"):
            figures |= run_benchmark(
                model_dir,
                device=args.device,
                dtype=args.dtype,
                duration=args.duration,
                repeats=args.repeats,
                arch=args.arch,
            )
        if args.only in ("all", "decode"):
            tiny_dir = build_tiny_musicgen(Path(scratch) / "tiny", variant="mono")
            figures |= run_decode_benchmark(
                model_dir,
                tiny_dir,
                device=args.device,
                dtype=args.dtype,
                arch=args.arch,
                overhead_rounds=max(args.repeats, OVERHEAD_ROUNDS),
                loop_rounds=max(args.repeats, LOOP_ROUNDS),
            )
    figures["build_seconds"] = round(build_seconds, 1)
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    print(format_table(figures))
    print(json.dumps(figures, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
