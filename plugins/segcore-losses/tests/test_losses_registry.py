"""The losses by name through the core: list_losses, build_loss, weighted sums, compilation."""

from __future__ import annotations

import re

import pytest
import segcore_losses
import torch

import segcore
from segcore.errors import InvalidOptionError, UnknownNameError, UnknownOptionError
from segcore.objectives import WeightedSumLoss

NAMES = {
    "jaccard": segcore_losses.JaccardLoss,
    "dice": segcore_losses.DiceLoss,
    "tversky": segcore_losses.TverskyLoss,
    "focal": segcore_losses.FocalLoss,
    "lovasz": segcore_losses.LovaszLoss,
    "soft_bce": segcore_losses.SoftBCEWithLogitsLoss,
    "soft_ce": segcore_losses.SoftCrossEntropyLoss,
    "mcc": segcore_losses.MCCLoss,
}


def test_mode_constants_are_the_core_ones():
    assert segcore_losses.BINARY_MODE == segcore.BINARY_MODE == "binary"
    assert segcore_losses.MULTICLASS_MODE == segcore.MULTICLASS_MODE == "multiclass"
    assert segcore_losses.MULTILABEL_MODE == segcore.MULTILABEL_MODE == "multilabel"


def test_list_losses_has_every_loss():
    assert set(NAMES) <= set(segcore.list_losses())
    assert segcore.list_losses("soft_*") == ["soft_bce", "soft_ce"]


@pytest.mark.parametrize("name", sorted(NAMES))
def test_loss_class_by_name(name):
    assert segcore.objectives.get_loss_class(name) is NAMES[name]


def test_build_loss_by_name_passes_options():
    loss = segcore.build_loss("dice", mode="multiclass", ignore_index=255, smooth=1.0)
    assert isinstance(loss, segcore_losses.DiceLoss)
    assert (loss.mode, loss.ignore_index, loss.smooth) == ("multiclass", 255, 1.0)
    loss = segcore.build_loss("soft_ce", smooth_factor=0.1)
    assert isinstance(loss, segcore_losses.SoftCrossEntropyLoss) and loss.smooth_factor == 0.1


def test_build_loss_errors():
    with pytest.raises(UnknownNameError, match="dice"):
        segcore.build_loss("dise", mode="binary")
    with pytest.raises(InvalidOptionError, match="valid modes"):
        segcore.build_loss("dice", mode="multi")
    with pytest.raises(UnknownOptionError, match=r"smoothing.*Did you mean 'smooth'"):
        segcore.build_loss("dice", mode="binary", smoothing=1.0)
    with pytest.raises(InvalidOptionError, match="Did you mean 'multiclass'"):
        segcore.build_loss("dice", mode="multi-class")
    with pytest.raises(InvalidOptionError, match=r"loss name.*or a \{name: weight\} mapping"):
        segcore.build_loss(["dice", "focal"], mode="binary")


def test_weighted_sum_refuses_an_option_no_term_takes():
    with pytest.raises(UnknownOptionError) as info:
        segcore.build_loss({"dice": 1.0}, mode="binary", smoth=1.0)
    message = str(info.value)
    assert "'smoth'" in message and "Did you mean 'smooth'?" in message
    assert "Valid options: mode, classes" in message
    assert isinstance(info.value, TypeError)  # like an unexpected keyword argument
    with pytest.raises(UnknownOptionError, match=r"'ignore_indx'.*Did you mean 'ignore_index'"):
        segcore.build_loss({"dice": 1.0, "soft_bce": 1.0}, mode="binary", ignore_indx=255)


def test_weighted_sum_passes_each_option_to_the_terms_that_take_it():
    # soft_bce takes no mode, lovasz no smooth, dice no per_image: each is fine for one term
    loss = segcore.build_loss({"dice": 1.0, "soft_bce": 0.5, "lovasz": 0.0}, mode="binary",
                              smooth=1.0, per_image=True, smooth_factor=0.1)
    assert loss.losses["dice"].smooth == 1.0
    assert loss.losses["lovasz"].per_image is True
    assert loss.losses["soft_bce"].smooth_factor == 0.1
    assert loss.weights == {"dice": 1.0, "soft_bce": 0.5, "lovasz": 0.0}


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        (float("nan"), "finite number >= 0, got nan"),
        (float("inf"), "finite number >= 0, got inf"),
        (-float("inf"), "finite number >= 0, got -inf"),
        (-0.5, "negative weight makes training maximise"),
        (True, "got True"),
        ("1.0", "got '1.0'"),
        (None, "got None"),
        (torch.tensor(1.0), "finite number >= 0"),
    ],
)
def test_weighted_sum_refuses_bad_weights(weight, expected):
    with pytest.raises(InvalidOptionError, match=re.escape(expected)) as info:
        segcore.build_loss({"dice": 1.0, "focal": weight}, mode="binary")
    assert "'focal'" in str(info.value)


