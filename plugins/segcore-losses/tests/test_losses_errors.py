"""Bad options and bad inputs raise specific errors that say what was expected."""

from __future__ import annotations

import pytest
import segcore_losses as L
import torch

from segcore.errors import InvalidOptionError, InvalidTargetError

MODE_LOSSES = [L.DiceLoss, L.JaccardLoss, L.TverskyLoss, L.FocalLoss, L.LovaszLoss]


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
        L.DiceLoss("binary")(torch.ones(2, 1, 4, 4, dtype=torch.long), torch.ones(2, 4, 4))


def test_mcc_only_binary():
    with pytest.raises(InvalidOptionError, match="only 'binary' mode"):
        L.MCCLoss(mode="multiclass")
    with pytest.raises(InvalidTargetError, match=r"only binary mode.*3 channels"):
        L.MCCLoss()(torch.rand(2, 3, 4, 4), torch.randint(0, 2, (2, 4, 4)))
    with pytest.raises(InvalidTargetError, match="0/1"):
        L.MCCLoss()(torch.rand(2, 1, 4, 4), torch.full((2, 4, 4), 2))


@pytest.mark.parametrize("loss_class", [L.DiceLoss, L.JaccardLoss, L.TverskyLoss, L.FocalLoss])
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
        L.DiceLoss("binary", classes=[0])
    with pytest.raises(InvalidOptionError, match="class indices"):
        L.DiceLoss("multiclass", classes=[0, "1"])
    loss = L.DiceLoss("multiclass", classes=[0, 5])
    with pytest.raises(InvalidOptionError, match=r"class 5.*only 3 classes"):
        loss(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2).long())


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (lambda: L.FocalLoss("binary", reduction="batchwise"), "unknown reduction.*'mean'"),
        (lambda: L.SoftBCEWithLogitsLoss(reduction="avg"), "unknown reduction"),
        (lambda: L.SoftCrossEntropyLoss(reduction="max"), "unknown reduction"),
        (lambda: L.FocalLoss("binary", alpha=1.5), r"alpha must lie in \[0, 1\]"),
        (lambda: L.FocalLoss("binary", reduced_threshold=0.0), "reduced_threshold"),
        (lambda: L.DiceLoss("binary", smooth=-1.0), "smooth must lie"),
        (lambda: L.DiceLoss("binary", smooth="1"), "smooth must be a finite number"),
        (lambda: L.TverskyLoss("binary", gamma=0.0), "gamma"),
        (lambda: L.DiceLoss("binary", ignore_index="255"), "ignore_index must be an int"),
        (lambda: L.SoftCrossEntropyLoss(smooth_factor=2.0), "smooth_factor"),
        (lambda: L.SoftCrossEntropyLoss(dim=0), "dim must be"),
    ],
)
def test_bad_options(factory, expected):
    with pytest.raises(InvalidOptionError, match=expected):
        factory()


def test_soft_bce_and_ce_inputs():
    with pytest.raises(InvalidTargetError, match="do not match"):
        L.SoftBCEWithLogitsLoss()(torch.randn(2, 3, 4, 4), torch.rand(2, 4, 4))
    with pytest.raises(InvalidTargetError, match=r"found \[255"):
        L.SoftBCEWithLogitsLoss()(torch.randn(2, 1, 4, 4), torch.full((2, 4, 4), 255.0))
    with pytest.raises(InvalidTargetError, match="long tensor"):
        L.SoftCrossEntropyLoss()(torch.randn(2, 3, 4, 4), torch.rand(2, 4, 4))
    with pytest.raises(InvalidTargetError, match=r"\[0, 3\)"):
        L.SoftCrossEntropyLoss()(torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), 3))


def test_value_checks_can_be_turned_off():
    loss = L.DiceLoss("multiclass")
    loss.check_target_values = False
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    target[0, 0, 0] = 7  # out of range: not checked, simply matches no class
    assert torch.isfinite(loss(torch.randn(1, 3, 2, 2), target))


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (lambda: L.DiceLoss("binary", smooth=float("inf")), "smooth must be a finite number"),
        (lambda: L.TverskyLoss("binary", alpha=float("nan")), "alpha must be a finite number"),
        (lambda: L.FocalLoss("binary", gamma=float("inf")), "gamma must be a finite number"),
        (lambda: L.MCCLoss(eps=float("inf")), "eps must be a finite number"),
        (lambda: L.DiceLoss("binary", ignore_index=float("nan")), "ignore_index must be an int"),
        (lambda: L.SoftBCEWithLogitsLoss(ignore_index=float("inf")), "ignore_index must be an int"),
    ],
)
def test_non_finite_options_are_refused(factory, expected):
    with pytest.raises(InvalidOptionError, match=expected):
        factory()


