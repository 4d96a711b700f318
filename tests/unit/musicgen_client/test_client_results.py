from __future__ import annotations

import base64
import json

import pytest

from musicgen_client.audio_info import describe_audio
from musicgen_client.client import failure_text
from musicgen_client.errors import OutputFormatError
from musicgen_client.results import parse_output


def _json_response(*clips: dict) -> bytes:
    return json.dumps(
        {
            "model_id": "facebook/musicgen-small",
            "sample_rate": 32000,
            "clips": list(clips),
            "generation_seconds": 4.5,
            "warnings": ["bucket_name is ignored"],
        }
    ).encode()


def _clip(index: int, audio: bytes, *, prompt: str, seed: int, fmt: str = "wav") -> dict:
    return {
        "index": index,
        "prompt": prompt,
        "seed": seed,
        "duration": 99.0,  # what the header says wins over what was reported
        "channels": 1,
        "format": fmt,
        "audio": base64.b64encode(audio).decode(),
    }


def test_json_response_gives_typed_clips_in_index_order(make_wav, make_flac):
    body = _json_response(
        _clip(1, make_flac(seconds=0.5), prompt="jazz trio", seed=8, fmt="flac"),
        _clip(0, make_wav(seconds=1.25), prompt="lofi beat", seed=7),
    )
    result = parse_output(body, inference_id="abc", content_type="application/json")
    assert result.inference_id == "abc"
    assert result.model_id == "facebook/musicgen-small"
    assert result.generation_seconds == 4.5
    assert result.warnings == ("bucket_name is ignored",)
    first, second = result.clips
    assert (first.index, first.prompt, first.seed, first.format) == (0, "lofi beat", 7, "wav")
    assert first.duration == pytest.approx(1.25)
    assert (first.sample_rate, first.channels, first.suffix) == (32000, 1, ".wav")
    assert first.audio == make_wav(seconds=1.25)
    assert (second.index, second.prompt, second.seed, second.format) == (1, "jazz trio", 8, "flac")
    assert (second.channels, second.duration) == (2, pytest.approx(0.5))


def test_json_is_recognised_without_a_content_type(make_wav):
    body = _json_response(_clip(0, make_wav(seconds=0.1), prompt="p", seed=1))
    assert parse_output(body, inference_id="x").clips[0].seed == 1


@pytest.mark.parametrize("content_type", ["audio/wav", None, "binary/octet-stream"])
def test_bare_wav_output(make_wav, content_type):
    audio = make_wav(seconds=2.0, sample_rate=32000, channels=2)
    result = parse_output(audio, inference_id="x", content_type=content_type)
    (clip,) = result.clips
    assert (clip.format, clip.sample_rate, clip.channels) == ("wav", 32000, 2)
    assert clip.duration == pytest.approx(2.0)
    assert clip.seed is None and clip.prompt is None
    assert clip.audio == audio


def test_bare_flac_output(make_flac):
    audio = make_flac(seconds=0.75, channels=2)
    (clip,) = parse_output(audio, inference_id="x", content_type="audio/flac").clips
    assert (clip.format, clip.channels) == ("flac", 2)
    assert clip.duration == pytest.approx(0.75)


def test_flac_header_facts_match_soundfile(make_flac):
    audio = make_flac(seconds=0.3, sample_rate=44100, channels=1)
    info = describe_audio(audio)
    assert (info.sample_rate, info.channels, info.frames) == (44100, 1, round(0.3 * 44100))


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"not audio", "text/plain", "expected the JSON response or a WAV/FLAC file"),
        (b"{broken", "application/json", "not valid JSON"),
        (b"[]", "application/json", "expected a JSON object"),
        (b'{"clips": []}', "application/json", "clips: must hold at least one clip"),
        (b'{"clips": "x"}', "application/json", "clips: expected list"),
        (
            b'{"clips": [{"audio": "!!"}]}',
            "application/json",
            r"clips\[0\]: audio: not valid base64",
        ),
        (b'{"clips": [{"audio": "aGVsbG8="}]}', "application/json", "expected a WAV or FLAC"),
    ],
)
def test_malformed_outputs_are_errors_not_empty_results(body, content_type, message):
    with pytest.raises(OutputFormatError, match=message):
        parse_output(body, inference_id="x", content_type=content_type)


def test_failure_text_prefers_the_model_server_message():
    body = json.dumps(
        {"code": 400, "type": "PredictionException", "message": "duration: must be > 0"}
    )
    assert failure_text(body.encode()) == "duration: must be > 0"
    assert failure_text(b"  plain failure text\n") == "plain failure text"
    assert failure_text(b'["odd"]') == '["odd"]'
