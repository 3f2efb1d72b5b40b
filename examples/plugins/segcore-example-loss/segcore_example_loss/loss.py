"""The focal Tversky loss (Abraham and Khan, https://arxiv.org/abs/1810.07842)."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segcore import BINARY_MODE, MODES, MULTICLASS_MODE
from segcore.errors import InvalidOptionError, InvalidTargetError


def _number(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    """``value`` as a float in [low, high] (or (low, high]); ``InvalidOptionError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InvalidOptionError(f"focal_tversky: {name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise InvalidOptionError(
            f"focal_tversky: {name} must lie in {bracket}{low:g}, {high:g}], got {value!r}"
        )
    return float(value)


class FocalTverskyLoss(nn.Module):
    """``mean_c (1 - T_c) ** gamma`` with the Tversky index of each class::

        T_c = (TP_c + smooth) / (TP_c + alpha FP_c + beta FN_c + smooth)

    with soft counts summed over the batch and the pixels. ``alpha = beta = 0.5`` and
    ``gamma = 1`` give the Dice loss; ``beta > alpha`` penalises missed pixels more, and
    ``gamma < 1`` focuses on the classes that are already well segmented less.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"`` (``segcore.MODES``).
        alpha: weight of the false positives, in [0, 1].
        beta: weight of the false negatives, in [0, 1].
        gamma: focal exponent, in (0, 3].
        smooth: added to the numerator and the denominator, >= 0.
        from_logits: ``y_pred`` holds logits (softmax in multiclass mode, sigmoid otherwise).
        ignore_index: target value of pixels that do not count (``None``: every pixel counts).

    Shapes: ``y_pred`` (N, C, H, W) (C = 1 in binary mode); ``y_true`` (N, H, W) class
    indices (multiclass), (N, 1, H, W) or (N, H, W) of 0/1 (binary), (N, C, H, W) of 0/1
    (multilabel). Returns a scalar.
    """

    def __init__(
        self,
        mode: str,
        alpha: float = 0.3,
        beta: float = 0.7,
        gamma: float = 0.75,
        smooth: float = 1.0,
        from_logits: bool = True,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise InvalidOptionError(
                f"focal_tversky: unknown mode {mode!r}; valid modes are "
                f"{', '.join(map(repr, MODES))}"
            )
        if not isinstance(from_logits, bool):
            raise InvalidOptionError(f"focal_tversky: from_logits must be True or False, got "
                                     f"{from_logits!r}")
        if ignore_index is not None and (isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, int)):
            raise InvalidOptionError(f"focal_tversky: ignore_index must be an int or None, got "
                                     f"{ignore_index!r}")
        self.mode = mode
        self.alpha = _number("alpha", alpha, 0, 1)
        self.beta = _number("beta", beta, 0, 1)
        self.gamma = _number("gamma", gamma, 0, 3, low_open=True)
        self.smooth = _number("smooth", smooth, 0, math.inf)
        if self.alpha + self.beta == 0 and self.smooth == 0:
            raise InvalidOptionError("focal_tversky: alpha, beta and smooth cannot all be 0")
        self.from_logits = from_logits
        self.ignore_index = ignore_index

    def forward(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        probabilities, target, valid = self._prepare(y_pred, y_true)
        probabilities = probabilities * valid
        target = target * valid
        dims = (0, 2)  # sum over the batch and the pixels: one count per class
        tp = (probabilities * target).sum(dims)
        fp = (probabilities * (1 - target)).sum(dims)
        fn = ((1 - probabilities) * target).sum(dims)
        tversky = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        # clamp: (1 - T) ** gamma has an infinite slope at 0 for gamma < 1
        return (1 - tversky).clamp_min(1e-6).pow(self.gamma).mean()

    def _prepare(self, y_pred: Tensor, y_true: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Probabilities, 0/1 targets and a mask of counted pixels, each (N, C, pixels)."""
        if not isinstance(y_pred, Tensor) or not isinstance(y_true, Tensor):
            raise InvalidTargetError("focal_tversky takes two tensors: (y_pred, y_true)")
        if y_pred.dim() < 3 or (self.mode == BINARY_MODE and y_pred.shape[1] != 1):
            raise InvalidTargetError(
                f"focal_tversky ({self.mode}): y_pred must be (N, C, H, W)"
                + (" with C = 1" if self.mode == BINARY_MODE else "")
                + f", got {tuple(y_pred.shape)}"
            )
        batch, classes = y_pred.shape[:2]
        logits = y_pred.reshape(batch, classes, -1)
        if self.mode == MULTICLASS_MODE:
            probabilities = logits.softmax(1) if self.from_logits else logits
            if y_true.shape != y_pred.shape[:1] + y_pred.shape[2:] or y_true.is_floating_point():
                raise InvalidTargetError(
                    f"focal_tversky (multiclass): y_true must hold class indices of shape "
                    f"{tuple(y_pred.shape[:1] + y_pred.shape[2:])}, got a {y_true.dtype} tensor "
                    f"of shape {tuple(y_true.shape)}"
                )
            labels = y_true.reshape(batch, 1, -1).long()
            valid = labels != self.ignore_index if self.ignore_index is not None else \
                torch.ones_like(labels, dtype=torch.bool)
            labels = labels.where(valid, 0)
            if bool(((labels < 0) | (labels >= classes)).any()):
                raise InvalidTargetError(
                    f"focal_tversky (multiclass): y_true holds values outside [0, {classes})"
                )
            target = F.one_hot(labels.squeeze(1), classes).permute(0, 2, 1)
        else:
            probabilities = logits.sigmoid() if self.from_logits else logits
            if self.mode == BINARY_MODE and y_true.dim() == y_pred.dim() - 1:
                y_true = y_true.unsqueeze(1)
            if y_true.shape != y_pred.shape:
                raise InvalidTargetError(
                    f"focal_tversky ({self.mode}): y_true must have the shape of y_pred "
                    f"{tuple(y_pred.shape)}, got {tuple(y_true.shape)}"
                )
            target = y_true.reshape(batch, classes, -1)
            valid = target != self.ignore_index if self.ignore_index is not None else \
                torch.ones_like(target, dtype=torch.bool)
        return probabilities, target.to(probabilities.dtype), valid.to(probabilities.dtype)
