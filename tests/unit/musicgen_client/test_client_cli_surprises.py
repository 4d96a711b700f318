"""The CLI does what its arguments say, or refuses before contacting AWS, in one line."""

from __future__ import annotations

import pytest

from musicgen_client.cli import EXIT_USAGE, build_parser, main
from tests.unit.musicgen_client.cli_arguments import EXPLICIT
from tests.unit.musicgen_client.stub_http_server import CannedResponse, serving


@pytest.fixture
def aws_stub(monkeypatch, aws_credentials):
    """Every AWS call lands on a stub that counts it; tests assert it was never called."""
    canned = CannedResponse(404, b"<html>Not Found</html>")
    with serving(canned) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield canned


def _run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(list(argv)))
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "beat", "-o", "clip.mp3", "--env", "dev"], "-o clip.mp3: the endpoint"),
        (["generate", "beat", "-o", "clip.WAV.txt", "--env", "dev"], "only .wav or .flac"),
        (["fetch", "some-id", "-o", "clip.ogg", "--env", "dev"], "-o clip.ogg: the endpoint"),
        (["fetch", "not an id", "--env", "dev"], "inference_id: must start"),
        (["fetch", "s3://bucket/async-output/x.json", "--env", "dev"], "must name an object"),
        (["generate", "beat", "--overwrite", "--env", "dev"], "--overwrite only applies"),
        (["generate", "beat", "--inference-id", "a b", "--env", "dev"], "inference_id: must"),
        (
            ["generate", "beat", "--temperature", "0", "--env", "dev"],
            "temperature: must be >= 0.05 and <= 10",
        ),
        (
            ["generate", "beat", "--duration", "0", *EXPLICIT],
            "the endpoint's own limit is unknown here: pass --max-duration",
        ),
    ],
)
def test_refused_before_any_aws_call(capsys, tmp_path, monkeypatch, aws_stub, argv, message):
    monkeypatch.chdir(tmp_path)
    code, err = _run(capsys, *argv)
    assert code == EXIT_USAGE
    assert message in err
    assert err.count("\n") == 1, err
    assert aws_stub.requests == []
    assert list(tmp_path.iterdir()) == []


def test_a_melody_that_is_not_audio_is_refused_without_a_repr(capsys, tmp_path, aws_stub):
    notes = tmp_path / "notes.txt"
    notes.write_text("C D E F G")
    code, err = _run(capsys, "generate", "beat", "--melody", str(notes), *EXPLICIT)
    assert code == EXIT_USAGE
    assert f"--melody: {notes} is not a WAV or FLAC file" in err
    assert "object at 0x" not in err
    assert aws_stub.requests == []


def test_a_duration_waits_for_the_stack_limit_instead_of_quoting_a_guess(
    capsys, tmp_path, aws_stub
):
    # With --env the limit comes from the stack: no "<= 3600" before it is read.
    code, err = _run(capsys, "generate", "beat", "--duration", "0", "--env", "dev")
    assert "3600" not in err
    assert aws_stub.requests, "the stack must have been asked for its MaxDurationSeconds"
    assert code != 0


def _command(name: str):
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    return subparsers.choices[name]


def test_fetch_help_lists_only_what_fetch_uses():
    text = _command("fetch").format_help()
    for unused in ("--max-duration", "--success-topic-arn", "--error-topic-arn", "--duration"):
        assert unused not in text
    for used in ("--env", "--stack-name", "--region", "--profile", "--output"):
        assert used in text


@pytest.mark.parametrize(
    ("flag", "default"),
    [
        ("--duration", "default 10"),
        ("--seed", "default: drawn"),
        ("--guidance-scale", "default 3"),
        ("--temperature", "default 1"),
        ("--top-k", "default 250"),
        ("--top-p", "default 0"),
        ("--no-sample", "default: sampling"),
        ("--format", "else wav"),
        ("--normalize", "default peak"),
        ("--notify", "default poll"),
        ("--timeout", "default 1800"),
        ("--invocation-timeout", "default 3600"),
        ("--request-ttl", "default 21600"),
        ("--env", "default dev"),
        ("--inference-id", "default: a new unique id"),
        ("--region", "default: your AWS configuration's"),
    ],
)
def test_generate_help_shows_each_default(flag, default):
    generate = _command("generate")
    (action,) = [action for action in generate._actions if flag in action.option_strings]
    assert default in action.help
    assert default in " ".join(generate.format_help().split())


def test_an_unwritable_output_folder_is_one_line(capsys, tmp_path, aws_stub):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "calm piano"}\n')
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, err = _run(capsys, "batch", str(prompts), "-o", f"{blocker}/clips/", *EXPLICIT)
    assert code == 1
    assert err == f"musicgen: error: cannot write {blocker}/clips: Not a directory\n"
    assert aws_stub.requests == []
