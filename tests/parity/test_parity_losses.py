"""Parity of segcore-losses with SMP 0.6.0 on random inputs: equal within 1e-5 (absolute, and
relative for the large values of ``reduction="sum"``).

Where SMP crashes on a valid configuration, or deliberately differs (documented in
docs/losses.md), the test compares with torch's own functions or a computation by hand and
says why in a comment.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

smp = pytest.importorskip("segmentation_models_pytorch")
smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
segcore_losses = pytest.importorskip("segcore_losses")

import segcore  # noqa: E402

ATOL = 1e-5
MODES = ("binary", "multiclass", "multilabel")
IGNORE = 255
N, C, H, W = 2, 4, 16, 16


def assert_equal(actual: torch.Tensor, expected: torch.Tensor | float) -> None:
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=ATOL)


def make_inputs(
    mode: str, ignore_index: int | None, seed: int, *, probabilities: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random logits (or probabilities) and targets; one class is absent from the target."""
    generator = torch.Generator().manual_seed(seed)
    channels = 1 if mode == "binary" else C
    y_pred = torch.randn(N, channels, H, W, generator=generator) * 2
    if mode == "binary":
        y_true = torch.randint(0, 2, (N, H, W), generator=generator)
    elif mode == "multiclass":
        y_true = torch.randint(0, C - 1, (N, H, W), generator=generator)  # class C-1 absent
    else:
        y_true = torch.randint(0, 2, (N, C, H, W), generator=generator).float()
        y_true[:, C - 1] = 0  # an empty channel
    if ignore_index is not None:
        ignored = torch.rand(y_true.shape, generator=generator) < 0.2
        y_true = y_true.masked_fill(ignored, ignore_index)
    if probabilities:
        y_pred = y_pred.softmax(1) if mode == "multiclass" else y_pred.sigmoid()
    return y_pred, y_true


def loss_classes(name: str) -> tuple[type, type]:
    """(segcore-losses' class ``name``, SMP's class of the same name)."""
    return getattr(segcore_losses, name), getattr(smp_losses, name)


def assert_matches_smp(loss_pair: tuple[type, type], y_pred: torch.Tensor,
                       y_true: torch.Tensor, *args: object, **kwargs: object) -> None:
    """Our loss and SMP's (``loss_pair``), built with the same arguments, give the same value."""
    ours_cls, smp_cls = loss_pair
    assert_equal(ours_cls(*args, **kwargs)(y_pred, y_true),
                 smp_cls(*args, **kwargs)(y_pred, y_true))


def loss_on_probabilities(loss: str, mode: str, ignore_index: int | None, seed: int
                          ) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """Our ``loss`` with ``from_logits=False``, and random probabilities and targets for it."""
    probs_pred, y_true = make_inputs(mode, ignore_index, seed, probabilities=True)
    ours = getattr(segcore_losses, loss)(mode, ignore_index=ignore_index, from_logits=False)
    return ours, probs_pred, y_true


# -- Dice, Jaccard, Tversky ----------------------------------------------------------------
REGION = {
    "dice": loss_classes("DiceLoss"),
    "jaccard": loss_classes("JaccardLoss"),
    "tversky": loss_classes("TverskyLoss"),
}


@pytest.mark.parametrize(
    ("name", "mode", "ignore_index", "smooth", "log_loss", "from_logits"),
    list(itertools.product(REGION, MODES, (None, IGNORE), (0.0, 1.0), (False, True),
                           (True, False))),
)
def test_region_losses_match_smp(name, mode, ignore_index, smooth, log_loss, from_logits):
    kwargs = dict(log_loss=log_loss, from_logits=from_logits, smooth=smooth,
                  ignore_index=ignore_index)
    for seed in (0, 1):
        y_pred, y_true = make_inputs(mode, ignore_index, seed, probabilities=not from_logits)
        assert_matches_smp(REGION[name], y_pred, y_true, mode, **kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("alpha", "beta", "gamma"), [(0.3, 0.7, 1.0), (0.7, 0.3, 2.0),
                                                      (1.0, 1.0, 0.75)])
