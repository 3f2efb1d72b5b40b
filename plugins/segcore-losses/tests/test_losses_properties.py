"""Property tests (hypothesis): ranges, finiteness, differentiability, identities, ignore."""

from __future__ import annotations

import pytest
import segcore_losses as L
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

MODES = ("binary", "multiclass", "multilabel")
IGNORE = 255
FAST = settings(max_examples=25, deadline=None)


def make_inputs(
    mode: str, seed: int, scale: float, classes: int = 3, size: int = 5, ignored: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits with requires_grad and random targets (a fraction ``ignored`` set to 255)."""
    generator = torch.Generator().manual_seed(seed)
    channels = 1 if mode == "binary" else classes
    logits = (torch.randn(2, channels, size, size, generator=generator) * scale)
    logits.requires_grad_(True)
    if mode == "binary":
        target = torch.randint(0, 2, (2, size, size), generator=generator)
    elif mode == "multiclass":
        target = torch.randint(0, classes, (2, size, size), generator=generator)
    else:
        target = torch.randint(0, 2, (2, classes, size, size), generator=generator).float()
    if ignored:
        mask = torch.rand(target.shape, generator=generator) < ignored
        target = target.masked_fill(mask, IGNORE)
    return logits, target


def assert_finite_with_finite_gradient(value: torch.Tensor, logits: torch.Tensor) -> None:
    assert value.dim() == 0
    assert torch.isfinite(value), value
    (gradient,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(gradient).all()


seeds = st.integers(0, 10_000)
scales = st.sampled_from([0.1, 1.0, 5.0, 50.0])  # 50: saturated sigmoid/softmax
modes = st.sampled_from(MODES)
ignored_fractions = st.sampled_from([0.0, 0.3, 1.0])


@FAST
@given(mode=modes, seed=seeds, scale=scales, ignored=ignored_fractions,
       smooth=st.sampled_from([0.0, 1.0]), log_loss=st.booleans(),
       loss_class=st.sampled_from([L.DiceLoss, L.JaccardLoss, L.TverskyLoss]))
def test_region_losses_range_and_gradient(mode, seed, scale, ignored, smooth, log_loss,
                                          loss_class):
    logits, target = make_inputs(mode, seed, scale, ignored=ignored)
    kwargs = dict(smooth=smooth, log_loss=log_loss, ignore_index=IGNORE)
    if mode != "binary":
        kwargs["class_weights"] = [1.0, 0.5, 2.0]
    value = loss_class(mode, **kwargs)(logits, target)
    assert_finite_with_finite_gradient(value, logits)
    assert value >= 0
    if not log_loss:
        assert value <= 1 + 1e-6


@FAST
@given(mode=modes, seed=seeds, scale=scales, ignored=ignored_fractions,
       alpha=st.sampled_from([None, 0.25]), gamma=st.sampled_from([0.0, 1.0, 2.0]),
       normalized=st.booleans(), reduction=st.sampled_from(["mean", "sum"]))
def test_focal_nonnegative_finite_differentiable(mode, seed, scale, ignored, alpha, gamma,
                                                 normalized, reduction):
    logits, target = make_inputs(mode, seed, scale, ignored=ignored)
    loss = L.FocalLoss(mode, alpha=alpha, gamma=gamma, ignore_index=IGNORE, normalized=normalized,
                     reduction=reduction)
    value = loss(logits, target)
    assert_finite_with_finite_gradient(value, logits)
    assert value >= 0


@FAST
@given(mode=modes, seed=seeds, scale=scales, ignored=ignored_fractions,
       per_image=st.booleans())
def test_lovasz_nonnegative_finite_differentiable(mode, seed, scale, ignored, per_image):
    logits, target = make_inputs(mode, seed, scale, ignored=ignored)
    value = L.LovaszLoss(mode, per_image=per_image, ignore_index=IGNORE)(logits, target)
    assert_finite_with_finite_gradient(value, logits)
    assert value >= 0
    if mode == "multiclass":
        assert value <= 1 + 1e-6  # errors |fg - p| are in [0, 1]


@FAST
@given(seed=seeds, scale=scales, ignored=ignored_fractions,
       smooth_factor=st.sampled_from([None, 0.0, 0.1]))
def test_soft_ce_and_bce_nonnegative_finite(seed, scale, ignored, smooth_factor):
    logits, target = make_inputs("multiclass", seed, scale, ignored=ignored)
    value = L.SoftCrossEntropyLoss(smooth_factor=smooth_factor, ignore_index=IGNORE)(logits, target)
    assert_finite_with_finite_gradient(value, logits)
    assert value >= 0
    logits, target = make_inputs("multilabel", seed, scale, ignored=ignored)
    loss = L.SoftBCEWithLogitsLoss(smooth_factor=smooth_factor, ignore_index=IGNORE)
    value = loss(logits, target)
    assert_finite_with_finite_gradient(value, logits)
    assert value >= 0


@FAST
@given(seed=seeds, scale=scales)
def test_mcc_range(seed, scale):
    logits, target = make_inputs("binary", seed, scale)
    value = L.MCCLoss(from_logits=True)(logits, target)
    assert_finite_with_finite_gradient(value, logits)
    assert -1e-4 <= value.detach().item() <= 2 + 1e-4


@FAST
@given(mode=modes, seed=seeds, scale=st.sampled_from([0.1, 1.0, 5.0]))
def test_tversky_generalises_dice_and_jaccard(mode, seed, scale):
    logits, target = make_inputs(mode, seed, scale)
    torch.testing.assert_close(
        L.TverskyLoss(mode)(logits, target), L.DiceLoss(mode)(logits, target)
    )
    torch.testing.assert_close(L.TverskyLoss(mode, alpha=1.0, beta=1.0)(logits, target),
                               L.JaccardLoss(mode)(logits, target))


@FAST
@given(seed=seeds, scale=st.sampled_from([0.1, 1.0, 5.0]))
def test_binary_jaccard_from_dice(seed, scale):
    # For one class (the same soft TP, FP, FN) the Jaccard index is J = D / (2 - D).
    logits, target = make_inputs("binary", seed, scale)
    dice_loss = L.DiceLoss("binary")(logits, target)
    jaccard = L.JaccardLoss("binary")(logits, target)
    dice = 1 - dice_loss
    torch.testing.assert_close(jaccard, 1 - dice / (2 - dice))


LOSSES_WITH_IGNORE = [
    lambda mode: L.DiceLoss(mode, ignore_index=IGNORE),
    lambda mode: L.JaccardLoss(mode, ignore_index=IGNORE),
    lambda mode: L.TverskyLoss(mode, ignore_index=IGNORE, alpha=0.3, beta=0.7),
    lambda mode: L.FocalLoss(mode, ignore_index=IGNORE),
    lambda mode: L.LovaszLoss(mode, ignore_index=IGNORE),
    lambda mode: L.LovaszLoss(mode, ignore_index=IGNORE, per_image=True),
]


@FAST
@given(mode=modes, seed=seeds, index=st.integers(0, len(LOSSES_WITH_IGNORE) - 1))
def test_ignored_pixels_do_not_matter(mode, seed, index):
    """Changing the predictions at ignored pixels changes neither the loss nor the gradient
    elsewhere, and the gradient at ignored pixels is zero."""
    logits, target = make_inputs(mode, seed, 2.0, ignored=0.3)
    loss = LOSSES_WITH_IGNORE[index](mode)
    ignored = target == IGNORE
    if mode == "multiclass":
        ignored = ignored.unsqueeze(1).expand_as(logits)
    elif mode == "binary":
        ignored = ignored.unsqueeze(1)
    value = loss(logits, target)
    (gradient,) = torch.autograd.grad(value, logits)
    assert (gradient[ignored] == 0).all()
    changed = torch.where(ignored, torch.randn_like(logits) * 10, logits.detach())
    changed.requires_grad_(True)
    torch.testing.assert_close(loss(changed, target), value)


@FAST
@given(mode=modes, seed=seeds)
def test_lovasz_per_image_equals_batch_for_one_image(mode, seed):
    logits, target = make_inputs(mode, seed, 1.0, ignored=0.2)
    logits, target = logits[:1], target[:1]
    per_image = L.LovaszLoss(mode, per_image=True, ignore_index=IGNORE)(logits, target)
    torch.testing.assert_close(per_image, L.LovaszLoss(mode, ignore_index=IGNORE)(logits, target))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_give_float32_losses(dtype):
    logits, target = make_inputs("multiclass", 0, 1.0, size=64)
    reference = L.DiceLoss("multiclass")(logits, target)
    value = L.DiceLoss("multiclass")(logits.to(dtype), target)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, reference, atol=1e-2, rtol=1e-2)
