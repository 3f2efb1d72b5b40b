"""docs/errors.md is generated from the catalogue; this fails when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import errors_doc


def test_errors_page_is_current():
    expected = errors_doc.render()
    actual = errors_doc.PAGE.read_text(encoding="utf-8") if errors_doc.PAGE.is_file() else ""
    assert actual == expected, "docs/errors.md is stale: run python tests/reliability/errors_doc.py"


def test_every_error_class_is_on_the_page():
    import segcore.errors as errors

    text = errors_doc.PAGE.read_text(encoding="utf-8")
    for name, value in vars(errors).items():
        if isinstance(value, type) and issubclass(value, errors.SegcoreError):
            assert f"## {name}" in text, name
