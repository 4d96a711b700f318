"""Loudness and audio file helpers of the handler."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.inference_code.handler_test_audio import sine


def test_peak_and_rms_targets_and_silence() -> None:
    from inference_code.loudness import PEAK_TARGET, RMS_TARGET, normalize

    audio = np.stack([sine(200, 1.0) * 0.1, sine(300, 1.0) * 0.05])
    peak = normalize(audio, "peak")
    assert np.abs(peak).max() == pytest.approx(PEAK_TARGET)
    assert peak[1].max() / peak[0].max() == pytest.approx(0.5, rel=1e-3)  # balance kept
    rms = normalize(audio, "rms")
    assert np.sqrt(np.mean(rms**2)) == pytest.approx(RMS_TARGET, rel=1e-3)
    assert normalize(audio, "none") is audio
    silence = np.zeros((1, 100), dtype=np.float32)
    np.testing.assert_array_equal(normalize(silence, "peak"), silence)
    spiky = np.zeros((1, 1000), dtype=np.float32)
    spiky[0, 0] = 1.0
    assert np.abs(normalize(spiky, "rms")).max() <= 1.0


def test_decode_resamples_and_matches_channels() -> None:
    import base64

    from inference_code.audio_codec import decode_audio, encode_audio
    from tests.unit.inference_code.handler_test_audio import audio_file_base64

    stereo = np.stack([sine(440, 1.0, rate=48_000), sine(660, 1.0, rate=48_000)], axis=1)
    data = base64.b64decode(audio_file_base64(stereo, rate=48_000, audio_format="FLAC"))
    mono = decode_audio(data, field="x", sampling_rate=32_000, channels=1, max_seconds=2)
    assert mono.shape == (1, 32_000)
    both = decode_audio(data, field="x", sampling_rate=32_000, channels=2, max_seconds=2)
    assert both.shape == (2, 32_000)
    wav = encode_audio(both, sampling_rate=32_000, audio_format="wav")
    again = decode_audio(wav, field="x", sampling_rate=32_000, channels=2, max_seconds=2)
    np.testing.assert_allclose(again, np.clip(both, -1, 1), atol=1e-4)