def test_tversky_parameters_match_smp(mode, alpha, beta, gamma):
    y_pred, y_true = make_inputs(mode, IGNORE, 3)
    assert_matches_smp(REGION["tversky"], y_pred, y_true, mode, alpha=alpha, beta=beta,
                       gamma=gamma, ignore_index=IGNORE)


@pytest.mark.parametrize("name", REGION)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("ignore_index", [None, IGNORE])
def test_region_classes_subset_matches_smp(name, mode, ignore_index):
    y_pred, y_true = make_inputs(mode, ignore_index, 4)
    assert_matches_smp(REGION[name], y_pred, y_true, mode, classes=[0, 2, 3],
                       ignore_index=ignore_index)


@pytest.mark.parametrize("name", REGION)
@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
@pytest.mark.parametrize("ignore_index", [None, IGNORE])
@pytest.mark.parametrize("classes", [None, [1, 2, 3]])
def test_region_class_weights(name, mode, ignore_index, classes):
    ours_cls, smp_cls = REGION[name]
    weights = [0.5, 2.0, 1.0, 3.0]
    y_pred, y_true = make_inputs(mode, ignore_index, 5)
    ours = ours_cls(mode, classes=classes, ignore_index=ignore_index, class_weights=weights)
    value = ours(y_pred, y_true)
    # SMP 0.6.0 has class_weights too: same value.
    smp_value = smp_cls(mode, classes=classes, ignore_index=ignore_index,
                        class_weights=weights)(y_pred, y_true)
    assert_equal(value, smp_value)
    # And by hand: the weighted mean of SMP's single-class losses.
    chosen = classes if classes is not None else range(C)
    per_class = torch.stack([smp_cls(mode, classes=[c], ignore_index=ignore_index)(y_pred, y_true)
                             for c in chosen])
    w = torch.tensor([weights[c] for c in chosen])
    assert_equal(value, (per_class * w).sum() / w.sum())


def test_tversky_class_weights_and_gamma_by_hand():
    # (weighted mean of the per-class losses) ** gamma, per-class losses from SMP.
    weights = [1.0, 0.0, 2.0, 1.0]
    y_pred, y_true = make_inputs("multiclass", IGNORE, 6)
    kwargs = dict(alpha=0.3, beta=0.7, ignore_index=IGNORE)
    value = segcore_losses.TverskyLoss("multiclass", gamma=1.5, class_weights=weights,
                                       **kwargs)(y_pred, y_true)
    per_class = torch.stack([smp_losses.TverskyLoss("multiclass", classes=[c], **kwargs)(
        y_pred, y_true) for c in range(C)])
    w = torch.tensor(weights)
    assert_equal(value, ((per_class * w).sum() / w.sum()) ** 1.5)


# -- Focal ---------------------------------------------------------------------------------
def _hand_focal_per_class(logits, target, valid, alpha, gamma):
    """Mean sigmoid focal loss of one class over its valid pixels, from torch's BCE."""
    logits, target = logits[valid], target[valid].float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    loss = (1 - torch.exp(-bce)) ** gamma * bce
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss.mean()


