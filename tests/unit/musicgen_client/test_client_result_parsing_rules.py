"""parse_output at its edges: which parser the content type picks, defaults, exact errors."""

from __future__ import annotations

import base64
import json

import pytest

from musicgen_client.errors import OutputFormatError
from musicgen_client.results import parse_output


def _encoded(audio: bytes) -> str:
    return base64.b64encode(audio).decode()


@pytest.mark.parametrize("content_type", ["Application/JSON; charset=utf-8", " application/json"])
def test_the_json_content_type_is_read_case_and_space_insensitively(make_wav, content_type):
    body = b'  \n{"clips": [{"audio": "%s"}]}' % _encoded(make_wav(seconds=0.5)).encode()
    result = parse_output(body, inference_id="a", content_type=content_type)
    assert result.clips[0].duration == pytest.approx(0.5)


def test_json_with_leading_whitespace_is_sniffed_without_a_content_type(make_wav):
    body = b'\n {"clips": [{"audio": "%s"}]}' % _encoded(make_wav(seconds=0.25)).encode()
    assert parse_output(body, inference_id="a").clips[0].duration == pytest.approx(0.25)


def test_an_audio_content_type_never_parses_json(make_wav):
    body = json.dumps({"clips": [{"audio": _encoded(make_wav(seconds=0.25))}]}).encode()
    with pytest.raises(OutputFormatError) as caught:
        parse_output(body, inference_id="a", content_type="audio/wav")
    assert str(caught.value) == (
        "output of a: expected the JSON response or a WAV/FLAC file (content type 'audio/wav'), "
        'got bytes starting b\'{"clips": [{"aud\''
    )


def test_fields_the_response_leaves_out_get_their_defaults(make_wav):
    body = json.dumps({"clips": [{"audio": _encoded(make_wav(seconds=0.5))}]}).encode()
    result = parse_output(body, inference_id="a", content_type="application/json")
    assert (result.model_id, result.generation_seconds, result.warnings) == (None, None, ())
    (clip,) = result.clips
    assert (clip.index, clip.prompt, clip.seed) == (0, None, None)


def test_reported_numbers_are_converted(make_wav):
    body = json.dumps(
        {
            "clips": [
                {"audio": _encoded(make_wav(seconds=0.5)), "seed": "12", "index": "1"},
                {"audio": _encoded(make_wav(seconds=0.25)), "index": 0},
            ],
            "generation_seconds": 3,
            "warnings": [7],
        }
    ).encode()
    result = parse_output(body, inference_id="a", content_type="application/json")
    assert result.generation_seconds == 3.0 and isinstance(result.generation_seconds, float)
    assert result.warnings == ("7",)
    assert [(clip.index, clip.seed) for clip in result.clips] == [(0, None), (1, 12)]


def test_a_non_numeric_generation_time_is_dropped(make_wav):
    body = json.dumps(
        {"clips": [{"audio": _encoded(make_wav(seconds=0.5))}], "generation_seconds": "slow"}
    ).encode()
    assert parse_output(body, inference_id="a").generation_seconds is None


def test_a_bare_audio_result_is_one_clip_without_metadata(make_wav):
    result = parse_output(make_wav(seconds=0.5), inference_id="bare", content_type="audio/wav")
    assert result.inference_id == "bare"
    assert (result.model_id, result.generation_seconds, result.warnings) == (None, None, ())
    (clip,) = result.clips
    assert (clip.index, clip.prompt, clip.seed, clip.sample_rate) == (0, None, None, 32000)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1]", "output of a: expected a JSON object"),
        (b'{"clips": []}', "output of a: clips: must hold at least one clip"),
        (b'{"clips": {"a": 1}}', "output of a: clips: expected list, got {'a': 1}"),
        (b'{"clips": [3]}', "output of a clips[0]: expected a JSON object"),
        (b'{"clips": [{"audio": 3}]}', "output of a clips[0]: audio: expected str, got 3"),
    ],
)
def test_malformed_json_is_refused_with_its_location(body, message):
    with pytest.raises(OutputFormatError) as caught:
        parse_output(body, inference_id="a", content_type="application/json")
    assert str(caught.value) == message


def test_invalid_json_and_base64_name_the_inference():
    with pytest.raises(OutputFormatError, match=r"^output of a: not valid JSON \("):
        parse_output(b"{oops", inference_id="a", content_type="application/json")
    with pytest.raises(
        OutputFormatError, match=r"^output of a clips\[0\]: audio: not valid base64"
    ):
        parse_output(b'{"clips": [{"audio": "@@"}]}', inference_id="a")


def test_only_the_media_type_before_the_first_parameter_counts():
    with pytest.raises(OutputFormatError) as caught:
        parse_output(b"[1]", inference_id="a", content_type="application/json; charset=utf-8; x=y")
    assert str(caught.value) == "output of a: expected a JSON object"
