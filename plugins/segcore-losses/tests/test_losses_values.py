"""Every loss against values computed by hand from its definition, on tiny inputs.

Cases: perfect prediction, all wrong, an empty class, ignored pixels, in every mode the loss
supports. Predictions are given as probabilities (``from_logits=False``) where that makes the
arithmetic readable.
"""

from __future__ import annotations

import math

import pytest
import segcore_losses as L
import torch


def close(actual: torch.Tensor, expected: float, tol: float = 1e-6) -> None:
    assert actual.dim() == 0, f"expected a scalar, got shape {tuple(actual.shape)}"
    assert math.isclose(float(actual), expected, rel_tol=tol, abs_tol=tol), (
        f"{float(actual)} != {expected}"
    )


# A binary case: probabilities p and 0/1 targets t of one 2x2 image.
#   TP = 0.9 + 0.6 + 0.1 = 1.6, FP = 0.2, FN = 0.1 + 0.4 + 0.9 = 1.4
BINARY_P = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]])
BINARY_T = torch.tensor([[[1, 0], [1, 1]]])
TP, FP, FN = 1.6, 0.2, 1.4

# A multiclass case: 3 classes, 3 pixels (1x3), class 2 absent from the target.
MULTICLASS_P = (
    torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]).T.reshape(1, 3, 1, 3)
)
MULTICLASS_T = torch.tensor([[[0, 1, 0]]])
#   class 0: TP = 0.7 + 0.3, FP = 0.1, FN = 0.3 + 0.7;  class 1: TP = 0.8, FP = 0.5, FN = 0.2

# A multilabel case: 2 channels, 2 pixels; channel 1 has no positive pixel.
MULTILABEL_P = torch.tensor([[[[0.8, 0.3]], [[0.4, 0.6]]]])
MULTILABEL_T = torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]]]])
#   channel 0: TP = 0.8, FP = 0.3, FN = 0.2


def dice(tp: float, fp: float, fn: float, smooth: float = 0.0) -> float:
    return (tp + smooth) / (tp + 0.5 * fp + 0.5 * fn + smooth)


