"""Fixtures for the delivery checks: the workflow scripts as modules."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.unit.delivery.delivery_paths import load_script


@pytest.fixture(scope="session")
def formatter() -> ModuleType:
    return load_script("format_diff_comment")


@pytest.fixture(scope="session")
def matrix_script() -> ModuleType:
    return load_script("environment_matrix")
