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


@pytest.fixture(scope="session")
def parser() -> ModuleType:
    return load_script("cdk_diff_parser")


@pytest.fixture(scope="session")
def classifier() -> ModuleType:
    return load_script("diff_classifier")


@pytest.fixture(scope="session")
def base_diff() -> ModuleType:
    return load_script("diff_against_base")