# -- Dice, Jaccard, Tversky ----------------------------------------------------------------
class TestRegionLosses:
    def test_binary(self):
        close(L.DiceLoss("binary", from_logits=False)(BINARY_P, BINARY_T), 1 - 3.2 / 4.8)
        close(L.JaccardLoss("binary", from_logits=False)(BINARY_P, BINARY_T), 1 - 1.6 / 3.2)
        tversky = L.TverskyLoss("binary", from_logits=False, alpha=0.3, beta=0.7)
        close(tversky(BINARY_P, BINARY_T), 1 - TP / (TP + 0.3 * FP + 0.7 * FN))

    def test_binary_smooth_log_loss_and_gamma(self):
        close(L.DiceLoss("binary", from_logits=False, smooth=1.0)(BINARY_P, BINARY_T),
              1 - 2.6 / 3.4)
        close(L.DiceLoss("binary", from_logits=False, log_loss=True)(BINARY_P, BINARY_T),
              -math.log(2 / 3))
        close(L.JaccardLoss("binary", from_logits=False, log_loss=True)(BINARY_P, BINARY_T),
              -math.log(0.5))
        close(L.TverskyLoss("binary", from_logits=False, gamma=2.0)(BINARY_P, BINARY_T),
              (1 - 2 / 3) ** 2)

    def test_binary_from_logits_applies_sigmoid(self):
        logits = torch.logit(BINARY_P)
        close(L.DiceLoss("binary")(logits, BINARY_T), 1 - 2 / 3, tol=1e-5)
        # (N, 1, H, W) targets work too
        close(L.DiceLoss("binary")(logits, BINARY_T.unsqueeze(1)), 1 - 2 / 3, tol=1e-5)

    @pytest.mark.parametrize("loss_class", [L.DiceLoss, L.JaccardLoss, L.TverskyLoss])
    def test_perfect_and_all_wrong(self, loss_class):
        target = torch.tensor([[[1, 0], [0, 1]]])
        perfect = target.unsqueeze(1).float()
        close(loss_class("binary", from_logits=False)(perfect, target), 0.0)
        close(loss_class("binary", from_logits=False)(1 - perfect, target), 1.0)
        # multiclass: one-hot probabilities of the right/wrong class
        labels = torch.tensor([[[0, 1], [2, 1]]])
        one_hot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
        close(loss_class("multiclass", from_logits=False)(one_hot, labels), 0.0)
        close(loss_class("multiclass", from_logits=False)(one_hot.roll(1, dims=1), labels), 1.0)
        # multilabel
        close(loss_class("multilabel", from_logits=False)(one_hot, one_hot), 0.0)
        close(loss_class("multilabel", from_logits=False)(1 - one_hot, one_hot), 1.0)

    def test_multiclass_with_empty_class(self):
        # class 2 is absent: it adds 0 but still counts in the mean over the 3 classes
        expected = ((1 - dice(1.0, 0.1, 1.0)) + (1 - dice(0.8, 0.5, 0.2)) + 0.0) / 3
        close(L.DiceLoss("multiclass", from_logits=False)(MULTICLASS_P, MULTICLASS_T), expected)
        jaccard = ((1 - 1.0 / 2.1) + (1 - 0.8 / 1.5)) / 3
        close(L.JaccardLoss("multiclass", from_logits=False)(MULTICLASS_P, MULTICLASS_T), jaccard)

    def test_multiclass_from_logits_applies_softmax(self):
        logits = MULTICLASS_P.log() + 3.0  # softmax(log p + const) = p
        expected = ((1 - dice(1.0, 0.1, 1.0)) + (1 - dice(0.8, 0.5, 0.2))) / 3
        close(L.DiceLoss("multiclass")(logits, MULTICLASS_T), expected, tol=1e-5)

    def test_multiclass_ignored_pixel(self):
        target = torch.tensor([[[0, 1, 255]]])
        # without the last pixel: class 0 TP 0.7 FP 0.1 FN 0.3; class 1 TP 0.8 FP 0.2 FN 0.2
        expected = ((1 - dice(0.7, 0.1, 0.3)) + (1 - dice(0.8, 0.2, 0.2))) / 3
        loss = L.DiceLoss("multiclass", from_logits=False, ignore_index=255)
        close(loss(MULTICLASS_P, target), expected)

    def test_multiclass_classes_and_class_weights(self):
        d0, d1 = 1 - dice(1.0, 0.1, 1.0), 1 - dice(0.8, 0.5, 0.2)
        loss = L.DiceLoss("multiclass", from_logits=False, classes=[1])
        close(loss(MULTICLASS_P, MULTICLASS_T), d1)
        loss = L.DiceLoss("multiclass", from_logits=False, class_weights=[3.0, 1.0, 0.0])
        close(loss(MULTICLASS_P, MULTICLASS_T), (3 * d0 + d1) / 4)
        loss = L.DiceLoss("multiclass", from_logits=False, classes=[0, 2],
                        class_weights=torch.tensor([1.0, 5.0, 3.0]))
        close(loss(MULTICLASS_P, MULTICLASS_T), (1 * d0 + 3 * 0.0) / 4)

    def test_multilabel_with_empty_channel(self):
        expected = (1 - dice(0.8, 0.3, 0.2) + 0.0) / 2
        close(L.DiceLoss("multilabel", from_logits=False)(MULTILABEL_P, MULTILABEL_T), expected)

    def test_binary_and_multilabel_ignored_pixels(self):
        target = BINARY_T.clone()
        target[0, 1, 1] = 255  # drop the pixel p = 0.1, t = 1
        expected = 1 - dice(1.5, 0.2, 0.5)
        loss = L.DiceLoss("binary", from_logits=False, ignore_index=255)
        close(loss(BINARY_P, target), expected)
        multilabel = MULTILABEL_T.clone()
        multilabel[0, 0, 0, 1] = -1  # drop channel 0, pixel 1 (p = 0.3, t = 0)
        loss = L.DiceLoss("multilabel", from_logits=False, ignore_index=-1)
        close(loss(MULTILABEL_P, multilabel), (1 - dice(0.8, 0.0, 0.2)) / 2)

    def test_soft_targets_use_min_overlap(self):
        # TP = sum(min(p, t)) for soft targets: min(0.8, 0.5) + min(0.3, 0.5) = 0.8
        target = torch.tensor([[[[0.5, 0.5]]]])
        p = torch.tensor([[[[0.8, 0.3]]]])
        tp, fp, fn = 0.8, 1.1 - 0.8, 1.0 - 0.8
        close(L.DiceLoss("multilabel", from_logits=False)(p, target), 1 - dice(tp, fp, fn))


# -- Focal ---------------------------------------------------------------------------------
def focal(p: float, t: int, gamma: float = 2.0, alpha: float | None = None) -> float:
    pt = p if t == 1 else 1 - p
    value = (1 - pt) ** gamma * -math.log(pt)
    if alpha is not None:
        value *= alpha if t == 1 else 1 - alpha
    return value