@pytest.mark.parametrize(
    ("mode", "ignore_index", "alpha", "gamma", "reduction"),
    list(itertools.product(MODES, (None, IGNORE), (None, 0.25), (0.0, 2.0), ("mean", "sum"))),
)
def test_focal_matches_smp(mode, ignore_index, alpha, gamma, reduction):
    kwargs = dict(alpha=alpha, gamma=gamma, ignore_index=ignore_index, reduction=reduction)
    y_pred, y_true = make_inputs(mode, ignore_index, 7)
    value = segcore_losses.FocalLoss(mode, **kwargs)(y_pred, y_true)
    if mode == "multilabel" and ignore_index is not None:
        # SMP 0.6.0 crashes here (IndexError: it indexes a class channel (N, H, W) with the
        # (N, C, H, W) mask of valid pixels). By hand: per class, the focal loss of its valid
        # pixels, from torch's binary_cross_entropy_with_logits, then the mean over classes.
        valid = y_true != ignore_index
        per_class = []
        for c in range(C):
            mean = _hand_focal_per_class(y_pred[:, c], y_true[:, c], valid[:, c], alpha, gamma)
            per_class.append(mean if reduction == "mean" else mean * valid[:, c].sum())
        assert_equal(value, torch.stack(per_class).mean())
        return
    assert_equal(value, smp_losses.FocalLoss(mode, **kwargs)(y_pred, y_true))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("normalized", "reduced_threshold"), [(True, None), (False, 0.5),
                                                               (True, 0.5)])
def test_focal_variants_match_smp(mode, normalized, reduced_threshold):
    kwargs = dict(alpha=0.25, normalized=normalized, reduced_threshold=reduced_threshold,
                  reduction="sum")
    y_pred, y_true = make_inputs(mode, None, 8)
    assert_matches_smp(loss_classes("FocalLoss"), y_pred, y_true, mode, **kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ignore_index", [None, IGNORE])
def test_focal_from_probabilities(mode, ignore_index):
    ours, probs_pred, y_true = loss_on_probabilities("FocalLoss", mode, ignore_index, 9)
    value = ours(probs_pred, y_true)
    # The focal loss treats every channel as a sigmoid problem, so probabilities p are the
    # sigmoid of logit(p). SMP 0.6.0 turns multiclass probabilities into log(p) instead, whose
    # sigmoid p / (1 + p) never exceeds 0.5 (a bug), and it crashes for multilabel with an
    # ignore_index: compare with SMP on logit(p) from logits (same math, no such issue).
    logits = torch.logit(probs_pred.clamp(1e-7, 1 - 1e-7))
    if mode == "multilabel" and ignore_index is not None:
        valid = y_true != ignore_index
        expected = torch.stack([
            _hand_focal_per_class(logits[:, c], y_true[:, c], valid[:, c], None, 2.0)
            for c in range(C)
        ]).mean()
    else:
        expected = smp_losses.FocalLoss(mode, ignore_index=ignore_index)(logits, y_true)
        if mode != "multiclass":  # here SMP's own from_logits=False path is the same math
            smp_probs = smp_losses.FocalLoss(mode, ignore_index=ignore_index, from_logits=False)
            assert_equal(value, smp_probs(probs_pred, y_true))
    assert_equal(value, expected)


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_focal_class_weights(mode):
    weights = [2.0, 1.0, 0.5, 0.0]
    y_pred, y_true = make_inputs(mode, None, 10)
    value = segcore_losses.FocalLoss(mode, class_weights=weights)(y_pred, y_true)
    assert_equal(value, smp_losses.FocalLoss(mode, class_weights=weights)(y_pred, y_true))
    # By hand: weighted mean of the per-class focal losses.
    target = F.one_hot(y_true, C).permute(0, 3, 1, 2) if mode == "multiclass" else y_true
    valid = torch.ones_like(y_true[:, 0] if mode == "multilabel" else y_true, dtype=torch.bool)
    per_class = torch.stack([_hand_focal_per_class(y_pred[:, c], target[:, c], valid, None, 2.0)
                             for c in range(C)])
    w = torch.tensor(weights)
    assert_equal(value, (per_class * w).sum() / w.sum())


@pytest.mark.parametrize("mode", MODES)
def test_focal_reduction_none(mode):
    y_pred, y_true = make_inputs(mode, None, 11)
    value = segcore_losses.FocalLoss(mode, reduction="none")(y_pred, y_true)
    assert value.shape == y_pred.shape
    smp_value = smp_losses.FocalLoss(mode, reduction="none")(y_pred, y_true)
    if mode == "binary":  # SMP returns the flat per-pixel losses
        assert_equal(value.reshape(-1), smp_value)
    else:  # SMP averages everything in multiclass/multilabel modes even for "none"
        assert_equal(value.mean(), smp_value)


# -- Lovasz --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "ignore_index", "per_image"),
    list(itertools.product(MODES, (None, IGNORE), (False, True))),
)
def test_lovasz_matches_smp(mode, ignore_index, per_image):
    kwargs = dict(per_image=per_image, ignore_index=ignore_index)
    for seed in (12, 13):
        y_pred, y_true = make_inputs(mode, ignore_index, seed)
        assert_matches_smp(loss_classes("LovaszLoss"), y_pred, y_true, mode, **kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ignore_index", [None, IGNORE])
def test_lovasz_from_probabilities(mode, ignore_index):
    # SMP 0.6.0 ignores from_logits (it always applies softmax, or reads logits): compare with
    # SMP on the logits that give these probabilities (log p for softmax, logit p for sigmoid).
    ours, probs_pred, y_true = loss_on_probabilities("LovaszLoss", mode, ignore_index, 14)
    logits = probs_pred.log() if mode == "multiclass" else torch.logit(probs_pred, eps=1e-7)
    assert_equal(ours(probs_pred, y_true),
                 smp_losses.LovaszLoss(mode, ignore_index=ignore_index)(logits, y_true))


def test_lovasz_multiclass_image_fully_ignored():
    # SMP 0.6.0 returns an empty tensor for an image whose pixels are all ignored
    # (per_image=True), which breaks the batch mean. segcore gives that image 0, like SMP's
    # binary hinge does: the loss is the mean of SMP's loss on the other image and 0.
    y_pred, y_true = make_inputs("multiclass", None, 15)
    y_true[0] = IGNORE
    value = segcore_losses.LovaszLoss("multiclass", per_image=True, ignore_index=IGNORE)(
        y_pred, y_true)
    second = smp_losses.LovaszLoss("multiclass", ignore_index=IGNORE)(y_pred[1:], y_true[1:])
    assert_equal(value, second / 2)


# -- SoftBCEWithLogitsLoss -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("ignore_index", "smooth_factor", "reduction"),
    list(itertools.product((None, -100, IGNORE), (None, 0.1), ("mean", "sum", "none"))),
)
def test_soft_bce_matches_smp(ignore_index, smooth_factor, reduction):
    y_pred, y_true = make_inputs("multilabel", ignore_index if ignore_index != -100 else None, 16)
    kwargs = dict(ignore_index=ignore_index, smooth_factor=smooth_factor, reduction=reduction,
                  pos_weight=torch.tensor([1.0, 2.0, 0.5, 1.0]).view(C, 1, 1),
                  weight=torch.rand(1, 1, H, W))
    assert_matches_smp(loss_classes("SoftBCEWithLogitsLoss"), y_pred, y_true, **kwargs)


