"""The pull-request workflow's paths run end to end on throwaway git clones."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: minutes, not seconds (two real synths); still part of `make test`"
    )
