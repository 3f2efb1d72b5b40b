"""Bad options and bad inputs raise specific errors that say what was expected."""

from __future__ import annotations

import pytest
import torch
from segcore_losses import (
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    LovaszLoss,
    MCCLoss,
    SoftBCEWithLogitsLoss,
    SoftCrossEntropyLoss,
    TverskyLoss,
)

from segcore.errors import InvalidOptionError, InvalidTargetError

MODE_LOSSES = [DiceLoss, JaccardLoss, TverskyLoss, FocalLoss, LovaszLoss]


@pytest.mark.parametrize("loss_class", MODE_LOSSES)
def test_unknown_mode_lists_the_valid_ones(loss_class):
    with pytest.raises(InvalidOptionError) as info:
        loss_class("multi-class")
    message = str(info.value)
    assert "'multi-class'" in message
    assert all(mode in message for mode in ("'binary'", "'multiclass'", "'multilabel'"))
    assert isinstance(info.value, ValueError)  # code written for SMP catches ValueError


@pytest.mark.parametrize("loss_class", MODE_LOSSES)
def test_multiclass_target_must_be_long_class_indices(loss_class):
    loss = loss_class("multiclass")
    logits = torch.randn(2, 3, 4, 4)
    with pytest.raises(InvalidTargetError, match=r"long tensor \(N, H, W\) of class indices"):
        loss(logits, torch.randint(0, 3, (2, 4, 4)).float())
    with pytest.raises(InvalidTargetError, match=r"long tensor \(N, H, W\).*argmax"):
        loss(logits, torch.randint(0, 2, (2, 3, 4, 4)))


@pytest.mark.parametrize("loss_class", MODE_LOSSES)
def test_multiclass_target_values_out_of_range(loss_class):
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0, 0] = 3
    with pytest.raises(InvalidTargetError, match=r"\[0, 3\).*found \[3\]"):
        loss_class("multiclass")(logits, target)
    target[0, 0, 0] = 255
    with pytest.raises(InvalidTargetError, match="ignore_index=255"):
        loss_class("multiclass")(logits, target)  # the hint names the likely fix
    loss_class("multiclass", ignore_index=255)(logits, target)  # fine once ignored
    target[0, 0, 1] = -1
    with pytest.raises(InvalidTargetError, match=r"found \[-1\]"):
        loss_class("multiclass", ignore_index=255)(logits, target)


@pytest.mark.parametrize("loss_class", MODE_LOSSES)
def test_binary_output_must_have_one_channel(loss_class):
    with pytest.raises(InvalidTargetError, match=r"one channel \(N, 1, H, W\).*C=3"):
        loss_class("binary")(torch.randn(2, 3, 4, 4), torch.randint(0, 2, (2, 4, 4)))


@pytest.mark.parametrize("loss_class", MODE_LOSSES)
def test_binary_target_values(loss_class):
    target = torch.randint(0, 2, (2, 4, 4))
    target[1, 1, 1] = 255
    with pytest.raises(InvalidTargetError, match=r"0/1.*found \[255\].*ignore_index=255"):
        loss_class("binary")(torch.randn(2, 1, 4, 4), target)


@pytest.mark.parametrize("loss_class", MODE_LOSSES)
@pytest.mark.parametrize(
    ("mode", "output", "target", "expected"),
    [
        ("binary", (2, 1, 4, 4), (2, 4, 5), r"\(N, H, W\) = \(2, 4, 4\)"),
        ("binary", (2, 1, 4, 4), (3, 4, 4), r"\(N, H, W\) = \(2, 4, 4\)"),
        ("multiclass", (2, 3, 4, 4), (2, 4, 5), r"\(N, H, W\) of class indices = \(2, 4, 4\)"),
        ("multilabel", (2, 3, 4, 4), (2, 4, 4), r"\(N, C, H, W\) = \(2, 3, 4, 4\)"),
        ("multilabel", (2, 3, 4, 4), (2, 2, 4, 4), r"\(N, C, H, W\) = \(2, 3, 4, 4\)"),
    ],
)
def test_shape_mismatch(loss_class, mode, output, target, expected):
    y_true = torch.randint(0, 2, target)
    if mode == "multilabel":
        y_true = y_true.float()
    with pytest.raises(InvalidTargetError, match=expected):
        loss_class(mode)(torch.randn(output), y_true)


