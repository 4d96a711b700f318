"""Argument errors: each exits 2 with a message naming the problem, before any AWS call."""

from __future__ import annotations

import pytest

from musicgen_client.cli import EXIT_USAGE, main
from tests.unit.musicgen_client.cli_arguments import EXPLICIT


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch, aws_credentials):
    # Any AWS call would go here and fail loudly instead of reaching a real account.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def _run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        code = main(list(argv))
        raise SystemExit(code)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "beat", "--duration", "-1", *EXPLICIT], "duration: must be > 0"),
        (["generate", "beat", "--seed", str(2**32), *EXPLICIT], "seed: must be"),
        (["generate", "beat", "--temperature", "0", *EXPLICIT], "temperature: must be >= 0.05"),
        (["generate", "beat", "--top-p", "1.5", *EXPLICIT], "top_p: must be"),
        (
            ["generate", "beat", "--guidance-scale", "0.5", *EXPLICIT],
            "guidance_scale: must be >= 1",
        ),
        (["generate", " ", *EXPLICIT], "prompt: must not be blank"),
        (["generate", *[f"p{n}" for n in range(9)], *EXPLICIT], "prompts: must hold 1 to 8"),
        (["generate", "beat", "--max-duration", "5", "--duration", "6", *EXPLICIT], "<= 5"),
        (
            ["generate", "beat", "--format", "flac", "-o", "beat.wav", *EXPLICIT],
            "--format flac contradicts",
        ),
        (["generate", "beat", "--melody", "/no/such.wav", *EXPLICIT], "--melody: cannot read"),
        (["generate", "beat", "--endpoint-name", "x"], "--endpoint-name also needs --input-s3-uri"),
        (
            ["generate", "beat", "--output-s3-uri", "s3://b/o/"],
            "only apply together with --endpoint-name",
        ),
        (
            ["generate", "beat", "--input-s3-uri", "nope", *EXPLICIT[:2], *EXPLICIT[4:]],
            "input_s3_uri",
        ),
        (["generate", "beat", "--inference-id", "bad id", *EXPLICIT], "inference_id: must start"),
        (
            ["generate", "beat", "--request-ttl", "5", *EXPLICIT],
            "request_ttl_seconds: must be 60-21600",
        ),
        (["fetch", "a", "b", "-o", "one.wav", *EXPLICIT], "several ids need a folder"),
        (["fetch", "not an id", *EXPLICIT], "inference_id: must start"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, err = _run(capsys, *argv)
    assert code == EXIT_USAGE
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["generate"],
        ["generate", "beat", "--notify", "email"],
        ["generate", "beat", "--timeout", "0"],
        ["generate", "beat", "--format", "mp3"],
        ["fetch"],
    ],
)
def test_argparse_errors_exit_2(capsys, argv):
    code, err = _run(capsys, *argv)
    assert code == EXIT_USAGE
    assert "usage: musicgen" in err
