"""The reliability catalogue: one row per bad input, hostile file or fault.

Each row (``Case``) says what is done (``call``), which error class must come out and which
words its message must contain. ``test_catalogue.py`` runs every row; ``errors_doc.py`` writes
docs/errors.md from the rows, so the page lists every error class with real examples.

Rows live in ``cases/<concern>.py`` modules, each exporting ``CASES: list[Case]``. A row's
``call`` receives a ``Context`` (a temporary directory and pytest's ``monkeypatch``).

Kinds of rows:

* an exception class in ``error``: ``call`` must raise it (or a subclass) with every word of
  ``words`` in its message (case-insensitive);
* a ``Warning`` subclass in ``error``: ``call`` must warn with it, the words in the warning;
* ``exit_code`` set (command-line rows): ``call`` returns a ``CliResult`` whose exit code must
  match and whose combined output must contain the words and no Python traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Context:
    """What a row's ``call`` may use: a fresh directory and pytest's ``monkeypatch``."""

    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch


@dataclass(frozen=True)
class CliResult:
    """The outcome of a command-line row."""

    exit_code: int
    output: str


@dataclass(frozen=True)
class Case:
    """One row of the catalogue.

    Attributes:
        id: unique, lowercase words joined by '-' (the test id).
        item: the probe item it pins ("7.12"), or the concern.
        description: what the row does, in a few words (shown in docs/errors.md).
        call: does it; receives a ``Context``.
        error: the exception (or warning) class expected; ``None`` for command-line rows.
        words: words the message must contain (case-insensitive).
        exit_code: for command-line rows, the expected exit status.
        requires: importable modules the row needs (it is skipped without them).
    """

    id: str
    item: str
    description: str
    call: Callable[[Context], Any]
    error: type[BaseException] | None = None
    words: Sequence[str] = field(default_factory=tuple)
    exit_code: int | None = None
    requires: Sequence[str] = field(default_factory=tuple)


CASES_DIRECTORY = Path(__file__).parent / "cases"


def all_cases() -> list[Case]:
    """Every row of every module under ``cases/``, in module then row order.

    The directory holding this file must be on ``sys.path`` (``test_catalogue.py`` and
    ``errors_doc.py`` put it there); case modules import ``catalogue`` and ``cases.<name>``.
    """
    rows: list[Case] = []
    for module_info in sorted(pkgutil.iter_modules([str(CASES_DIRECTORY)]), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"cases.{module_info.name}")
        rows.extend(module.CASES)
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise ValueError(f"duplicate catalogue id {row.id!r}")
        seen.add(row.id)
    return rows
