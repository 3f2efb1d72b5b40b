"""Every test starts with a fresh plugin registry and an empty weights cache."""

from __future__ import annotations

import pytest

from segcore import plugins


@pytest.fixture(autouse=True)
def _isolated_segcore(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "segcore-cache"))
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    monkeypatch.delenv("SEGCORE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("SEGCORE_STRICT_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()
