"""Melody conditioning follows the melody: each window hears it from its own start, looped."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from tests.unit.inference_code.handler_test_audio import audio_file_base64, sine

RATE = 32_000
# Pitch classes counted from C, and a tone of each.
NOTES = {9: 440.0, 0: 261.63, 4: 329.63}
SEGMENT_SECONDS = 1.0
CHROMA_HOP_SECONDS = 4096 / RATE
HALF_STFT_SECONDS = 16384 / RATE / 2


def _spy_windows(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each window's conditioning, as either decoder receives it."""
    from inference_code import windowed_generation

    calls: list[dict[str, Any]] = []
    real = windowed_generation.decode_window

    def spy(loaded: Any, conditioning: dict[str, Any], *args: Any) -> Any:
        calls.append(conditioning)
        return real(loaded, conditioning, *args)

    monkeypatch.setattr(windowed_generation, "decode_window", spy)
    return calls


def _three_notes() -> np.ndarray:
    return np.concatenate([sine(frequency, SEGMENT_SECONDS) for frequency in NOTES.values()])


def _expected_pitch(seconds: float) -> int | None:
    """The note sounding over the whole STFT window centred at `seconds` of the looped melody."""
    length = SEGMENT_SECONDS * len(NOTES)
    first = (seconds - HALF_STFT_SECONDS) % length
    last = first + 2 * HALF_STFT_SECONDS
    if int(first // SEGMENT_SECONDS) != int(last // SEGMENT_SECONDS) or last >= length:
        return None
    return list(NOTES)[int(first // SEGMENT_SECONDS)]


def test_each_window_is_conditioned_on_the_melody_at_its_offset(
    hooks: ModuleType, short_window_melody_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = short_window_melody_model
    calls = _spy_windows(monkeypatch)
    payload = {
        "prompt": "calm piano",
        "duration": 3.0,
        "seed": 2,
        "melody": audio_file_base64(_three_notes()),
    }
    hooks.predict_fn(hooks.input_fn(json.dumps(payload), "application/json"), model)
    # A 73-frame window moving on by 43 frames: windows start 0, 0.86 and 1.72 s in.
    assert len(calls) == 3
    checked = 0
    for index, call in enumerate(calls):
        start = index * 43 / 50
        chroma = call["input_features"][0]
        assert chroma.shape == (235, 12)  # 30 s of melody for every window, looped
        for frame, pitch in enumerate(chroma.argmax(dim=-1).tolist()):
            expected = _expected_pitch(start + frame * CHROMA_HOP_SECONDS)
            if expected is not None:
                assert pitch == expected, (index, frame)
                checked += 1
    assert checked > 3 * 100
    assert not torch.equal(calls[0]["input_features"], calls[1]["input_features"])


def test_a_short_melody_conditions_every_frame(
    hooks: ModuleType, melody_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy_windows(monkeypatch)
    payload = {
        "prompt": "calm piano",
        "duration": 0.5,
        "seed": 2,
        "melody": audio_file_base64(sine(440.0, 5.0)),
    }
    hooks.predict_fn(hooks.input_fn(json.dumps(payload), "application/json"), melody_model)
    (call,) = calls
    pitches = call["input_features"][0].argmax(dim=-1)
    assert pitches.shape == (235,)  # the model's 30 s of chroma, not only the melody's 5 s
    assert torch.all(pitches == 9)  # A throughout: no held C after the melody ends


def test_window_chroma_loops_from_the_offset(melody_model: Any) -> None:
    from inference_code.melody_chroma import melody_chroma, window_chroma

    settings = melody_model.chroma
    melody = _three_notes()
    later = window_chroma(melody, settings, start_seconds=1.0)
    rotated = np.concatenate([melody[RATE:], melody[:RATE]])
    assert torch.equal(later, window_chroma(rotated, settings, start_seconds=0.0))
    looped = np.tile(melody, 10)
    assert torch.equal(
        window_chroma(melody, settings, start_seconds=0.0), melody_chroma(looped, settings)
    )
