"""Runs every row of the reliability catalogue (see catalogue.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from catalogue import Case, CliResult, Context, all_cases

CASES = all_cases()


def _missing(case: Case) -> list[str]:
    return [name for name in case.requires if importlib.util.find_spec(name) is None]


def _check_words(case: Case, message: str) -> None:
    lowered = message.lower()
    missing = [word for word in case.words if word.lower() not in lowered]
    assert not missing, f"{case.id}: message lacks {missing}: {message!r}"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = _missing(case)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    context = Context(tmp_path=tmp_path, monkeypatch=monkeypatch)
    if case.exit_code is not None:
        result = case.call(context)
        assert isinstance(result, CliResult), f"{case.id}: a command-line row returns CliResult"
        assert result.exit_code == case.exit_code, (
            f"{case.id}: exit code {result.exit_code}, expected {case.exit_code}: "
            f"{result.output}"
        )
        assert "Traceback (most recent call last)" not in result.output, result.output
        _check_words(case, result.output)
        return
    assert case.error is not None, f"{case.id}: a row needs error or exit_code"
    if issubclass(case.error, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            case.call(context)
        matching = [w for w in caught if issubclass(w.category, case.error)]
        seen = [str(w.message) for w in caught]
        assert matching, f"{case.id}: no {case.error.__name__}; got {seen}"
        _check_words(case, " ".join(str(w.message) for w in matching))
        return
    with pytest.raises(case.error) as raised:
        case.call(context)
    _check_words(case, str(raised.value))


def test_catalogue_ids_are_words_joined_by_dashes() -> None:
    for case in CASES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", case.id), case.id


def test_every_expected_error_is_a_segcore_error_or_a_warning() -> None:
    from segcore.errors import SegcoreError

    for case in CASES:
        if case.error is not None:
            assert issubclass(case.error, SegcoreError | Warning), (
                f"{case.id}: expects {case.error.__name__}, which is not a segcore error"
            )