class TestFocal:
    def test_binary(self):
        pixels = [(0.9, 1), (0.2, 0), (0.6, 1), (0.1, 1)]
        expected = sum(focal(p, t) for p, t in pixels) / 4
        close(L.FocalLoss("binary", from_logits=False)(BINARY_P, BINARY_T), expected, tol=1e-5)
        alpha = sum(focal(p, t, alpha=0.25) for p, t in pixels) / 4
        close(L.FocalLoss("binary", from_logits=False, alpha=0.25)(BINARY_P, BINARY_T), alpha,
              tol=1e-5)
        plain = sum(focal(p, t, gamma=0.0) for p, t in pixels)
        loss = L.FocalLoss("binary", from_logits=False, gamma=0.0, reduction="sum")
        close(loss(BINARY_P, BINARY_T), plain, tol=1e-5)

    def test_binary_ignored_pixel_and_none_reduction(self):
        target = BINARY_T.clone()
        target[0, 0, 1] = 255
        pixels = [(0.9, 1), (0.6, 1), (0.1, 1)]
        loss = L.FocalLoss("binary", from_logits=False, ignore_index=255)
        close(loss(BINARY_P, target), sum(focal(p, t) for p, t in pixels) / 3, tol=1e-5)
        per_pixel = L.FocalLoss("binary", from_logits=False, ignore_index=255, reduction="none")(
            BINARY_P, target)
        assert per_pixel.shape == (1, 1, 2, 2)
        assert float(per_pixel[0, 0, 0, 1]) == 0.0
        close(per_pixel[0, 0, 1, 1], focal(0.1, 1), tol=1e-5)

    def test_perfect_prediction_is_near_zero(self):
        logits = torch.tensor([[[[20.0, -20.0]]]])
        target = torch.tensor([[[1, 0]]])
        assert float(L.FocalLoss("binary")(logits, target)) < 1e-12

    def test_multiclass_is_one_vs_rest(self):
        # every class channel is a sigmoid problem on the one-hot target
        probs = MULTICLASS_P
        labels = MULTICLASS_T[0, 0].tolist()
        per_class = [
            sum(focal(float(probs[0, c, 0, i]), int(labels[i] == c)) for i in range(3)) / 3
            for c in range(3)
        ]
        loss = L.FocalLoss("multiclass", from_logits=False)
        close(loss(probs, MULTICLASS_T), sum(per_class) / 3, tol=1e-5)
        weighted = L.FocalLoss("multiclass", from_logits=False, class_weights=[1.0, 2.0, 1.0])
        close(weighted(probs, MULTICLASS_T),
              (per_class[0] + 2 * per_class[1] + per_class[2]) / 4, tol=1e-5)
        ignored = torch.tensor([[[0, 255, 0]]])
        per_class = [
            sum(focal(float(probs[0, c, 0, i]), int(labels[i] == c)) for i in (0, 2)) / 2
            for c in range(3)
        ]
        loss = L.FocalLoss("multiclass", from_logits=False, ignore_index=255)
        close(loss(probs, ignored), sum(per_class) / 3, tol=1e-5)

    def test_multilabel_ignored_pixel_per_channel(self):
        target = MULTILABEL_T.clone()
        target[0, 1, 0, 0] = -1  # channel 1 keeps one pixel, channel 0 both
        channel0 = (focal(0.8, 1) + focal(0.3, 0)) / 2
        channel1 = focal(0.6, 0)
        loss = L.FocalLoss("multilabel", from_logits=False, ignore_index=-1)
        close(loss(MULTILABEL_P, target), (channel0 + channel1) / 2, tol=1e-5)

    def test_all_pixels_ignored_gives_zero(self):
        target = torch.full((1, 2, 2), 255)
        value = L.FocalLoss("binary", ignore_index=255)(torch.randn(1, 1, 2, 2), target)
        assert float(value) == 0.0

    def test_reduced_and_normalized(self):
        pixels = [(0.9, 1), (0.2, 0), (0.6, 1), (0.1, 1)]
        # reduced focal: focal term 1 where pt < 0.5, ((1 - pt) / 0.5) ** 2 elsewhere
        terms = [1.0 if (p if t else 1 - p) < 0.5 else ((1 - (p if t else 1 - p)) / 0.5) ** 2
                 for p, t in pixels]
        bce = [-math.log(p if t else 1 - p) for p, t in pixels]
        loss = L.FocalLoss("binary", from_logits=False, reduced_threshold=0.5, reduction="sum")
        close(loss(BINARY_P, BINARY_T), sum(f * b for f, b in zip(terms, bce)), tol=1e-5)
        # normalized: divided by the sum of the focal terms
        terms = [(1 - (p if t else 1 - p)) ** 2 for p, t in pixels]
        loss = L.FocalLoss("binary", from_logits=False, normalized=True, reduction="sum")
        close(loss(BINARY_P, BINARY_T), sum(f * b for f, b in zip(terms, bce)) / sum(terms),
              tol=1e-5)


