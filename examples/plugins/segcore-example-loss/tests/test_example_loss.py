"""The plugin's own tests: found by name, the loss's values, and its error messages."""

from __future__ import annotations

import pytest
import torch
from segcore_example_loss import FocalTverskyLoss

import segcore
from segcore.errors import InvalidOptionError, InvalidTargetError, UnknownOptionError


def test_listed_and_built_by_name():
    assert "focal_tversky" in segcore.list_losses()
    assert isinstance(segcore.build_loss("focal_tversky", mode="binary"), FocalTverskyLoss)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_perfect_and_wrong_predictions(mode):
    loss = segcore.build_loss("focal_tversky", mode=mode, smooth=0.0)
    target = (torch.rand(2, 1 if mode == "binary" else 3, 8, 8) > 0.5).float()
    perfect = loss(target * 40 - 20, target)   # confident logits that match the target
    wrong = loss(20 - target * 40, target)
    assert float(perfect) < 1e-3 and float(wrong) > 0.99


def test_multiclass_gradients_flow():
    loss = segcore.build_loss("focal_tversky", mode="multiclass", ignore_index=255)
    logits = torch.randn(2, 4, 16, 16, requires_grad=True)
    target = torch.randint(0, 4, (2, 16, 16))
    target[:, 0] = 255
    value = loss(logits, target)
    value.backward()
    assert value.dim() == 0 and torch.isfinite(logits.grad).all()


def test_bad_options_are_refused():
    with pytest.raises(InvalidOptionError, match="alpha must lie in"):
        segcore.build_loss("focal_tversky", mode="binary", alpha=1.5)
    with pytest.raises(InvalidOptionError, match="unknown mode"):
        segcore.build_loss("focal_tversky", mode="binary-ish")
    with pytest.raises(UnknownOptionError, match="Did you mean 'gamma'"):
        segcore.build_loss("focal_tversky", mode="binary", gama=2.0)


def test_bad_targets_are_refused():
    loss = FocalTverskyLoss("multiclass")
    with pytest.raises(InvalidTargetError, match="class indices of shape"):
        loss(torch.randn(2, 4, 8, 8), torch.rand(2, 8, 8))