@pytest.mark.parametrize("smooth_factor", [None, 0.1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.long])
def test_soft_bce_binary_target_without_channel(smooth_factor, dtype):
    # The documented target shape (N, H, W) for an (N, 1, H, W) output crashes SMP 0.6.0
    # (ValueError: target size must be the same as input size), and so does a long target
    # without smoothing; compare with SMP on the float (N, 1, H, W) target and with torch.
    y_pred, y_true = make_inputs("binary", IGNORE, 17)
    ours = segcore_losses.SoftBCEWithLogitsLoss(ignore_index=IGNORE, smooth_factor=smooth_factor)
    value = ours(y_pred, y_true.to(dtype))
    channel_target = y_true.unsqueeze(1).float()
    smp_loss = smp_losses.SoftBCEWithLogitsLoss(ignore_index=IGNORE, smooth_factor=smooth_factor)
    smp_value = smp_loss(y_pred, channel_target)
    assert_equal(value, smp_value)
    if smooth_factor is None:
        valid = channel_target != IGNORE
        torch_loss = F.binary_cross_entropy_with_logits(
            y_pred, torch.where(valid, channel_target, 0.0), reduction="none")
        assert_equal(value, (torch_loss * valid).mean())


# -- SoftCrossEntropyLoss ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ignore_index", "smooth_factor", "reduction"),
    list(itertools.product((None, -100, IGNORE), (None, 0.0, 0.1), ("mean", "sum", "none"))),
)
def test_soft_ce(ignore_index, smooth_factor, reduction):
    y_pred, y_true = make_inputs("multiclass", ignore_index if ignore_index != -100 else None, 18)
    kwargs = dict(ignore_index=ignore_index, reduction=reduction)
    value = segcore_losses.SoftCrossEntropyLoss(smooth_factor=smooth_factor, **kwargs)(
        y_pred, y_true)
    if smooth_factor is None:
        # SMP 0.6.0 crashes with its default smooth_factor=None (TypeError: None / int).
        # Compare with torch's cross_entropy; SMP's mean divides by every pixel, ignored ones
        # included, which is the mean of torch's unreduced loss (0 at ignored pixels).
        torch_value = F.cross_entropy(y_pred, y_true, reduction="none",
                                      ignore_index=ignore_index if ignore_index is not None
                                      else -100)
        expected = {"mean": torch_value.mean(), "sum": torch_value.sum(),
                    "none": torch_value}[reduction]
        assert_equal(value, expected)
        return
    smp_value = smp_losses.SoftCrossEntropyLoss(smooth_factor=smooth_factor, **kwargs)(
        y_pred, y_true)
    if reduction == "none" and ignore_index is not None:
        smp_value = smp_value.squeeze(1)  # SMP keeps the class dimension here
    assert_equal(value, smp_value)
    if ignore_index is None or ignore_index == -100:  # no ignored pixel: torch's label smoothing
        torch_value = F.cross_entropy(y_pred, y_true, reduction=reduction,
                                      label_smoothing=smooth_factor)
        assert_equal(value, torch_value)


