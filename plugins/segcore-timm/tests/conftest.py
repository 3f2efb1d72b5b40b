"""The timm tests never download: SEGCORE_OFFLINE is set (isolation comes from segcore.testing)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _offline(segcore_isolation, monkeypatch):
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    yield
