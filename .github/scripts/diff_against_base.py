"""`cdk diff` of one environment against the base branch's synthesis: no AWS account needed.

Usage (from the root of the checkout to compare, which has its .venv and node_modules, as
`make diff-base` runs it):

    diff_against_base.py ENVIRONMENT --base-ref REF

Exports the base commit's files (`git archive REF`) to a temporary folder, synthesizes
`MusicGen-ENVIRONMENT` there and here with each tree's own CDK app (sharing this checkout's
.venv and node_modules when the base pins the same dependencies, installing the base's own
otherwise), then prints `cdk diff MusicGen-ENVIRONMENT --template <base template>` for the
synthesized assembly. Neither step reads AWS credentials: the pull-request workflow uses this
when it has no role to read the deployed stack. An environment the base branch's cdk.json does
not have is compared with an empty template. Exits with cdk diff's status, or 1 with one line
saying which step failed. Standard library only.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from environment_matrix import MatrixError, read_environments

CDK = ("npx", "--no-install", "cdk")
NEW_ENVIRONMENT_PREFIX = "New environment:"
# Nothing here may reach AWS: without these the CLI looks for credentials and a region, and
# on a machine without IMDS waits for it to time out.
_CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)
_OFFLINE = {
    "AWS_EC2_METADATA_DISABLED": "true",
    # Node 20 is end-of-life: jsii prints a banner on every synth unless its version is listed.
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}
# (folder, the files that pin what it holds); a base pinning the same shares this checkout's.
_DEPENDENCIES = (
    (".venv", ("requirements.txt",)),
    ("node_modules", ("package.json", "package-lock.json")),
)
_TAIL = 4_000


class StepFailed(RuntimeError):
    """A step before the diff failed; the message says which and why."""


def stack_name(environment: str) -> str:
    return f"MusicGen-{environment}"


def offline_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CREDENTIAL_VARIABLES}
    return {**env, **_OFFLINE, **(extra or {})}


def _run(command: Sequence[str], cwd: Path, what: str, env: Mapping[str, str]) -> str:
    result = subprocess.run(
        list(command), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise StepFailed(f"{what} failed (exit {result.returncode}):\n{output[-_TAIL:]}")
    return output


def export_tree(checkout: Path, ref: str, destination: Path) -> str:
    """The files of commit `ref` in `destination`; returns the full commit id."""
    env = offline_environment()
    commit = _run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], checkout, "git", env)
    destination.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(
        ["git", "archive", "--format=tar", commit.strip()], cwd=checkout, stdout=subprocess.PIPE
    )
    extract = subprocess.run(["tar", "-x", "-C", str(destination)], stdin=archive.stdout)
    if archive.stdout:
        archive.stdout.close()
    if archive.wait() != 0 or extract.returncode != 0:
        raise StepFailed(f"exporting {ref} ({commit.strip()}) with git archive failed")
    return commit.strip()


def _same_pins(head: Path, base: Path, files: Sequence[str]) -> bool:
    return all(
        (head / name).is_file() == (base / name).is_file()
        and (not (head / name).is_file() or filecmp.cmp(head / name, base / name, shallow=False))
        for name in files
    )


def provide_dependencies(head: Path, base: Path) -> list[str]:
    """Give the base tree a .venv and node_modules; returns what had to be installed."""
    installed = []
    env = offline_environment()
    for folder, pins in _DEPENDENCIES:
        if (base / folder).exists():
            continue
        if _same_pins(head, base, pins):
            (base / folder).symlink_to((head / folder).resolve(), target_is_directory=True)
            continue
        installed.append(folder)
        if folder == ".venv":
            _run([sys.executable, "-m", "venv", ".venv"], base, "creating the base's .venv", env)
            _run(
                [".venv/bin/pip", "install", "--quiet", "-r", "requirements.txt"],
                base,
                "installing the base's requirements.txt",
                env,
            )
        else:
            _run(["npm", "ci", "--no-audit", "--no-fund"], base, "npm ci for the base", env)
    return installed


def has_environment(checkout: Path, environment: str) -> bool:
    try:
        return environment in read_environments(checkout / "cdk.json")
    except MatrixError as error:
        raise StepFailed(str(error)) from None


def synthesize(
    checkout: Path,
    environment: str,
    outdir: Path,
    *,
    app: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    path_metadata: bool = True,
) -> Path:
    """Synthesize one environment's stack of `checkout` into `outdir`; returns its template."""
    command = [*CDK, "synth", stack_name(environment), "-c", f"env={environment}"]
    command += ["--quiet", "--output", str(outdir)]
    if app:
        command += ["--app", app]
    if not path_metadata:
        command += ["--path-metadata", "false"]
    _run(
        command,
        checkout,
        f"synthesizing {stack_name(environment)} in {checkout}",
        {**offline_environment(extra_env)},
    )
    template = outdir / f"{stack_name(environment)}.template.json"
    if not template.is_file():
        raise StepFailed(f"synthesizing {stack_name(environment)} wrote no {template.name}")
    return template


def empty_template(folder: Path) -> Path:
    path = folder / "empty.template.json"
    path.write_text(json.dumps({}), encoding="utf-8")
    return path


def diff(
    checkout: Path,
    environment: str,
    assembly: Path,
    base_template: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`cdk diff --template` of the synthesized assembly, stdout and stderr as one text."""
    command = [*CDK, "diff", stack_name(environment), "--app", str(assembly)]
    command += ["--template", str(base_template)]
    return subprocess.run(
        command,
        cwd=checkout,
        env=offline_environment(extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def compare_with_base(head: Path, environment: str, base_ref: str, work: Path) -> int:
    if not has_environment(head, environment):
        raise StepFailed(f"{environment!r} is not in this checkout's cdk.json")
    base = work / "base"
    commit = export_tree(head, base_ref, base)
    print(f"Base: {base_ref} = {commit}; comparing with its synthesis, without AWS.", flush=True)
    head_out = work / "head.out"
    # The two synths are independent: side by side they take the time of one on two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        head_synth = pool.submit(synthesize, head, environment, head_out)
        if has_environment(base, environment):
            installed = provide_dependencies(head, base)
            if installed:
                print(f"The base pins other dependencies: installed its own {installed}.")
            base_template = synthesize(base, environment, work / "base.out")
        else:
            print(
                f"{NEW_ENVIRONMENT_PREFIX} {environment!r} is not in the base branch's cdk.json; "
                "every resource is new.",
                flush=True,
            )
            base_template = empty_template(work)
        head_synth.result()
    result = diff(head, environment, head_out, base_template)
    sys.stdout.write(result.stdout)
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environment")
    parser.add_argument("--base-ref", required=True, help="the commit to compare with")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="diff-against-base-"))
    try:
        return compare_with_base(Path.cwd(), args.environment, args.base_ref, work)
    except StepFailed as error:
        print(f"diff against the base branch: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
