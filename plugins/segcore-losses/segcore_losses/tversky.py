"""Tversky loss: ``1 - Tversky index`` per class, false positives and negatives weighted."""

from __future__ import annotations

from segcore_losses._region import OverlapLoss


class TverskyLoss(OverlapLoss):
    """Tversky loss for binary, multiclass and multilabel segmentation.

    Per class ``c``, with soft counts summed over the batch and the pixels::

        T_c = (TP_c + smooth) / max(TP_c + alpha FP_c + beta FN_c + smooth, eps)
        loss_c = 1 - T_c            (or -log(max(T_c, eps)) with log_loss=True)
        loss = mean_c(loss_c) ** gamma

    ``alpha = beta = 0.5`` gives the Dice loss, ``alpha = beta = 1`` the Jaccard loss.
    ``loss_c`` is 0 for a class with no target pixel in the batch; with ``class_weights`` the
    mean becomes ``sum(w_c loss_c) / sum(w_c)``.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"`` (``segcore.*_MODE``).
        classes: indices of the classes that contribute to the loss; all by default.
        log_loss: ``-log(tversky)`` instead of ``1 - tversky``.
        from_logits: ``y_pred`` holds logits (softmax in multiclass mode, sigmoid otherwise).
        smooth: added to numerator and denominator.
        ignore_index: target value of pixels that do not count.
        eps: lower bound of the denominator (and of the score under ``log_loss``).
        alpha: weight of the false positives.
        beta: weight of the false negatives.
        gamma: exponent applied to the averaged loss (focal Tversky for gamma != 1).
        class_weights: one non-negative weight per class (multiclass, multilabel).

    Shape:
        ``y_pred`` (N, C, H, W); ``y_true`` (N, H, W) class indices (multiclass), (N, H, W) or
        (N, 1, H, W) 0/1 (binary), (N, C, H, W) 0/1 (multilabel). Returns a scalar.

    Example::

        loss = TverskyLoss("multilabel", alpha=0.3, beta=0.7)
        value = loss(logits, masks)       # both (2, 3, 64, 64), masks of 0/1
    """