def test_output_must_be_floating_point():
    with pytest.raises(InvalidTargetError, match="floating-point"):
        DiceLoss("binary")(torch.ones(2, 1, 4, 4, dtype=torch.long), torch.ones(2, 4, 4))


def test_mcc_only_binary():
    with pytest.raises(InvalidOptionError, match="only 'binary' mode"):
        MCCLoss(mode="multiclass")
    with pytest.raises(InvalidTargetError, match=r"only binary mode.*3 channels"):
        MCCLoss()(torch.rand(2, 3, 4, 4), torch.randint(0, 2, (2, 4, 4)))
    with pytest.raises(InvalidTargetError, match="0/1"):
        MCCLoss()(torch.rand(2, 1, 4, 4), torch.full((2, 4, 4), 2))


@pytest.mark.parametrize("loss_class", [DiceLoss, JaccardLoss, TverskyLoss, FocalLoss])
def test_class_weights_of_the_wrong_length(loss_class):
    loss = loss_class("multiclass", class_weights=[1.0, 2.0])
    with pytest.raises(InvalidOptionError, match=r"class_weights has 2 values.*3 classes"):
        loss(torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4)))
    with pytest.raises(InvalidOptionError, match="not supported in binary mode"):
        loss_class("binary", class_weights=[1.0])
    with pytest.raises(InvalidOptionError, match="non-negative"):
        loss_class("multilabel", class_weights=[1.0, -1.0])
    with pytest.raises(InvalidOptionError, match="one weight per class"):
        loss_class("multilabel", class_weights=[[1.0, 2.0]])
    with pytest.raises(InvalidOptionError, match="all be zero"):
        loss_class("multilabel", class_weights=[0.0, 0.0])


def test_classes_option():
    with pytest.raises(InvalidOptionError, match="binary mode"):
        DiceLoss("binary", classes=[0])
    with pytest.raises(InvalidOptionError, match="class indices"):
        DiceLoss("multiclass", classes=[0, "1"])
    loss = DiceLoss("multiclass", classes=[0, 5])
    with pytest.raises(InvalidOptionError, match=r"class 5.*only 3 classes"):
        loss(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2).long())


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (lambda: FocalLoss("binary", reduction="batchwise"), "unknown reduction.*'mean'"),
        (lambda: SoftBCEWithLogitsLoss(reduction="avg"), "unknown reduction"),
        (lambda: SoftCrossEntropyLoss(reduction="max"), "unknown reduction"),
        (lambda: FocalLoss("binary", alpha=1.5), r"alpha must lie in \[0, 1\]"),
        (lambda: FocalLoss("binary", reduced_threshold=0.0), "reduced_threshold"),
        (lambda: DiceLoss("binary", smooth=-1.0), "smooth must lie"),
        (lambda: DiceLoss("binary", smooth="1"), "smooth must be a number"),
        (lambda: TverskyLoss("binary", gamma=0.0), "gamma"),
        (lambda: DiceLoss("binary", ignore_index="255"), "ignore_index must be an int"),
        (lambda: SoftCrossEntropyLoss(smooth_factor=2.0), "smooth_factor"),
        (lambda: SoftCrossEntropyLoss(dim=0), "dim must be"),
    ],
)
def test_bad_options(factory, expected):
    with pytest.raises(InvalidOptionError, match=expected):
        factory()


def test_soft_bce_and_ce_inputs():
    with pytest.raises(InvalidTargetError, match="do not match"):
        SoftBCEWithLogitsLoss()(torch.randn(2, 3, 4, 4), torch.rand(2, 4, 4))
    with pytest.raises(InvalidTargetError, match=r"found \[255"):
        SoftBCEWithLogitsLoss()(torch.randn(2, 1, 4, 4), torch.full((2, 4, 4), 255.0))
    with pytest.raises(InvalidTargetError, match="long tensor"):
        SoftCrossEntropyLoss()(torch.randn(2, 3, 4, 4), torch.rand(2, 4, 4))
    with pytest.raises(InvalidTargetError, match=r"\[0, 3\)"):
        SoftCrossEntropyLoss()(torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), 3))


def test_value_checks_can_be_turned_off():
    loss = DiceLoss("multiclass")
    loss.check_target_values = False
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    target[0, 0, 0] = 7  # out of range: not checked, simply matches no class
    assert torch.isfinite(loss(torch.randn(1, 3, 2, 2), target))
