"""Regenerate the `cdk diff` fixtures of the delivery tests from this app (`make diff-fixtures`).

Each fixture is what the pinned CDK CLI prints for `cdk diff MusicGen-<env> --template <base>`
where the base is this checkout's synthesis (or an empty template, for a new environment) and
the head is the same app with one pull-request-like change (diff_fixture_app.py), exactly as
the pull-request workflow compares a branch without an AWS role (diff_against_base.py, whose
functions this uses). Needs the synth dependencies (.venv, node_modules); no AWS credentials.
Writes fixtures/app_diffs/*.txt (all, or the ones named on the command line) and its README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = REPO_ROOT / ".github" / "scripts"
OUTPUT = Path(__file__).resolve().parent / "fixtures" / "app_diffs"
FIXTURE_APP = ".venv/bin/python tests/unit/delivery/diff_fixture_app.py"
# Two synths at a time: each is one Node and one Python process, mostly busy.
PARALLEL_SYNTHS = 2


@dataclass(frozen=True)
class Fixture:
    name: str
    environment: str
    head: str | None
    base: str
    about: str
    colour: bool = False


FIXTURES = (
    Fixture("instance_type", "dev", "instance_type", "app", "dev moves to another instance type"),
    Fixture(
        "iam_statement", "dev", "iam_statement", "app", "the endpoint policy gains one S3 action"
    ),
    Fixture(
        "iam_statement_colour",
        "dev",
        "iam_statement",
        "app",
        "the same, with `FORCE_COLOR=1` (what the CLI prints when it believes it has a terminal)",
        colour=True,
    ),
    Fixture(
        "security_categories",
        "dev",
        "security_categories",
        "app",
        "a trust-policy statement, a key-policy statement, KMS encryption on the async bucket, "
        "a KMS key for async results, public access loosened on the model bucket, network "
        "isolation flipped",
    ),
    Fixture(
        "bucket_replacement",
        "dev",
        "bucket_replacement",
        "app",
        "the model bucket gets a fixed name (replaced); the access-log bucket and the topics' "
        "KMS key get new logical ids (orphaned: both are retained)",
    ),
    Fixture(
        "tags_description",
        "dev",
        "tags_description",
        "app",
        "a cost tag on every resource, a new stack description and endpoint-role description",
    ),
    Fixture(
        "environment_added",
        "staging",
        "environment_added",
        "empty",
        "a new environment `staging` (a copy of dev) that the base branch does not have",
    ),
    Fixture(
        "metadata_only",
        "dev",
        None,
        "no-path-metadata",
        "the app unchanged, base synthesized with `--path-metadata false`: only `Metadata` differs",
    ),
    Fixture("no_differences", "dev", None, "app", "the app unchanged"),
)


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commit() -> str:
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return described.stdout.strip() or "unknown"


def regenerate(work: Path, fixtures: tuple[Fixture, ...] = FIXTURES) -> list[Path]:
    tool = _load("diff_against_base")
    bases = {(f.environment, f.base) for f in fixtures if f.base != "empty"}
    heads = {(f.environment, f.head) for f in fixtures}

    def synth_base(key: tuple[str, str]) -> Path:
        environment, kind = key
        return tool.synthesize(
            REPO_ROOT,
            environment,
            work / f"base-{environment}-{kind}",
            path_metadata=kind != "no-path-metadata",
        )

    def synth_head(key: tuple[str, str | None]) -> Path:
        environment, change = key
        out = work / f"head-{environment}-{change or 'app'}"
        if change:
            extra = {"DIFF_FIXTURE_CHANGE": change}
            tool.synthesize(REPO_ROOT, environment, out, app=FIXTURE_APP, extra_env=extra)
        else:
            tool.synthesize(REPO_ROOT, environment, out)
        return out

    with ThreadPoolExecutor(max_workers=PARALLEL_SYNTHS) as pool:
        base_jobs = {key: pool.submit(synth_base, key) for key in sorted(bases)}
        head_jobs = {key: pool.submit(synth_head, key) for key in sorted(heads, key=str)}
        templates = {key: job.result() for key, job in base_jobs.items()}
        assemblies = {key: job.result() for key, job in head_jobs.items()}

    OUTPUT.mkdir(parents=True, exist_ok=True)
    written = []
    for fixture in fixtures:
        base = (
            tool.empty_template(work)
            if fixture.base == "empty"
            else templates[(fixture.environment, fixture.base)]
        )
        colour = {"FORCE_COLOR": "1"} if fixture.colour else {"FORCE_COLOR": "0", "NO_COLOR": "1"}
        result = tool.diff(
            REPO_ROOT,
            fixture.environment,
            assemblies[(fixture.environment, fixture.head)],
            base,
            extra_env=colour,
        )
        if result.returncode != 0:
            sys.exit(f"cdk diff for {fixture.name} failed:\n{result.stdout[-4000:]}")
        path = OUTPUT / f"{fixture.name}.txt"
        path.write_text(result.stdout, encoding="utf-8")
        written.append(path)
    _write_index()
    return written


def _write_index() -> None:
    rows = "\n".join(
        f"| `{f.name}.txt` | `MusicGen-{f.environment}` | {f.about} |" for f in FIXTURES
    )
    (OUTPUT / "README.md").write_text(
        "# `cdk diff` of this app, for the pull-request comment tests\n\n"
        "Written by `make diff-fixtures` (tests/unit/delivery/regenerate_diff_fixtures.py), "
        f"last at `{_commit()}`: the pinned CDK CLI's `cdk diff --template`, base = this app's "
        "synthesis, head = the app with one change (tests/unit/delivery/diff_fixture_app.py). "
        "Regenerate them after changing the stack; do not edit them by hand.\n\n"
        "| file | stack | change |\n|---|---|---|\n" + rows + "\n",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        help=f"only these fixtures (default: all of {[f.name for f in FIXTURES]})",
    )
    args = parser.parse_args(argv)
    unknown = set(args.names) - {f.name for f in FIXTURES}
    if unknown:
        parser.error(f"unknown fixtures {sorted(unknown)}; known: {[f.name for f in FIXTURES]}")
    selected = tuple(f for f in FIXTURES if not args.names or f.name in args.names)
    with tempfile.TemporaryDirectory(prefix="diff-fixtures-") as work:
        for path in regenerate(Path(work), selected):
            print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
