"""The plugin's own tests: found by name, the values of every reduction, error messages."""

from __future__ import annotations

import pytest
import torch
from segcore_example_metric import dice_coefficient

import segcore
from segcore.errors import InvalidOptionError, InvalidTargetError

# two images x two classes; image 1 class 1 has no positive pixel at all (0/0)
TP = torch.tensor([[8, 0], [3, 5]])
FP = torch.tensor([[2, 0], [1, 0]])
FN = torch.tensor([[0, 0], [2, 5]])
TN = torch.tensor([[6, 16], [10, 6]])


def test_listed_and_found_by_name():
    assert "dice_coefficient" in segcore.list_metrics()
    assert segcore.get_metric("dice_coefficient") is dice_coefficient


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        (None, [[16 / 18, 1.0], [6 / 9, 10 / 15]]),
        ("none", [[16 / 18, 1.0], [6 / 9, 10 / 15]]),
        ("micro", 32 / (32 + 3 + 7)),
        ("macro", (22 / 27 + 10 / 15) / 2),
        ("micro-imagewise", (16 / 18 + 16 / 24) / 2),
        ("macro-imagewise", (16 / 18 + 1.0 + 6 / 9 + 10 / 15) / 4),
    ],
)
def test_reductions(reduction, expected):
    score = dice_coefficient(TP, FP, FN, TN, reduction=reduction)
    torch.testing.assert_close(score, torch.tensor(expected))


def test_zero_division():
    assert dice_coefficient(TP, FP, FN, TN, zero_division=0.0)[0, 1] == 0


def test_bad_arguments_are_refused():
    with pytest.raises(InvalidOptionError, match="unknown reduction 'mean'"):
        dice_coefficient(TP, FP, FN, TN, reduction="mean")
    with pytest.raises(InvalidTargetError, match="same shape"):
        dice_coefficient(TP, FP, FN[:1], TN)
