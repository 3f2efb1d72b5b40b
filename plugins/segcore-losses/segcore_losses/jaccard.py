"""Jaccard (IoU) loss: ``1 - Jaccard index`` per class, averaged over classes."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from segcore_losses._functional import ClassWeights
from segcore_losses._region import OverlapLoss


class JaccardLoss(OverlapLoss):
    """Jaccard (soft IoU) loss for binary, multiclass and multilabel segmentation.

    Per class ``c``, with soft counts summed over the batch and the pixels::

        J_c = (TP_c + smooth) / max(TP_c + FP_c + FN_c + smooth, eps)
        loss_c = 1 - J_c            (or -log(max(J_c, eps)) with log_loss=True)

    ``loss_c`` is 0 for a class with no target pixel in the batch; the loss is the mean of
    ``loss_c`` over the classes (over ``classes`` if given), or ``sum(w_c loss_c) / sum(w_c)``
    with ``class_weights``.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"`` (``segcore.*_MODE``).
        classes: indices of the classes that contribute to the loss; all by default.
        log_loss: ``-log(jaccard)`` instead of ``1 - jaccard``.
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

        loss = JaccardLoss("binary")
        value = loss(logits, mask)        # logits (2, 1, 64, 64), mask (2, 64, 64) of 0/1
    """

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
        super().__init__(
            mode, classes, log_loss, from_logits, smooth, ignore_index, eps,
            alpha=1.0, beta=1.0, gamma=1.0, class_weights=class_weights,
        )
