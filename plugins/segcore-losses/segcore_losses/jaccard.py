"""Jaccard (IoU) loss: ``1 - Jaccard index`` per class, averaged over classes."""

from __future__ import annotations

from segcore_losses._region import FixedOverlapLoss, fixed_overlap_doc


class JaccardLoss(FixedOverlapLoss):
    __doc__ = fixed_overlap_doc("Jaccard (soft IoU) loss", "J", "TP_c + FP_c + FN_c", "jaccard", (
        'loss = JaccardLoss("binary")',
        "value = loss(logits, mask)        # logits (2, 1, 64, 64), mask (2, 64, 64) of 0/1"))
    overlap_weight = 1.0
