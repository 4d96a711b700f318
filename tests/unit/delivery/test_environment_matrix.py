"""The job matrix the diff and deploy workflows build from cdk.json."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from stacks.ci_roles_stack import role_variable_name
from tests.unit.delivery.delivery_paths import REPO_ROOT


def _cdk_json(tmp_path: Path, environments: object) -> Path:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"app": "x", "context": {"environments": environments}}))
    return path


def _outputs(text: str) -> dict[str, object]:
    return {
        key: json.loads(value) for key, value in (line.split("=", 1) for line in text.splitlines())
    }


def test_shipped_table_gives_one_entry_per_environment_in_order(
    matrix_script: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    table = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"]
    assert matrix_script.main([str(REPO_ROOT / "cdk.json")]) == 0
    outputs = _outputs(capsys.readouterr().out)
    assert outputs["names"] == list(table)
    include = outputs["matrix"]["include"]  # type: ignore[index]
    assert [entry["environment"] for entry in include] == list(table)
    for entry in include:
        name = entry["environment"]
        assert entry["region"] == (table[name].get("region") or "")
        # The variables the workflows read are the ones the CI roles stack tells users to set.
        assert entry["diff_role_variable"] == role_variable_name("DIFF", name)
        assert entry["deploy_role_variable"] == role_variable_name("DEPLOY", name)


def test_only_selects_one_environment(matrix_script: ModuleType, tmp_path: Path) -> None:
    table = {"dev": {}, "eu-prod": {"region": "eu-west-1"}}
    entries = matrix_script.build_matrix(
        matrix_script.read_environments(_cdk_json(tmp_path, table)), "eu-prod"
    )
    assert entries == [
        {
            "environment": "eu-prod",
            "region": "eu-west-1",
            "diff_role_variable": "DIFF_ROLE_ARN_EU_PROD",
            "deploy_role_variable": "DEPLOY_ROLE_ARN_EU_PROD",
        }
    ]


def test_unknown_environment_fails_listing_the_known_ones(
    matrix_script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _cdk_json(tmp_path, {"dev": {}, "prod": {}})
    assert matrix_script.main([str(path), "--only", "staging"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("::error title=environment matrix::")
    assert "environment 'staging' is not in cdk.json; known: dev, prod" in captured.err


@pytest.mark.parametrize(
    ("environments", "message"),
    [
        ({}, "context.environments must be a non-empty object"),
        ([], "context.environments must be a non-empty object"),
        ({"Prod": {}}, "context.environments.Prod: names must match"),
        ({"dev;rm -rf /": {}}, "names must match"),
        ({"dev": "x"}, "context.environments.dev: must be an object"),
        ({"dev": {"region": 5}}, "context.environments.dev.region: must be a string"),
    ],
)
def test_bad_tables_are_rejected_naming_the_field(
    matrix_script: ModuleType, tmp_path: Path, environments: object, message: str
) -> None:
    with pytest.raises(matrix_script.MatrixError, match=message.replace(".", r"\.")):
        matrix_script.read_environments(_cdk_json(tmp_path, environments))


def test_unreadable_cdk_json(matrix_script: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "cdk.json"
    path.write_text("{not json")
    with pytest.raises(matrix_script.MatrixError, match="cannot read it as JSON"):
        matrix_script.read_environments(path)
