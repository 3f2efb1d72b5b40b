"""The common base of the overlap losses (Jaccard, Dice, Tversky): ``1 - Tversky index``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from segcore_losses._functional import (
    ClassWeights,
    activate,
    check_class_options,
    check_class_weights,
    check_classes,
    check_flag,
    check_ignore_index,
    check_inputs,
    check_mode,
    check_number,
    empty_batch_loss,
    flat_targets,
    reduce_classes,
    soft_overlap_counts,
    tversky_index,
)


class OverlapLoss(nn.Module):
    """``1 - T`` (or ``-log T``) per class, averaged over classes, where ``T`` is the Tversky index.

    ``T_c = (TP_c + smooth) / max(TP_c + alpha FP_c + beta FN_c + smooth, eps)``, with soft counts
    summed over the batch and all pixels. Classes without any target pixel in the batch add 0
    (but still count in the average). The result is raised to the power ``gamma``.

    ``TverskyLoss`` keeps this signature; ``FixedOverlapLoss`` fixes ``alpha``/``beta`` (Dice
    0.5/0.5, Jaccard 1/1).
    """

    #: Set to False to skip the target value check (one host sync per call) outside compilation.
    check_target_values: bool = True

    def __init__(
        self,
        mode: str,
        classes: Sequence[int] | Tensor | None = None,
        log_loss: bool = False,
        from_logits: bool = True,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        eps: float = 1e-7,
        alpha: float = 0.5,
        beta: float = 0.5,
        gamma: float = 1.0,
        class_weights: ClassWeights = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = check_mode(mode, name)
        self.classes = check_classes(classes, self.mode, name)
        self.log_loss = check_flag(log_loss, "log_loss", name)
        self.from_logits = check_flag(from_logits, "from_logits", name)
        self.smooth = check_number(smooth, "smooth", name, minimum=0.0)
        self.ignore_index = check_ignore_index(ignore_index, name)
        self.eps = check_number(eps, "eps", name, minimum=0.0)
        self.alpha = check_number(alpha, "alpha", name, minimum=0.0)
        self.beta = check_number(beta, "beta", name, minimum=0.0)
        self.gamma = check_number(gamma, "gamma", name, minimum=0.0, exclusive_minimum=True)
        self.class_weights: Tensor | None
        self.register_buffer(
            "class_weights", check_class_weights(class_weights, self.mode, name), persistent=False
        )

    def per_class_loss(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        """The loss of each class, shape ``(C,)`` (0 for classes absent from the target)."""
        name = type(self).__name__
        check_inputs(y_pred, y_true, self.mode, self.ignore_index, name, self.check_target_values)
        num_classes = y_pred.shape[1]
        check_class_options(num_classes, self.classes, self.class_weights, name)

        probs = activate(y_pred, self.mode, self.from_logits)
        probs = probs.reshape(probs.shape[0], num_classes, math.prod(probs.shape[2:]))
        target, valid = flat_targets(num_classes, y_true, self.mode, self.ignore_index, probs.dtype)
        if valid is not None:
            probs = probs * valid

        dims = (0, 2)
        tp, fp, fn = soft_overlap_counts(probs, target, dims)
        score = tversky_index(tp, fp, fn, self.alpha, self.beta, self.smooth, self.eps)
        loss = -torch.log(score.clamp_min(self.eps)) if self.log_loss else 1.0 - score
        present = target.sum(dims) > 0
        return loss * present.to(loss.dtype)

    def forward(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        """Args: ``y_pred`` (N, C, H, W) logits or probabilities; ``y_true`` (N, H, W) or
        (N, C, H, W) (see the class docstring). Returns a scalar tensor (0 for an empty batch).
        """
        per_class = self.per_class_loss(y_pred, y_true)
        if y_pred.numel() == 0:
            return empty_batch_loss(y_pred)
        loss = reduce_classes(per_class, self.classes, self.class_weights)
        if self.gamma != 1.0:
            # 0 ** gamma has an infinite derivative for gamma < 1; take 0 there (the loss is at
            # its minimum), without a data-dependent branch.
            positive = loss > 0
            safe = torch.where(positive, loss, torch.ones_like(loss))
            loss = torch.where(positive, safe**self.gamma, torch.zeros_like(loss))
        return loss

    def extra_repr(self) -> str:
        parts = [f"mode={self.mode!r}"]
        if self.classes is not None:
            parts.append(f"classes={list(self.classes)}")
        if self.ignore_index is not None:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.smooth:
            parts.append(f"smooth={self.smooth}")
        if self.log_loss:
            parts.append("log_loss=True")
        if not self.from_logits:
            parts.append("from_logits=False")
        return ", ".join(parts)


class FixedOverlapLoss(OverlapLoss):
    """An overlap loss with ``alpha = beta = overlap_weight`` (set by a subclass) and gamma 1."""

    overlap_weight: ClassVar[float]

    def __init__(
        self,
        mode: str,
        classes: Sequence[int] | Tensor | None = None,
        log_loss: bool = False,
        from_logits: bool = True,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        eps: float = 1e-7,
        class_weights: ClassWeights = None,
    ) -> None:
        weight = self.overlap_weight
        super().__init__(
            mode, classes, log_loss, from_logits, smooth, ignore_index, eps,
            alpha=weight, beta=weight, gamma=1.0, class_weights=class_weights,
        )


_FIXED_OVERLAP_DOC = """{title} for binary, multiclass and multilabel segmentation.

    Per class ``c``, with soft counts summed over the batch and the pixels::

        {index}_c = (TP_c + smooth) / max({denominator} + smooth, eps)
        loss_c = 1 - {index}_c            (or -log(max({index}_c, eps)) with log_loss=True)

    ``loss_c`` is 0 for a class with no target pixel in the batch; the loss is the mean of
    ``loss_c`` over the classes (over ``classes`` if given), or ``sum(w_c loss_c) / sum(w_c)``
    with ``class_weights``.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"`` (``segcore.*_MODE``).
        classes: indices of the classes that contribute to the loss; all by default.
        log_loss: ``-log({score})`` instead of ``1 - {score}``.
        from_logits: ``y_pred`` holds logits (softmax is applied in multiclass mode, sigmoid
            otherwise); ``False`` when it already holds probabilities.
        smooth: added to numerator and denominator.
        ignore_index: target value of pixels that do not count.
        eps: lower bound of the denominator (and of the score under ``log_loss``).
        class_weights: one non-negative weight per class (multiclass, multilabel).

    Shape:
        ``y_pred`` (N, C, H, W); ``y_true`` (N, H, W) class indices (multiclass), (N, H, W) or
        (N, 1, H, W) 0/1 (binary), (N, C, H, W) 0/1 (multilabel). Returns a scalar.

    Example::

        {example}
    """


def fixed_overlap_doc(
    title: str, index: str, denominator: str, score: str, example: Sequence[str]
) -> str:
    """The class docstring of a ``FixedOverlapLoss``: its formula, arguments and example lines."""
    return _FIXED_OVERLAP_DOC.format(
        title=title,
        index=index,
        denominator=denominator,
        score=score,
        example="\n        ".join(example),
    )
