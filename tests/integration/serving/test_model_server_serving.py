"""The real model server of the HF inference container serving inference_code/.

The server runs with exactly the environment the stack deploys
(`model_server_environment(...)`) on a tiny stereo model.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import soundfile

from constructs_lib.container_environment import model_server_environment
from musicgen_local.model_server import running_model_server
from tests.integration.serving.serving_client import (
    DEFAULT_MMS_MAX_BODY_BYTES,
    MAX_DURATION_SECONDS,
    SAMPLE_RATE,
    decode_clip,
    invoke,
)

pytestmark = pytest.mark.integration

PROMPT = "calm lofi beat with piano"
MODEL_ID = "tiny/musicgen-stereo"


@pytest.fixture(scope="module")
def server_url(stereo_model_dir: Path) -> Iterator[str]:
    environment = model_server_environment(
        model_id=MODEL_ID, max_duration_seconds=MAX_DURATION_SECONDS
    )
    with running_model_server(stereo_model_dir, env=environment) as url:
        yield url


def test_ping_is_healthy(server_url: str) -> None:
    response = requests.get(f"{server_url}/ping", timeout=10)

    assert response.status_code == 200


def test_json_response_carries_a_stereo_clip_of_the_asked_length(server_url: str) -> None:
    response = invoke(server_url, {"prompt": PROMPT, "duration": 1.5, "seed": 7})

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert (body["model_id"], body["sample_rate"]) == (MODEL_ID, SAMPLE_RATE)
    [clip] = body["clips"]
    assert (clip["seed"], clip["channels"], clip["format"]) == (7, 2, "wav")
    samples, rate = decode_clip(clip)
    assert rate == SAMPLE_RATE
    assert samples.shape == (round(1.5 * SAMPLE_RATE), 2)
    assert samples.std() > 0


def test_accept_wav_returns_the_bare_file(server_url: str) -> None:
    response = invoke(server_url, {"prompt": PROMPT, "duration": 0.7}, accept="audio/wav")

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("audio/wav")
    assert response.content[:4] == b"RIFF"
    info = soundfile.info(io.BytesIO(response.content))
    assert (info.samplerate, info.channels, info.frames) == (
        SAMPLE_RATE,
        2,
        round(0.7 * SAMPLE_RATE),
    )
    assert info.subtype == "PCM_16"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"prompt": PROMPT, "duration": 45}, "duration"),
        ({"prompt": PROMPT, "temperature": 0}, "temperature"),
        ({"prompt": PROMPT, "colour": "blue"}, "colour"),
        ({"prompts": []}, "prompts"),
        ('{"prompt": ', "body"),
    ],
)
def test_bad_request_is_a_4xx_naming_the_field(
    server_url: str, payload: dict[str, object] | str, field: str
) -> None:
    response = invoke(server_url, payload)

    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["message"]


def test_thirty_second_stereo_response_beyond_the_default_cap_is_served(server_url: str) -> None:
    prompts = [PROMPT, "upbeat electronic dance track"]
    response = invoke(server_url, {"prompts": prompts, "duration": MAX_DURATION_SECONDS, "seed": 3})

    assert response.status_code == 200, response.text[:2000]
    assert len(response.content) > DEFAULT_MMS_MAX_BODY_BYTES
    clips = response.json()["clips"]
    assert [clip["prompt"] for clip in clips] == prompts
    for clip in clips:
        samples, rate = decode_clip(clip)
        assert rate == SAMPLE_RATE
        assert samples.shape == (MAX_DURATION_SECONDS * SAMPLE_RATE, 2)


def test_server_still_serves_after_errors(server_url: str) -> None:
    rejected = invoke(server_url, {"prompt": PROMPT, "top_p": 2})
    served = invoke(server_url, {"prompt": PROMPT, "duration": 0.5, "seed": 11})

    assert 400 <= rejected.status_code < 500
    assert served.status_code == 200, served.text
    [clip] = served.json()["clips"]
    samples, _ = decode_clip(clip)
    assert samples.shape == (round(0.5 * SAMPLE_RATE), 2)
