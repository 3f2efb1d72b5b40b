"""The plugin registers the 17 scores through the segcore hook, with SMP's signatures."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import segcore_metrics as M

import segcore

DOCUMENTED = [
    "fbeta_score", "f1_score", "iou_score", "accuracy", "precision", "recall", "sensitivity",
    "specificity", "balanced_accuracy", "positive_predictive_value", "negative_predictive_value",
    "false_negative_rate", "false_positive_rate", "false_discovery_rate", "false_omission_rate",
    "positive_likelihood_ratio", "negative_likelihood_ratio",
]


def test_every_documented_metric_is_listed_and_found_by_name():
    assert set(DOCUMENTED) <= set(segcore.list_metrics())
    for name in DOCUMENTED:
        assert segcore.get_metric(name) is getattr(M, name)
    assert sorted(M.METRICS) == sorted(DOCUMENTED)


def test_mode_constants_are_the_core_ones():
    assert (M.BINARY_MODE, M.MULTICLASS_MODE, M.MULTILABEL_MODE) == (
        segcore.BINARY_MODE, segcore.MULTICLASS_MODE, segcore.MULTILABEL_MODE,
    ) == ("binary", "multiclass", "multilabel")


def parameters(function):
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_signatures_match_the_reference(name):
    empty = inspect.Parameter.empty
    expected = [("tp", empty), ("fp", empty), ("fn", empty), ("tn", empty)]
    if name == "fbeta_score":
        expected.append(("beta", 1.0))
    expected += [("reduction", None), ("class_weights", None), ("zero_division", 1.0)]
    assert parameters(getattr(M, name)) == expected
    assert getattr(M, name).__doc__


def test_get_stats_signature_matches_the_reference():
    empty = inspect.Parameter.empty
    assert parameters(M.get_stats) == [
        ("output", empty), ("target", empty), ("mode", empty), ("ignore_index", None),
        ("threshold", None), ("num_classes", None),
    ]


def test_listing_imports_no_implementation():
    code = (
        "import sys, segcore; names = segcore.list_metrics(); "
        "assert 'iou_score' in names; "
        "assert 'segcore_metrics.functional' not in sys.modules, 'functional was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
