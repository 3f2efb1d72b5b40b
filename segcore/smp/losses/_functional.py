"""The functional helpers of SMP 0.6.0's ``smp.losses._functional``, written for segcore.

Same names, signatures and values as SMP's (``tests/parity/test_parity_smp_compat.py``), with
two fixes: a mismatch of output and target shapes raises ``InvalidTargetError`` (SMP: a bare
``AssertionError``), and an unknown ``reduction`` raises ``InvalidOptionError`` (SMP returns the
unreduced tensor). ``label_smoothed_nll_loss`` with ``ignore_index`` and no reduction returns
the target's shape (SMP keeps the class axis, size 1), as segcore-losses' SoftCrossEntropyLoss.

Example::

    from segcore.smp.losses._functional import soft_dice_score
    dice = soft_dice_score(probs, one_hot, dims=(0, 2))     # one score per class
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from segcore.errors import InputTypeError, InvalidOptionError, InvalidTargetError

__all__ = [
    "focal_loss_with_logits",
    "label_smoothed_nll_loss",
    "soft_dice_score",
    "soft_jaccard_score",
    "soft_tversky_score",
    "softmax_focal_loss_with_logits",
    "to_tensor",
    "wing_loss",
]

Dims = int | tuple[int, ...] | list[int] | None

_FOCAL_REDUCTIONS = ("none", "mean", "sum", "batchwise_mean")
_REDUCTIONS = ("none", "mean", "sum")


def _check_same_shape(output: Tensor, target: Tensor, function: str) -> None:
    if output.shape != target.shape:
        raise InvalidTargetError(
            f"{function}: output {tuple(output.shape)} and target {tuple(target.shape)} must "
            f"have the same shape (one-hot or 0/1 targets of the output's shape)"
        )


def _check_reduction(reduction: Any, choices: tuple[str, ...], function: str) -> None:
    if reduction not in choices:
        raise InvalidOptionError(
            f"{function}: unknown reduction {reduction!r}; valid values are "
            f"{', '.join(map(repr, choices))}"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "batchwise_mean":
        return loss.sum(0)
    return loss


def _summed(x: Tensor, dims: Dims) -> Tensor:
    return x.sum() if dims is None else x.sum(dim=dims)


def soft_tversky_score(
    output: Tensor,
    target: Tensor,
    alpha: float,
    beta: float,
    smooth: float = 0.0,
    eps: float = 1e-7,
    dims: Dims = None,
) -> Tensor:
    """Soft Tversky index ``(TP + smooth) / max(TP + alpha FP + beta FN + smooth, eps)``.

    Counts are summed over ``dims`` (every element when ``None``): ``TP = (sum(output) +
    sum(target) - sum(|output - target|)) / 2`` (``sum(output * target)`` for 0/1 targets),
    ``FP = sum(output) - TP``, ``FN = sum(target) - TP``.
    """
    _check_same_shape(output, target, "soft_tversky_score")
    output_sum = _summed(output, dims)
    target_sum = _summed(target, dims)
    tp = (output_sum + target_sum - _summed((output - target).abs(), dims)) / 2
    fp = output_sum - tp
    fn = target_sum - tp
    return (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(eps)


def _tversky_special_case(name: str, weight: float, doc: str) -> Callable[..., Tensor]:
    """``soft_tversky_score`` with ``alpha = beta = weight``, as the public function ``name``."""

    def score(
        output: Tensor,
        target: Tensor,
        smooth: float = 0.0,
        eps: float = 1e-7,
        dims: Dims = None,
    ) -> Tensor:
        _check_same_shape(output, target, name)
        return soft_tversky_score(output, target, weight, weight, smooth, eps, dims)

    score.__name__ = score.__qualname__ = name
    score.__doc__ = doc
    return score


soft_dice_score = _tversky_special_case(
    "soft_dice_score", 0.5, "Soft Dice coefficient: the Tversky index with ``alpha = beta = 0.5``."
)
soft_jaccard_score = _tversky_special_case(
    "soft_jaccard_score",
    1.0,
    "Soft Jaccard index (IoU): the Tversky index with ``alpha = beta = 1``.",
)


def _focal_loss(
    cross_entropy: Tensor,
    gamma: float,
    reduced_threshold: float | None,
    normalized: bool,
    eps: float,
    class_balance: Tensor | None = None,
) -> Tensor:
    """``(1 - pt)^gamma * cross_entropy`` per element, ``pt = exp(-cross_entropy)``; times
    ``class_balance`` if given, divided by the sum of focal terms if ``normalized``."""
    pt = torch.exp(-cross_entropy)
    if reduced_threshold is None:
        focal = (1.0 - pt).pow(gamma)
    else:
        scaled = ((1.0 - pt) / reduced_threshold).pow(gamma)
        focal = torch.where(pt < reduced_threshold, torch.ones_like(scaled), scaled)
    loss = focal * cross_entropy
    if class_balance is not None:
        loss = loss * class_balance
    if normalized:
        loss = loss / focal.sum().clamp_min(eps)
    return loss


def focal_loss_with_logits(
    output: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    reduction: str = "mean",
    normalized: bool = False,
    reduced_threshold: float | None = None,
    eps: float = 1e-6,
) -> Tensor:
    """Sigmoid focal loss of logits ``output`` against 0/1 ``target`` (same shape).

    ``l = (1 - pt)^gamma * BCE`` with ``pt = exp(-BCE)``; ``alpha`` weighs positives (``alpha``)
    against negatives (``1 - alpha``); ``reduced_threshold`` keeps the focal term at 1 below
    it (reduced focal loss); ``normalized`` divides by the sum of focal terms. ``reduction``:
    ``"mean"``, ``"sum"``, ``"batchwise_mean"`` (sum over the batch axis) or ``"none"``.
    """
    _check_reduction(reduction, _FOCAL_REDUCTIONS, "focal_loss_with_logits")
    target = target.to(dtype=output.dtype, device=output.device)
    bce = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    balance = None if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    return _reduce(_focal_loss(bce, gamma, reduced_threshold, normalized, eps, balance), reduction)


def softmax_focal_loss_with_logits(
    output: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    reduction: str = "mean",
    normalized: bool = False,
    reduced_threshold: float | None = None,
    eps: float = 1e-6,
) -> Tensor:
    """Softmax focal loss: ``output`` logits (N, C, ...), ``target`` class indices (N, ...).

    ``l = (1 - pt)^gamma * CE`` with ``pt`` the probability of the target class; the options
    are those of ``focal_loss_with_logits``.
    """
    _check_reduction(reduction, _FOCAL_REDUCTIONS, "softmax_focal_loss_with_logits")
    ce = F.nll_loss(F.log_softmax(output, dim=1), target, reduction="none")
    return _reduce(_focal_loss(ce, gamma, reduced_threshold, normalized, eps), reduction)


def wing_loss(
    output: Tensor,
    target: Tensor,
    width: float = 5,
    curvature: float = 0.5,
    reduction: str = "mean",
) -> Tensor:
    """Wing loss (Feng et al., 2018): ``width * log(1 + |d| / curvature)`` for ``|d| < width``,
    ``|d| - C`` beyond, with ``C = width - width * log(1 + width / curvature)``."""
    _check_reduction(reduction, _REDUCTIONS, "wing_loss")
    distance = (target - output).abs()
    offset = width - width * math.log(1 + width / curvature)
    loss = torch.where(distance < width, width * torch.log1p(distance / curvature),
                       distance - offset)
    return _reduce(loss, reduction)


def label_smoothed_nll_loss(
    lprobs: Tensor,
    target: Tensor,
    epsilon: float,
    ignore_index: int | None = None,
    reduction: str = "mean",
    dim: int = -1,
) -> Tensor:
    """Negative log-likelihood with label smoothing ``epsilon``, from log-probabilities.

    ``l = (1 - epsilon) * (-log p_target) + epsilon / C * sum_c (-log p_c)``, 0 where
    ``target == ignore_index``; ``"mean"`` divides by every element, ignored ones included.
    """
    _check_reduction(reduction, _REDUCTIONS, "label_smoothed_nll_loss")
    if target.dim() == lprobs.dim() - 1:
        target = target.unsqueeze(dim)
    ignored = target.eq(ignore_index) if ignore_index is not None else None
    if ignored is not None:
        target = target.masked_fill(ignored, 0)
    nll = -lprobs.gather(dim=dim, index=target)
    smooth = -lprobs.sum(dim=dim, keepdim=True)
    if ignored is not None:
        nll = nll.masked_fill(ignored, 0.0)
        smooth = smooth.masked_fill(ignored, 0.0)
    nll = _reduce(nll.squeeze(dim), reduction)
    smooth = _reduce(smooth.squeeze(dim), reduction)
    return (1.0 - epsilon) * nll + epsilon / lprobs.size(dim) * smooth


def to_tensor(x: Any, dtype: torch.dtype | None = None) -> Tensor:
    """A tensor from a tensor, a numpy array, or a list/tuple (through numpy, so Python floats
    become float64 as in SMP), converted to ``dtype`` when given."""
    import numpy

    if isinstance(x, Tensor):
        result = x
    elif isinstance(x, numpy.ndarray):
        result = torch.from_numpy(x)
    elif isinstance(x, list | tuple):
        result = torch.from_numpy(numpy.array(x))
    else:
        raise InputTypeError(
            f"to_tensor takes a tensor, a numpy array, a list or a tuple, got "
            f"{type(x).__name__}"
        )
    return result.type(dtype) if dtype is not None else result
