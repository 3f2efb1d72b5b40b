"""Dice loss: ``1 - Dice coefficient`` per class, averaged over classes."""

from __future__ import annotations

from segcore_losses._region import FixedOverlapLoss, fixed_overlap_doc


class DiceLoss(FixedOverlapLoss):
    __doc__ = fixed_overlap_doc("Dice loss", "D", "TP_c + (FP_c + FN_c) / 2", "dice", (
        'loss = DiceLoss("multiclass", ignore_index=255)',
        "value = loss(logits, target)      # logits (2, 4, 64, 64), target (2, 64, 64) long"))
    overlap_weight = 0.5
