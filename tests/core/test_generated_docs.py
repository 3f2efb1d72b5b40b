"""The documentation pages generated from the code (docs/generate.py) are current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

GENERATOR = Path(__file__).parents[2] / "docs" / "generate.py"


def _generator():
    spec = importlib.util.spec_from_file_location("segcore_docs_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _full_install() -> bool:
    """The pages document every first-party plugin; a partial install renders other pages."""
    import importlib.metadata

    from segcore import _catalog

    installed = {distribution.metadata["Name"] for distribution
                 in importlib.metadata.distributions()}
    return _catalog.FIRST_PARTY_PACKAGES <= installed


@pytest.mark.parametrize("page", ["architectures.md", "export.md", "encoders.md"])
def test_generated_page_is_current(page):
    if not _full_install():
        pytest.skip("the page documents the full install; some first-party plugins are missing")
    generator = _generator()
    path = generator.DOCS / page
    expected = generator.PAGES[page]()
    assert path.is_file() and path.read_text(encoding="utf-8") == expected, (
        f"docs/{page} is stale: run python docs/generate.py (nox -s docs)"
    )
