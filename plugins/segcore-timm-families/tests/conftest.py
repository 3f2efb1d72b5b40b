"""Every test gets an empty Hugging Face cache and an offline hub: nothing is downloaded.

(segcore's own isolation, an empty SEGCORE_CACHE and no SEGCORE_* settings, comes from the
``segcore.testing`` pytest plugin.)
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def hf_cache(segcore_isolation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face hub cache for the test, with the hub offline."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
