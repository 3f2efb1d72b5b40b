"""Fixtures of the core and integration tests (isolation comes from segcore.testing)."""

from __future__ import annotations

import pytest

# The example plugins under fixtures/ are installed and tested by tests/integration.
collect_ignore_glob = ["fixtures/*"]


@pytest.fixture
def core_only(segcore_without_plugins):
    """Every installed plugin blocked (before import), as on a core-only install."""
    yield
