"""Shared fixtures: every test starts with a fresh plugin registry and an empty weights cache."""

from __future__ import annotations

import pytest

from segcore import plugins

# The example plugin under fixtures/ is installed and tested by tests/integration, not collected.
collect_ignore_glob = ["fixtures/*"]


@pytest.fixture(autouse=True)
def _isolated_segcore(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "segcore-cache"))
    monkeypatch.delenv("SEGCORE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("SEGCORE_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    plugins.reset()
    yield
    plugins.reset()


FIRST_PARTY_PLUGINS = ("unet", "deeplab", "resnet", "timm", "losses", "metrics")


@pytest.fixture
def core_only(monkeypatch):
    """Hide the first-party plugins (blocked before import), as on a core-only install."""
    monkeypatch.setenv("SEGCORE_DISABLE_PLUGINS", ",".join(FIRST_PARTY_PLUGINS))
    plugins.reset()
    yield
    plugins.reset()
