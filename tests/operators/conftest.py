"""Fixtures of the operator tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[False, True], ids=["worker", "deferred"])
def deferrable(request: pytest.FixtureRequest) -> bool:
    """Each operator test runs with its wait in the worker and deferred to the triggerer."""
    return bool(request.param)
