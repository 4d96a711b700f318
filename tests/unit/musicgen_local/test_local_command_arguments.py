"""`make local`'s mistakes are one line naming the option, before anything starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from musicgen_local.command import main


def test_a_folder_without_a_checkpoint_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--model-dir", str(tmp_path), "--port", "0", "--sagemaker-port", "0"])

    assert status == 1
    assert capsys.readouterr().err == (
        f"error: --model-dir: must hold a checkpoint's config.json (got {tmp_path})\n"
    )


@pytest.mark.parametrize("option", ["--port", "--sagemaker-port"])
def test_a_port_in_use_is_named(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        others = {"--port": "0", "--sagemaker-port": "0", option: str(port)}

        status = main([item for pair in others.items() for item in pair])

    assert status == 1
    assert f"error: {option}: port {port} is in use" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "Prod Env"], "--env: must be 1-32 lower-case letters"),
        (["--port", "70000"], "--port: must be 0 (any free port) to 65535 (got 70000)"),
        (["--max-duration", "0"], "--max-duration: must be > 0 and <= 3600 (got 0)"),
    ],
)
def test_bad_options_stop_argument_parsing(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)

    assert exited.value.code == 2
    assert message in capsys.readouterr().err
