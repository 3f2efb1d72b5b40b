"""The Dice coefficient from confusion counts, with the reductions of segcore-metrics."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from segcore.errors import InvalidOptionError, InvalidTargetError

#: The valid ``reduction`` values; ``"none"`` and ``None`` keep the (N, C) scores.
REDUCTIONS = ("micro", "macro", "micro-imagewise", "macro-imagewise", "none", None)


def dice_coefficient(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None = None,
    zero_division: float = 1.0,
) -> Tensor:
    """Dice coefficient ``2tp / (2tp + fp + fn)`` from counts of shape (N, C).

    Args:
        tp, fp, fn, tn: true/false positive/negative pixel counts per image and class, e.g.
            from ``segcore_metrics.get_stats`` (``tn`` is not used by this score).
        reduction: ``"micro"`` (sum all counts, one score), ``"macro"`` (sum over images, one
            score per class, mean over classes), ``"micro-imagewise"`` (sum over classes, one
            score per image, mean over images), ``"macro-imagewise"`` (one score per image and
            class, mean over everything), ``"none"`` / ``None`` (the (N, C) scores).
        zero_division: the score where it is 0/0 (no positive pixel predicted or present).

    Returns:
        A 0-d tensor, or the (N, C) scores for ``reduction=None``.

    Example::

        tp, fp, fn, tn = (torch.tensor([[8, 0]]), torch.tensor([[2, 0]]),
                          torch.tensor([[0, 0]]), torch.tensor([[6, 16]]))
        dice_coefficient(tp, fp, fn, tn)                      # tensor([[0.8889, 1.0000]])
        dice_coefficient(tp, fp, fn, tn, reduction="micro")   # tensor(0.8889)
    """
    if reduction not in REDUCTIONS:
        raise InvalidOptionError(
            f"dice_coefficient: unknown reduction {reduction!r}; valid values are "
            f"{', '.join(map(repr, REDUCTIONS))}"
        )
    if isinstance(zero_division, bool) or not isinstance(zero_division, int | float) or \
            not math.isfinite(zero_division):
        raise InvalidOptionError(
            f"dice_coefficient: zero_division must be a finite number, got {zero_division!r}"
        )
    counts = [torch.as_tensor(value) for value in (tp, fp, fn, tn)]
    if len({value.shape for value in counts}) != 1 or counts[0].dim() != 2:
        raise InvalidTargetError(
            "dice_coefficient: tp, fp, fn and tn must be tensors of the same shape (N, C), got "
            + ", ".join(str(tuple(value.shape)) for value in counts)
        )
    tp, fp, fn, _ = (value.double() for value in counts)
    if reduction == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    elif reduction == "macro":
        tp, fp, fn = tp.sum(0), fp.sum(0), fn.sum(0)
    elif reduction == "micro-imagewise":
        tp, fp, fn = tp.sum(1), fp.sum(1), fn.sum(1)
    denominator = 2 * tp + fp + fn
    score = torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), zero_division)
    score = score.to(torch.get_default_dtype())
    if reduction in ("macro", "micro-imagewise", "macro-imagewise"):
        return score.mean()
    return score