def test_weighted_sum_takes_zero_and_integer_weights():
    loss = segcore.build_loss({"dice": 0, "focal": 2}, mode="binary")
    assert loss.weights == {"dice": 0.0, "focal": 2.0}
    logits, target = torch.randn(2, 1, 4, 4), torch.randint(0, 2, (2, 4, 4))
    torch.testing.assert_close(loss(logits, target), 2 * loss.last_values["focal"])


def test_weighted_sum_refuses_an_empty_mapping_and_reduction_none():
    with pytest.raises(InvalidOptionError, match=r"empty mapping.*installed losses: dice"):
        segcore.build_loss({}, mode="binary")
    with pytest.raises(InvalidOptionError, match="at least one term"):
        WeightedSumLoss({}, {})
    with pytest.raises(InvalidOptionError, match=r"one loss per element.*'mean' or 'sum'"):
        segcore.build_loss({"dice": 1.0, "focal": 1.0}, mode="binary", reduction="none")


def test_weighted_sum_loss_checks_its_weights_itself():
    dice = segcore_losses.DiceLoss("binary")
    with pytest.raises(InvalidOptionError, match="finite number >= 0, got -1"):
        WeightedSumLoss({"dice": dice}, {"dice": -1})
    with pytest.raises(InvalidOptionError, match="one weight per term"):
        WeightedSumLoss({"dice": dice}, {"focal": 1.0})


def test_weighted_sum_is_the_weighted_sum_of_terms():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    target = torch.randint(0, 2, (2, 8, 8))
    target[0, 0] = 255
    combined = segcore.build_loss({"dice": 1.0, "focal": 0.5, "soft_bce": 2.0}, mode="binary",
                                  ignore_index=255)
    assert isinstance(combined, WeightedSumLoss)
    total = combined(logits, target)
    dice = segcore_losses.DiceLoss("binary", ignore_index=255)(logits, target)
    focal = segcore_losses.FocalLoss("binary", ignore_index=255)(logits, target)
    bce = segcore_losses.SoftBCEWithLogitsLoss(ignore_index=255)(logits, target)
    torch.testing.assert_close(total, dice + 0.5 * focal + 2.0 * bce)
    assert set(combined.last_values) == {"dice", "focal", "soft_bce"}
    torch.testing.assert_close(combined.last_values["focal"], focal.detach())
    assert not combined.last_values["dice"].requires_grad
    total.backward()
    assert torch.isfinite(logits.grad).all()


def test_weighted_sum_refuses_mcc_outside_binary():
    with pytest.raises(InvalidOptionError, match="only 'binary' mode"):
        segcore.build_loss({"dice": 1.0, "mcc": 1.0}, mode="multiclass")


CASES = [
    ("dice", dict(mode="multiclass", ignore_index=255, classes=[0, 2], class_weights=[1, 2, 3])),
    ("tversky", dict(mode="binary", ignore_index=255, gamma=2.0)),
    ("focal", dict(mode="multilabel", ignore_index=255, normalized=True)),
    ("lovasz", dict(mode="multiclass", ignore_index=255, per_image=True)),
    ("soft_ce", dict(smooth_factor=0.1, ignore_index=255)),
    ("mcc", dict(from_logits=True)),
]


@pytest.mark.parametrize(("name", "options"), CASES, ids=[c[0] for c in CASES])
def test_losses_compile_without_graph_breaks(name, options):
    """fullgraph=True on the eager backend: Dynamo traces the forward without a graph break
    (no .item(), no data-dependent Python branch); value checks are skipped while compiling."""
    torch.manual_seed(0)
    mode = options.get("mode", "binary" if name == "mcc" else "multiclass")
    channels = 1 if mode == "binary" else 3
    logits = torch.randn(2, channels, 8, 8)
    if mode == "multiclass":
        target = torch.randint(0, 3, (2, 8, 8))
    elif mode == "binary":
        target = torch.randint(0, 2, (2, 8, 8))
    else:
        target = torch.randint(0, 2, (2, 3, 8, 8)).float()
    if "ignore_index" in options:
        target[0, 0] = 255
    loss = segcore.build_loss(name, **options)
    compiled = torch.compile(loss, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(logits, target), loss(logits, target))
    torch.compiler.reset()
