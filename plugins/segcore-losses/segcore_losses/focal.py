"""Focal loss: binary cross-entropy down-weighted on well-classified pixels, per class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segcore_losses._functional import (
    ClassWeights,
    check_class_options,
    check_class_weights,
    check_flag,
    check_ignore_index,
    check_inputs,
    check_mode,
    check_number,
    check_reduction,
    empty_batch_loss,
    flat_targets,
    pixel_count,
    reduce_classes,
    upcast,
)

#: Lower bound of the normaliser of the normalized focal loss.
_NORM_EPS = 1e-6


class FocalLoss(nn.Module):
    """Focal loss for binary, multiclass and multilabel segmentation.

    Every class channel is a sigmoid (one-vs-rest) problem; with ``z`` the logit,
    ``t`` the 0/1 target of the class and ``pt = exp(-BCE(z, t))`` the probability given to the
    right answer::

        l = (1 - pt) ** gamma * BCE(z, t)                      (per pixel and class)
        l = l * (alpha t + (1 - alpha)(1 - t))                 (if alpha is given)
        focal term = 1 where pt < reduced_threshold, ((1 - pt) / reduced_threshold) ** gamma
                     elsewhere                                 (reduced focal loss)
        l = l / sum(focal term of the class)                   (normalized=True)

    ``reduction="mean"`` averages ``l`` over the counted pixels of each class, then over the
    classes (``sum(w_c l_c) / sum(w_c)`` with ``class_weights``); ``"sum"`` sums over the pixels
    and averages over the classes; ``"none"`` returns ``l`` with the output's shape (0 at
    ignored pixels; with ``class_weights`` class ``c`` is scaled by ``w_c * C / sum(w)``).
    In multiclass mode ``t`` is the one-hot encoding of the class index.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        alpha: prior of the positive class in [0, 1]; ``None`` weights both classes equally.
        gamma: focusing power (0 gives plain BCE; ``None`` is the same as 0).
        ignore_index: target value of pixels that do not count.
        from_logits: ``y_pred`` holds logits; ``False`` when it holds probabilities (they are
            clamped to [eps, 1 - eps] and turned into logits).
        eps: clamp of the probabilities when ``from_logits=False``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        normalized: normalized focal loss (https://arxiv.org/abs/1909.07829).
        reduced_threshold: reduced focal loss (https://arxiv.org/abs/1903.01347); best used
            with ``reduction="sum"``.
        class_weights: one non-negative weight per class (multiclass, multilabel).

    Shape:
        ``y_pred`` (N, C, H, W); ``y_true`` (N, H, W) class indices (multiclass), (N, H, W) or
        (N, 1, H, W) 0/1 (binary), (N, C, H, W) 0/1 (multilabel).

    Example::

        loss = FocalLoss("binary", alpha=0.25, gamma=2.0)
        value = loss(logits, mask)        # logits (2, 1, 64, 64), mask (2, 64, 64)
    """

    #: Set to False to skip the target value check (one host sync per call) outside compilation.
    check_target_values: bool = True

    def __init__(
        self,
        mode: str,
        alpha: float | None = None,
        gamma: float | None = 2.0,
        ignore_index: int | None = None,
        from_logits: bool = True,
        eps: float = 1e-7,
        reduction: str | None = "mean",
        normalized: bool = False,
        reduced_threshold: float | None = None,
        class_weights: ClassWeights = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = check_mode(mode, name)
        self.alpha = check_number(alpha, "alpha", name, minimum=0.0, maximum=1.0, allow_none=True)
        self.gamma = 0.0 if gamma is None else check_number(gamma, "gamma", name, minimum=0.0)
        self.ignore_index = check_ignore_index(ignore_index, name)
        self.from_logits = check_flag(from_logits, "from_logits", name)
        self.eps = check_number(eps, "eps", name, minimum=0.0, maximum=0.5, exclusive_minimum=True)
        self.reduction = check_reduction(reduction, name)
        self.normalized = check_flag(normalized, "normalized", name)
        self.reduced_threshold = check_number(
            reduced_threshold, "reduced_threshold", name, minimum=0.0, maximum=1.0,
            exclusive_minimum=True, allow_none=True,
        )
        self.class_weights: Tensor | None
        self.register_buffer(
            "class_weights", check_class_weights(class_weights, self.mode, name), persistent=False
        )

    def _focal_terms(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Per-element loss and focal term, both shaped like ``logits``."""
        log_pt = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        pt = torch.exp(-log_pt)
        if self.reduced_threshold is None:
            focal_term = (1.0 - pt).pow(self.gamma)
        else:
            scaled = ((1.0 - pt) / self.reduced_threshold).pow(self.gamma)
            focal_term = torch.where(pt < self.reduced_threshold, torch.ones_like(scaled), scaled)
        loss = focal_term * log_pt
        if self.alpha is not None:
            loss = loss * (self.alpha * target + (1.0 - self.alpha) * (1.0 - target))
        return loss, focal_term

    def forward(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        """Args: ``y_pred`` (N, C, H, W) logits (or probabilities), ``y_true`` as documented.
        Returns a scalar (0 for an empty batch), or the per-element loss for
        ``reduction="none"``."""
        name = type(self).__name__
        check_inputs(y_pred, y_true, self.mode, self.ignore_index, name, self.check_target_values)
        batch, num_classes = y_pred.shape[0], y_pred.shape[1]
        check_class_options(num_classes, None, self.class_weights, name)
        if y_pred.numel() == 0 and self.reduction != "none":
            return empty_batch_loss(y_pred)

        logits = upcast(y_pred)
        if not self.from_logits:
            probs = logits.clamp(self.eps, 1.0 - self.eps)
            logits = torch.log(probs / (1.0 - probs))
        logits = logits.reshape(batch, num_classes, pixel_count(y_true, self.mode))
        target, valid = flat_targets(
            num_classes, y_true, self.mode, self.ignore_index, logits.dtype
        )

        loss, focal_term = self._focal_terms(logits, target)
        if valid is not None:
            mask = valid.to(loss.dtype)
            loss = loss * mask
            focal_term = focal_term * mask
            count = mask.expand_as(loss).sum((0, 2))
        else:
            count = None
        if self.normalized:
            loss = loss / focal_term.sum((0, 2), keepdim=True).clamp_min(_NORM_EPS)

        if self.reduction == "none":
            if self.class_weights is not None:
                weights = self.class_weights.to(device=loss.device, dtype=loss.dtype)
                loss = loss * (weights * num_classes / weights.sum()).view(1, num_classes, 1)
            return loss.reshape(y_pred.shape)
        per_class = loss.sum((0, 2))
        if self.reduction == "mean":
            if count is None:
                per_class = per_class / (loss.shape[0] * loss.shape[2])
            else:
                per_class = per_class / count.clamp_min(1)
        return reduce_classes(per_class, None, self.class_weights)

    def extra_repr(self) -> str:
        parts = [f"mode={self.mode!r}", f"alpha={self.alpha}", f"gamma={self.gamma}"]
        if self.ignore_index is not None:
            parts.append(f"ignore_index={self.ignore_index}")
        parts.append(f"reduction={self.reduction!r}")
        return ", ".join(parts)
