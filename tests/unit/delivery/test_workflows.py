"""The GitHub workflows: actionlint-clean, calling only Makefile targets that exist, and wired
the way the delivery contract says (OIDC without stored keys, one deploy per environment)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.delivery.delivery_paths import REPO_ROOT, WORKFLOWS

WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
# A rule line: targets, one or two colons, not an assignment (`:=`, `::=`) and not a recipe.
_RULE = re.compile(r"^(?P<targets>[A-Za-z0-9_.%/-][^:=#]*?)\s*::?(?!=)")
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "then", "do", "else"}
_REDIRECTION = re.compile(r"^\d*(?:>>?|<)(?P<target>.*)$")
_MAKE_OPTIONS_WITH_ARGUMENT = {"-C", "-f", "-o", "-W", "-I", "-j", "--directory", "--file"}


def _tool(name: str) -> str:
    """The linters come with the virtualenv (requirements-dev.txt), next to this Python."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: install requirements-dev.txt (make test does)"
    return found


def _actionlint(*paths: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _tool("actionlint"),
            "-no-color",
            "-oneline",
            f"-shellcheck={_tool('shellcheck')}",
            # pyflakes is not a dependency: say so instead of depending on what PATH holds.
            "-pyflakes=",
            *map(str, paths),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def makefile_targets(makefile: Path) -> set[str]:
    targets: set[str] = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        match = _RULE.match(line)
        if not match or line.startswith("\t"):
            continue
        targets.update(t for t in match["targets"].split() if "$" not in t and t != ".PHONY")
    return targets


def make_invocations(script: str) -> list[list[str]]:
    """Each `make` command in a shell script, as its list of targets (empty: default goal)."""
    invocations = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        for index, word in enumerate(words):
            if Path(word).name != "make" or (index and words[index - 1] not in _SEPARATORS):
                continue
            targets: list[str] = []
            rest = iter(words[index + 1 :])
            for argument in rest:
                if argument in _SEPARATORS:
                    break
                redirection = _REDIRECTION.match(argument)
                if redirection:
                    # `> file` and `2>&1` (split as `2>`, `&`, `1`) name no target.
                    if not redirection["target"] and next(rest, None) == "&":
                        next(rest, None)
                elif argument in _MAKE_OPTIONS_WITH_ARGUMENT:
                    next(rest, None)
                elif not argument.startswith("-") and "=" not in argument:
                    targets.append(argument)
            invocations.append(targets)
    return invocations


def _load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _run_steps(document: dict[Any, Any]) -> list[tuple[str, str]]:
    return [
        (job_id, step["run"])
        for job_id, job in document["jobs"].items()
        for step in job.get("steps", [])
        if "run" in step
    ]


def _steps_using(document: dict[Any, Any], action: str) -> list[dict[str, Any]]:
    return [
        step
        for job in document["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith(action + "@")
    ]


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[Any, Any]]:
    return {path.name: _load(path) for path in WORKFLOW_FILES}


def test_the_three_workflows_exist() -> None:
    assert [path.name for path in WORKFLOW_FILES] == ["ci.yml", "deploy.yml", "diff.yml"]


def test_actionlint_with_shellcheck_finds_nothing() -> None:
    result = _actionlint(*WORKFLOW_FILES, cwd=REPO_ROOT)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_actionlint_and_its_shellcheck_catch_mistakes(tmp_path: Path) -> None:
    # Guards the test above: the same invocation must reject a broken workflow.
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - run: echo ${{ matrix.missing }}\n"
        "      - run: rm -rf $TARGET/*\n",
        encoding="utf-8",
    )
    result = _actionlint(broken, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'property "missing" is not defined' in result.stdout
    assert "SC2086" in result.stdout


def test_run_steps_call_only_makefile_targets_that_exist(
    workflows: dict[str, dict[Any, Any]],
) -> None:
    known = makefile_targets(REPO_ROOT / "Makefile")
    called = {
        (name, job_id, tuple(targets))
        for name, document in workflows.items()
        for job_id, script in _run_steps(document)
        for targets in make_invocations(script)
    }
    missing = {entry for entry in called if not set(entry[2]) <= known or not entry[2]}
    assert not missing, f"targets not in the Makefile ({sorted(known)}): {sorted(missing)}"
    # The check means something only if it saw the workflows' make calls.
    assert {t for entry in called for t in entry[2]} == {
        "test",
        "synth",
        "reliability",
        "diff",
        "diff-base",
        "deploy",
    }


def test_makefile_and_shell_parsers(tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "X := 1\nexport Y := 2\n.PHONY: a b\n$(BIN)/python:\n\ttrue\na: x.txt\n\t@echo a:b\n"
        "b c:: | a\n\tdone\n",
        encoding="utf-8",
    )
    assert makefile_targets(makefile) == {"a", "b", "c"}
    script = (
        'set -e\nmake -C sub test ENV="$E" 2>&1 | tee log && make --file=Makefile synth > o\n'
        "if true; then make deploy; fi # make nothing\necho make bogus\ncmake --build x\n"
        "make \\\n  lint 2>/dev/null >> all.log\n"
    )
    assert make_invocations(script) == [["test"], ["synth"], ["deploy"], ["lint"]]


def test_no_long_lived_keys_and_no_privileged_pull_request_trigger() -> None:
    for path in WORKFLOW_FILES:
        text = path.read_text(encoding="utf-8")
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path.name
        assert "secrets." not in text, path.name
        assert "pull_request_target" not in text, path.name


def test_ci_tests_synthesizes_checks_reliability_and_keeps_the_templates(
    workflows: dict[str, dict[Any, Any]],
) -> None:
    ci = workflows["ci.yml"]
    assert set(ci["on"]) == {"pull_request", "push"}
    (job,) = ci["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs.index("make test") < runs.index("make synth") < runs.index("make reliability")
    ci_run = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert [line for line in ci_run if line.startswith("make ")] == [
        "make test",
        "make synth",
        "make reliability",
    ]
    (python,) = _steps_using(ci, "actions/setup-python")
    assert python["with"]["python-version"] == "3.11"
    (node,) = _steps_using(ci, "actions/setup-node")
    assert node["with"]["cache"] == "npm"
    (cache,) = _steps_using(ci, "actions/cache")
    assert cache["with"]["path"] == ".venv"
    assert "hashFiles('requirements*.txt', 'pyproject.toml')" in cache["with"]["key"]
    (upload,) = _steps_using(ci, "actions/upload-artifact")
    assert upload["with"]["path"] == "cdk.out/*.template.json"
    assert upload["with"]["if-no-files-found"] == "error"


def test_diff_assumes_a_role_per_environment_and_comments_once(
    workflows: dict[str, dict[Any, Any]],
) -> None:
    diff = workflows["diff.yml"]
    assert set(diff["on"]) == {"pull_request"}
    # Adding or removing the allow-destructive label re-decides the check.
    assert {"labeled", "unlabeled", "opened", "synchronize"} <= set(
        diff["on"]["pull_request"]["types"]
    )
    assert diff["permissions"] == {"contents": "read"}
    jobs = diff["jobs"]
    assert jobs["diff"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert (
        jobs["diff"]["strategy"]["matrix"] == "${{ fromJSON(needs.environments.outputs.matrix) }}"
    )
    assert jobs["diff"]["strategy"]["fail-fast"] is False
    (credentials,) = _steps_using(
        {"jobs": {"diff": jobs["diff"]}}, "aws-actions/configure-aws-credentials"
    )
    assert credentials["with"]["role-to-assume"] == "${{ vars[matrix.diff_role_variable] }}"
    assert credentials["if"] == "steps.gate.outputs.compare == 'deployed'"
    # Without a role the diff runs anyway, against the base branch: nothing else is skipped.
    assert [s.get("if") for s in jobs["diff"]["steps"] if s.get("if")] == [
        "steps.venv-cache.outputs.cache-hit == 'true'",
        "steps.gate.outputs.compare == 'deployed'",
        "always()",
    ]
    (checkout,) = _steps_using({"jobs": {"diff": jobs["diff"]}}, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 2
    gate = next(step for step in jobs["diff"]["steps"] if step.get("id") == "gate")
    assert "::notice " in gate["run"] and "exit 1" not in gate["run"]
    (diff_step,) = [s for s in jobs["diff"]["steps"] if "make diff ENV=" in s.get("run", "")]
    # Template comparison goes through the lookup role; a change set would need the deploy role.
    assert diff_step["env"]["DIFF_METHOD"] == "template"
    # Only the comment job may write to the pull request, and it alone gets that permission.
    assert jobs["comment"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "!cancelled()" in jobs["comment"]["if"]
    formats = [
        s["run"] for s in jobs["comment"]["steps"] if "format_diff_comment.py" in s.get("run", "")
    ]
    assert len(formats) == 1
    (script,) = _steps_using({"jobs": {"c": jobs["comment"]}}, "actions/github-script")
    assert (
        "updateComment" in script["with"]["script"] and "createComment" in script["with"]["script"]
    )
    # The check fails last, after the comment that says why and how to allow it.
    last = jobs["comment"]["steps"][-1]
    assert last["env"] == {"BLOCKED": "${{ steps.format.outputs.blocked }}"}
    assert "exit 1" in last["run"] and "if" not in last
    (format_step,) = [s for s in jobs["comment"]["steps"] if s.get("id") == "format"]
    assert format_step["env"]["ALLOW_DESTRUCTIVE"] == (
        "${{ contains(github.event.pull_request.labels.*.name, 'allow-destructive') }}"
    )


def test_deploy_runs_one_environment_at_a_time_behind_github_environments(
    workflows: dict[str, dict[Any, Any]],
) -> None:
    deploy = workflows["deploy.yml"]
    assert deploy["on"]["push"] == {"tags": ["v*"]}
    assert deploy["on"]["workflow_dispatch"]["inputs"]["environment"]["required"] is True
    job = deploy["jobs"]["deploy"]
    assert job["environment"] == "${{ matrix.environment }}"
    assert job["concurrency"] == {
        "group": "deploy-${{ matrix.environment }}",
        "cancel-in-progress": False,
    }
    assert job["strategy"]["max-parallel"] == 1
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    (credentials,) = _steps_using(deploy, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars[matrix.deploy_role_variable] }}"
    assert job["steps"][-1]["run"] == 'make deploy ENV="$ENVIRONMENT"'
    assert job["steps"][-1]["env"]["DEPLOY_FLAGS"] == "--require-approval never"