@pytest.mark.parametrize(
    ("factory", "option"),
    [
        (lambda: L.DiceLoss("binary", from_logits="False"), "from_logits"),
        (lambda: L.JaccardLoss("binary", log_loss="yes"), "log_loss"),
        (lambda: L.LovaszLoss("binary", per_image="True"), "per_image"),
        (lambda: L.FocalLoss("binary", normalized=None), "normalized"),
        (lambda: L.MCCLoss(from_logits=2), "from_logits"),
    ],
)
def test_yes_no_options_must_be_booleans(factory, option):
    # bool("False") is True: a string would silently turn the option on
    with pytest.raises(InvalidOptionError, match=f"{option} must be True or False"):
        factory()


def test_yes_no_options_take_booleans_and_zero_one():
    assert L.DiceLoss("binary", from_logits=0).from_logits is False
    assert L.LovaszLoss("binary", per_image=1).per_image is True


def test_typos_get_a_did_you_mean():
    with pytest.raises(InvalidOptionError, match="Did you mean 'multiclass'"):
        L.DiceLoss("multi_class")
    with pytest.raises(InvalidOptionError, match="Did you mean 'mean'"):
        L.FocalLoss("binary", reduction="meen")
    with pytest.raises(InvalidOptionError, match="Did you mean 'sum'"):
        L.SoftCrossEntropyLoss(reduction="summ")


@pytest.mark.parametrize("loss_class", MODE_LOSSES)
def test_output_without_class_channel(loss_class):
    with pytest.raises(InvalidTargetError, match=r"no class channel.*C >= 1"):
        loss_class("multilabel")(torch.randn(2, 0, 4, 4), torch.zeros(2, 0, 4, 4))


@pytest.mark.parametrize(
    "loss",
    [L.DiceLoss("multiclass"), L.FocalLoss("multiclass"), L.LovaszLoss("multiclass"),
     L.SoftCrossEntropyLoss(), L.SoftBCEWithLogitsLoss(), L.MCCLoss()],
    ids=lambda loss: type(loss).__name__,
)
def test_target_on_another_device(loss):
    channels = 1 if isinstance(loss, L.SoftBCEWithLogitsLoss | L.MCCLoss) else 3
    target = torch.zeros(2, 4, 4, dtype=torch.long, device="meta")
    with pytest.raises(InvalidTargetError, match=r"different devices.*target.to\(output.device\)"):
        loss(torch.randn(2, channels, 4, 4), target)


def test_soft_bce_weight_must_broadcast_to_the_output():
    loss = L.SoftBCEWithLogitsLoss(pos_weight=torch.ones(3))
    with pytest.raises(InvalidOptionError, match=r"pos_weight of shape \(3,\).*\(2, 3, 4, 5\)"):
        loss(torch.randn(2, 3, 4, 5), torch.zeros(2, 3, 4, 5))
    loss = L.SoftBCEWithLogitsLoss(weight=torch.ones(3, 1, 1))  # one weight per channel
    assert loss(torch.randn(2, 3, 4, 5), torch.zeros(2, 3, 4, 5)).dim() == 0
    with pytest.raises(InvalidOptionError, match="weight of shape"):
        L.SoftBCEWithLogitsLoss(weight=torch.ones(2, 2, 3, 4, 5))(
            torch.randn(2, 3, 4, 5), torch.zeros(2, 3, 4, 5)
        )  # broadcasting would enlarge the output
    with pytest.raises(InvalidTargetError, match="real 0/1 values"):
        L.SoftBCEWithLogitsLoss()(torch.randn(2, 1, 4), torch.zeros(2, 1, 4, dtype=torch.cfloat))


def test_soft_ce_dim_outside_the_output():
    with pytest.raises(InvalidTargetError, match=r"dim=4 is not a class dimension.*1\.\.3"):
        L.SoftCrossEntropyLoss(dim=4)(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4).long())
    with pytest.raises(InvalidTargetError, match="dim=-4"):
        L.SoftCrossEntropyLoss(dim=-4)(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4).long())
    # the last dimension as class dimension works
    value = L.SoftCrossEntropyLoss(dim=-1)(torch.randn(2, 4, 4, 3), torch.zeros(2, 4, 4).long())
    assert value.dim() == 0
