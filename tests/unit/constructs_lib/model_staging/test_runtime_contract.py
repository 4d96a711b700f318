"""The staging runtime ships alone to Lambda: its copies of contract names must match."""

from __future__ import annotations

import pytest

from constructs_lib.model_staging.runtime.staging import lambda_handler, snapshot
from inference_code import contract


def test_custom_resource_types_match_the_contract() -> None:
    assert (lambda_handler.SNAPSHOT_RESOURCE, lambda_handler.PACKAGE_RESOURCE) == (
        contract.SNAPSHOT_RESOURCE_TYPE,
        contract.PACKAGE_RESOURCE_TYPE,
    )


@pytest.mark.parametrize(
    "model_id",
    [
        "facebook/musicgen-small",
        "owner_1/name.v2",
        "a/b",
        "owner/na..me",
        "owner/name/extra",
        "-owner/name",
        "owner/ná",
        "oá/name",
        "owner/",
        "",
    ],
)
def test_model_id_rule_matches_the_contract(model_id: str) -> None:
    try:
        snapshot.validate_model_id(model_id)
        runtime_accepts = True
    except ValueError:
        runtime_accepts = False
    assert runtime_accepts is contract.is_model_id(model_id)
