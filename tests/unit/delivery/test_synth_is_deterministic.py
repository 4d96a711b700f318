"""Two synths of the whole app with no source change give byte-identical templates.

Otherwise every pull request's `cdk diff` would show changes nobody made. The two synths run
side by side in two copies of the checkout: one pristine, one carrying what a working copy
collects (`__pycache__`, test output, an old `cdk.out`). Asset hashes end up in the templates,
so the comparison also proves those files stay out of the assets, and that no absolute path of
the checkout leaks into a template.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.unit.delivery.delivery_paths import REPO_ROOT

# What the CDK CLI adds to the context of every synth (cdk.json's context comes on top).
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
}
SYNTH_TIMEOUT_SECONDS = 300


def _source_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


def _copy_checkout(destination: Path) -> Path:
    for name in _source_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    return destination


def _litter(checkout: Path) -> None:
    """What running tests and synths leaves in a working copy."""
    for folder in {path.parent for path in checkout.rglob("*.py")}:
        cache = folder / "__pycache__"
        cache.mkdir(exist_ok=True)
        (cache / "stale.cpython-311.pyc").write_bytes(b"\x00 not source")
    (checkout / "tests" / "last-run.log").write_text("output of an earlier test run\n")
    (checkout / "cdk.out").mkdir(exist_ok=True)
    (checkout / "cdk.out" / "stale.template.json").write_text("{}")


def _start_synth(checkout: Path, outdir: Path, *, write_bytecode: bool) -> subprocess.Popen[str]:
    context = json.loads((checkout / "cdk.json").read_text())["context"]
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({**CLI_CONTEXT, **context}),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str], label: str) -> None:
    try:
        output, _ = process.communicate(timeout=SYNTH_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, f"synth of the {label} checkout failed:\n{output[-4000:]}"


def test_two_synths_give_byte_identical_templates(tmp_path: Path) -> None:
    pristine = _copy_checkout(tmp_path / "pristine")
    littered = _copy_checkout(tmp_path / "littered")
    _litter(littered)
    first, second = tmp_path / "first.out", tmp_path / "second.out"

    running = [
        (_start_synth(pristine, first, write_bytecode=False), "pristine"),
        (_start_synth(littered, second, write_bytecode=True), "littered"),
    ]
    for process, label in running:
        _finish(process, label)

    templates = sorted(path.name for path in first.glob("*.template.json"))
    assert templates, "the app synthesized no template"
    assert "MusicGen-dev.template.json" in templates
    assert sorted(path.name for path in second.glob("*.template.json")) == templates
    differing = [
        name for name in templates if (first / name).read_bytes() != (second / name).read_bytes()
    ]
    assert not differing, f"templates differ between two synths of the same source: {differing}"
    for name in templates:
        text = (first / name).read_text()
        assert str(tmp_path) not in text, f"{name} holds an absolute path of the checkout"
