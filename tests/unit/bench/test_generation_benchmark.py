"""The benchmark's core on a tiny model (figures only, nothing timed), and its checkpoint shapes."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch
from transformers import MusicgenConfig, MusicgenForConditionalGeneration

from bench.generation_benchmark import parse_args, run_benchmark, run_decode_benchmark
from bench.musicgen_checkpoint import (
    decoder_config,
    encodec_32khz_config,
    t5_base_config,
    word_level_tokenizer,
)
from musicgen_local.tiny_musicgen import build_tiny_musicgen

REQUIRED_KEYS = {
    "device",
    "arch",
    "handler_tokens_per_s",
    "bare_tokens_per_s",
    "handler_overhead_pct",
    "seed_baseline_ratio",
    "batch4_vs_sequential_ratio",
    "load_seconds",
    "peak_rss_mb",
}


@pytest.fixture
def repo_handler() -> None:
    """Import the handler package, as the handler tests do, not a temp copy of it."""
    importlib.import_module("inference_code.inference")


@pytest.mark.usefixtures("repo_handler")
@pytest.mark.parametrize(
    ("dtype", "loaded_dtype"),
    # bf16 gives the seed-sample baseline its own fp32 copy, measured after the handler.
    [("auto", "float32"), ("bf16", "bfloat16")],
)
def test_core_reports_every_figure_for_a_tiny_model(
    tmp_path: Path, dtype: str, loaded_dtype: str
) -> None:
    model_dir = build_tiny_musicgen(tmp_path / "model", variant="mono")

    figures = run_benchmark(
        model_dir, device="cpu", dtype=dtype, duration=0.2, repeats=1, arch="tiny"
    )

    assert figures.keys() >= REQUIRED_KEYS
    assert (figures["device"], figures["arch"], figures["dtype"]) == ("cpu", "tiny", loaded_dtype)
    # 0.2 s is 10 frames at 50 per second; the handler may add a few for the delay pattern.
    assert figures["tokens_per_request"] >= 10
    for name in REQUIRED_KEYS - {"device", "arch", "handler_overhead_pct"}:
        assert math.isfinite(figures[name]) and figures[name] > 0, name
    assert math.isfinite(figures["handler_overhead_pct"])
    # The bare baseline replays the handler's generate call: the figures are the transformers
    # decoder's, whatever the handler's default.
    assert figures["handler_decoder"] == "transformers"


@pytest.mark.usefixtures("repo_handler")
def test_decode_core_reports_the_loop_against_generate(tmp_path: Path) -> None:
    tiny_dir = build_tiny_musicgen(tmp_path / "model", variant="mono")

    figures = run_decode_benchmark(
        tiny_dir,
        tiny_dir,
        device="cpu",
        dtype="auto",
        arch="tiny",
        overhead_rounds=1,
        loop_rounds=1,
    )

    for name in (
        "decode_overhead_ratio",
        "decode_generate_ms_per_step",
        "decode_loop_ms_per_step",
        "loop_vs_generate_tiny",
        "loop_tokens_per_s_tiny",
        "generate_tokens_per_s_tiny",
        "loop_batch4_vs_sequential_ratio",
    ):
        assert math.isfinite(figures[name]) and figures[name] > 0, name
    assert math.isfinite(figures["loop_vs_generate_tiny_noise"])
    assert figures["decode_dtype"] == "float32"


@pytest.mark.parametrize(
    ("arch", "decoder_parameters"),
    [("small", 421_681_152), ("medium", 1_840_702_464), ("large", 3_259_576_320)],
)
def test_checkpoint_has_the_hub_models_shapes(arch: str, decoder_parameters: int) -> None:
    tokenizer = word_level_tokenizer()
    config = MusicgenConfig.from_sub_models_config(
        t5_base_config(tokenizer.pad_token_id, tokenizer.eos_token_id),
        encodec_32khz_config(),
        decoder_config(arch),
    )
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = MusicgenForConditionalGeneration(config)

    assert sum(p.numel() for p in model.decoder.parameters()) == decoder_parameters
    assert sum(p.numel() for p in model.text_encoder.parameters()) == 109_628_544
    assert model.config.audio_encoder.frame_rate == 50
    assert model.decoder.config.num_codebooks == 4
    assert model.decoder.config.vocab_size == 2048


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "45"], "--duration: must be > 0 and <= 30 (got 45)"),
        (["--repeats", "0"], "--repeats: must be >= 1 (got 0)"),
        (["--arch", "huge"], "--arch"),
        (["--only", "loop"], "--only: invalid choice: 'loop'"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)

    assert message in capsys.readouterr().err


def test_defaults_serve_what_model_fn_serves_with_a_short_cpu_clip() -> None:
    args = parse_args([])

    assert (args.device, args.dtype, args.duration) == ("cpu", "auto", 2.0)