# -- Lovasz --------------------------------------------------------------------------------
class TestLovasz:
    def test_binary_hinge_of_hard_mistakes_is_jaccard_loss(self):
        # Hinge errors of 1 on the mistakes and 0 elsewhere: the Lovasz extension equals the
        # Jaccard loss |M| / |gt U M| of the mistake set M. labels [1, 1, 0, 0], mistakes on
        # pixels 1 (FN) and 2 (FP): 2 / 3.
        logits = torch.tensor([[[[1.0, 0.0, 0.0, -1.0]]]])
        labels = torch.tensor([[[1, 1, 0, 0]]])
        close(L.LovaszLoss("binary")(logits, labels), 2 / 3)
        # perfect with margin: 0; the second pixel ignored: M = {2}, gt U M = {0, 2}
        close(L.LovaszLoss("binary")(torch.tensor([[[[3.0, 1.0, -1.0, -2.0]]]]), labels), 0.0)
        ignored = torch.tensor([[[1, 255, 0, 0]]])
        close(L.LovaszLoss("binary", ignore_index=255)(logits, ignored), 1 / 2)

    def test_binary_hinge_by_hand(self):
        # errors 1 - z*s = [-1, 2] sorted [2, -1]; Jaccard losses [1/2, 1]; gradient [1/2, 1/2]
        logits = torch.tensor([[[[2.0, -1.0]]]])
        labels = torch.tensor([[[1, 1]]])
        close(L.LovaszLoss("binary")(logits, labels), 2 * 0.5)

    def test_per_image_averages_images(self):
        logits = torch.tensor([[[[1.0, 0.0, 0.0, -1.0]]], [[[1.0, 1.0, -1.0, -1.0]]]])
        labels = torch.tensor([[[1, 1, 0, 0]], [[1, 1, 0, 0]]])
        close(L.LovaszLoss("binary", per_image=True)(logits, labels), (2 / 3 + 0.0) / 2)
        # over the batch: M = {1, 2}, gt U M = {0, 1, 2, 4, 5} -> 2 / 5
        close(L.LovaszLoss("binary")(logits, labels), 2 / 5)

    def test_multilabel_pools_channels(self):
        logits = torch.tensor([[[[1.0, 0.0]], [[0.0, -1.0]]]])  # mistakes: ch0 px1, ch1 px0
        labels = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])
        close(L.LovaszLoss("multilabel")(logits, labels), 2 / 3)

    def test_multiclass_softmax_of_hard_predictions(self):
        # labels [0, 0, 1, 1], predicted [0, 1, 1, 2] (one-hot probabilities):
        # class 0: M = {1}, gt U M = {0, 1} -> 1/2; class 1: M = {1, 3}, gt U M = {1, 2, 3}
        # -> 2/3; class 2 is absent from the target and skipped.
        labels = torch.tensor([[[0, 0, 1, 1]]])
        predicted = torch.tensor([[[0, 1, 1, 2]]])
        probs = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).float()
        close(L.LovaszLoss("multiclass", from_logits=False)(probs, labels), (1 / 2 + 2 / 3) / 2)
        close(L.LovaszLoss("multiclass", from_logits=False)(probs, predicted), 0.0)
        ignored = torch.tensor([[[0, 0, 1, 255]]])  # class 1: M = {1}, gt U M = {1, 2}
        loss = L.LovaszLoss("multiclass", from_logits=False, ignore_index=255)
        close(loss(probs, ignored), (1 / 2 + 1 / 2) / 2)

    def test_everything_ignored_gives_zero(self):
        target = torch.full((2, 3, 3), 255)
        for per_image in (False, True):
            loss = L.LovaszLoss("multiclass", per_image=per_image, ignore_index=255)
            assert float(loss(torch.randn(2, 4, 3, 3), target)) == 0.0
            loss = L.LovaszLoss("binary", per_image=per_image, ignore_index=255)
            assert float(loss(torch.randn(2, 1, 3, 3), target)) == 0.0


# -- L.SoftBCEWithLogitsLoss, L.SoftCrossEntropyLoss, MCC --------------------------------------
def bce(z: float, t: float) -> float:
    p = 1 / (1 + math.exp(-z))
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


