"""Without the stack's MMS_* limits the same 30 s stereo response fails: the setting matters.

The serving test shows the response is larger than the default cap and is served with the limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from constructs_lib.container_environment import model_server_environment
from musicgen_local.model_server import running_model_server
from tests.integration.serving.serving_client import MAX_DURATION_SECONDS, invoke

pytestmark = pytest.mark.integration

SIZE_LIMITS = ("MMS_MAX_RESPONSE_SIZE", "MMS_MAX_REQUEST_SIZE")


@pytest.fixture(scope="module")
def unlimited_server_url(stereo_model_dir: Path) -> Iterator[str]:
    environment = model_server_environment(
        model_id="tiny/musicgen-stereo", max_duration_seconds=MAX_DURATION_SECONDS
    )
    assert set(SIZE_LIMITS) <= environment.keys()
    for name in SIZE_LIMITS:
        del environment[name]
    with running_model_server(stereo_model_dir, env=environment) as url:
        yield url


def test_thirty_second_stereo_response_fails_at_the_default_cap(
    unlimited_server_url: str,
) -> None:
    prompts = ["calm lofi beat with piano", "upbeat electronic dance track"]

    response = invoke(
        unlimited_server_url,
        {"prompts": prompts, "duration": MAX_DURATION_SECONDS, "seed": 3},
    )

    # The frontend refuses the worker's oversized reply ("Message size exceed limit" in its log)
    # and drops the worker, which then reloads the model: a 500, never the clips.
    assert response.status_code == 500, response.text[:500]
    assert response.json()["message"] == "Worker died."