def test_soft_ce_class_dimension_last():
    y_pred, y_true = make_inputs("multiclass", None, 19)
    ours = segcore_losses.SoftCrossEntropyLoss(smooth_factor=0.1, dim=-1)
    smp_loss = smp_losses.SoftCrossEntropyLoss(smooth_factor=0.1, dim=1)
    assert_equal(ours(y_pred.permute(0, 2, 3, 1), y_true), smp_loss(y_pred, y_true))


# -- MCC -----------------------------------------------------------------------------------
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
@pytest.mark.parametrize("target_shape", ["N1HW", "NHW"])
def test_mcc_matches_smp(eps, target_shape):
    probs, y_true = make_inputs("binary", None, 20, probabilities=True)
    y_true = y_true.float()
    if target_shape == "N1HW":
        y_true = y_true.unsqueeze(1)
    assert_matches_smp(loss_classes("MCCLoss"), probs, y_true, eps)
    assert_equal(segcore_losses.MCCLoss(eps, from_logits=True)(torch.logit(probs), y_true),
                 smp_losses.MCCLoss(eps)(probs, y_true))


# -- by name -------------------------------------------------------------------------------
def test_build_loss_weighted_sum_matches_smp_terms():
    y_pred, y_true = make_inputs("multiclass", IGNORE, 21)
    combined = segcore.build_loss({"dice": 1.0, "focal": 0.5, "lovasz": 0.25},
                                  mode="multiclass", ignore_index=IGNORE)
    total = combined(y_pred, y_true)
    dice = smp_losses.DiceLoss("multiclass", ignore_index=IGNORE)(y_pred, y_true)
    focal = smp_losses.FocalLoss("multiclass", ignore_index=IGNORE)(y_pred, y_true)
    lovasz = smp_losses.LovaszLoss("multiclass", ignore_index=IGNORE)(y_pred, y_true)
    assert_equal(total, dice + 0.5 * focal + 0.25 * lovasz)
    assert_equal(combined.last_values["focal"], focal)