class TestSoftBCE:
    logits = torch.tensor([[[[1.5, -0.5], [0.2, -2.0]]]])

    def test_plain_smoothed_and_ignored(self):
        target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (N, H, W) for an (N, 1, H, W) output
        pairs = [(1.5, 1), (-0.5, 0), (0.2, 0), (-2.0, 1)]
        close(L.SoftBCEWithLogitsLoss()(self.logits, target), sum(bce(z, t) for z, t in pairs) / 4)
        smoothed = [(z, 0.9 if t else 0.1) for z, t in pairs]
        close(L.SoftBCEWithLogitsLoss(smooth_factor=0.1)(self.logits, target),
              sum(bce(z, t) for z, t in smoothed) / 4)
        target[0, 1, 1] = 255
        # ignored elements are 0 and still count in the mean (as SMP)
        close(L.SoftBCEWithLogitsLoss(ignore_index=255)(self.logits, target),
              sum(bce(z, t) for z, t in pairs[:3]) / 4)
        close(L.SoftBCEWithLogitsLoss(ignore_index=255, reduction="sum")(self.logits, target),
              sum(bce(z, t) for z, t in pairs[:3]))

    def test_pos_weight(self):
        target = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
        value = L.SoftBCEWithLogitsLoss(pos_weight=torch.tensor([2.0]), reduction="sum")(
            self.logits, target)
        # pos_weight multiplies the positive term: 2 * -log(sigmoid(z)) for t = 1
        expected = 2 * bce(1.5, 1) + bce(-0.5, 0) + bce(0.2, 0) + 2 * bce(-2.0, 1)
        close(value, expected)


class TestSoftCrossEntropy:
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]).T.reshape(1, 3, 1, 2)
    target = torch.tensor([[[1, 0]]])

    @staticmethod
    def log_softmax(values: list[float]) -> list[float]:
        total = math.log(sum(math.exp(v) for v in values))
        return [v - total for v in values]

    def test_plain_and_smoothed(self):
        first = self.log_softmax([1.0, 2.0, 0.5])
        second = self.log_softmax([0.0, -1.0, 3.0])
        close(L.SoftCrossEntropyLoss()(self.logits, self.target), (-first[1] - second[0]) / 2)
        e = 0.1
        smoothed = [(1 - e) * -lp[t] + e / 3 * -sum(lp) for lp, t in ((first, 1), (second, 0))]
        close(L.SoftCrossEntropyLoss(smooth_factor=e)(self.logits, self.target), sum(smoothed) / 2)
        ignored = torch.tensor([[[1, 255]]])
        close(L.SoftCrossEntropyLoss(ignore_index=255)(self.logits, ignored), -first[1] / 2)
        per_pixel = L.SoftCrossEntropyLoss(ignore_index=255, reduction="none")(self.logits, ignored)
        assert per_pixel.shape == (1, 1, 2)
        assert float(per_pixel[0, 0, 1]) == 0.0


class TestMCC:
    def test_by_hand(self):
        eps = 1e-5
        tp, fp = 0.9 + 0.6 + 0.1 + eps, 0.2 + eps
        fn, tn = 0.1 + 0.4 + 0.9 + eps, 0.8 + eps
        mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        close(L.MCCLoss()(BINARY_P, BINARY_T), 1 - mcc, tol=1e-5)
        close(L.MCCLoss()(BINARY_P[:, 0], BINARY_T), 1 - mcc, tol=1e-5)  # (N, H, W) output
        close(L.MCCLoss(from_logits=True)(torch.logit(BINARY_P), BINARY_T), 1 - mcc, tol=1e-5)

    def test_perfect_and_all_wrong(self):
        target = torch.tensor([[[1, 0], [0, 1]]])
        close(L.MCCLoss()(target.unsqueeze(1).float(), target), 0.0, tol=1e-4)
        close(L.MCCLoss()(1 - target.unsqueeze(1).float(), target), 2.0, tol=1e-4)


@pytest.mark.parametrize(
    "loss",
    [L.DiceLoss("multiclass"), L.JaccardLoss("multiclass"), L.TverskyLoss("multiclass"),
     L.FocalLoss("multiclass"), L.LovaszLoss("multiclass"), L.SoftCrossEntropyLoss()],
    ids=lambda loss: type(loss).__name__,
)
def test_multiclass_target_with_a_channel_dimension(loss):
    # (N, 1, H, W) class indices are accepted (SMP accepts them too) and mean (N, H, W).
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss(logits, target.unsqueeze(1)), loss(logits, target))
