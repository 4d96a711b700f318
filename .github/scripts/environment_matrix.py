"""Print the GitHub Actions job matrix of the environments in cdk.json's `environments` table.

Usage: environment_matrix.py CDK_JSON [--only NAME] >> "$GITHUB_OUTPUT"

Writes two outputs: `names` (a JSON list, table order) and `matrix` (`{"include": [...]}` with
each environment's name, region and the repository variables that hold its role ARNs). The
workflows read only this, so a new environment in cdk.json gets a diff and a deploy job with no
workflow edit. Standard library only: the workflows run it before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

# The app's own rule for environment names; it also keeps them safe inside shell and paths.
ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class MatrixError(ValueError):
    """cdk.json does not hold a usable environment table."""


def role_variable(prefix: str, environment: str) -> str:
    """The repository (or GitHub-environment) variable with a role ARN: DIFF_ROLE_ARN_DEV."""
    return f"{prefix}_ROLE_ARN_{environment.upper().replace('-', '_')}"


def read_environments(cdk_json: Path) -> dict[str, Any]:
    try:
        document = json.loads(cdk_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise MatrixError(f"{cdk_json}: cannot read it as JSON ({error})") from None
    table = document.get("context", {}).get("environments") if isinstance(document, dict) else None
    if not isinstance(table, dict) or not table:
        raise MatrixError(f"{cdk_json}: context.environments must be a non-empty object")
    for name, entry in table.items():
        if not ENVIRONMENT_NAME.match(name):
            raise MatrixError(
                f"{cdk_json}: context.environments.{name}: names must match [a-z][a-z0-9-]{{0,30}}"
            )
        if not isinstance(entry, dict):
            raise MatrixError(f"{cdk_json}: context.environments.{name}: must be an object")
        region = entry.get("region")
        if region is not None and not isinstance(region, str):
            raise MatrixError(f"{cdk_json}: context.environments.{name}.region: must be a string")
    return table


def build_matrix(table: dict[str, Any], only: str | None = None) -> list[dict[str, str]]:
    names = list(table)
    if only:
        if only not in table:
            raise MatrixError(f"environment {only!r} is not in cdk.json; known: {', '.join(names)}")
        names = [only]
    return [
        {
            "environment": name,
            # Empty when cdk.json leaves the region to the credentials: the workflows then fall
            # back to the AWS_REGION repository variable.
            "region": table[name].get("region") or "",
            "diff_role_variable": role_variable("DIFF", name),
            "deploy_role_variable": role_variable("DEPLOY", name),
        }
        for name in names
    ]


def github_outputs(entries: list[dict[str, str]]) -> str:
    names = [entry["environment"] for entry in entries]
    matrix = {"include": entries}
    return (
        f"names={json.dumps(names, separators=(',', ':'))}\n"
        f"matrix={json.dumps(matrix, separators=(',', ':'))}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cdk_json", type=Path)
    parser.add_argument("--only", default="", help="just this environment (empty: all)")
    args = parser.parse_args(argv)
    try:
        entries = build_matrix(read_environments(args.cdk_json), args.only or None)
    except MatrixError as error:
        print(f"::error title=environment matrix::{error}", file=sys.stderr)
        return 1
    sys.stdout.write(github_outputs(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
