"""Cross-entropy with ``ignore_index`` and label smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segcore import MULTICLASS_MODE
from segcore.errors import InvalidOptionError, InvalidTargetError
from segcore_losses._functional import (
    apply_reduction,
    check_ignore_index,
    check_inputs,
    check_number,
    check_reduction,
    upcast,
)


class SoftCrossEntropyLoss(nn.Module):
    """Drop-in replacement of ``torch.nn.CrossEntropyLoss`` with label smoothing.

    With ``log p = log_softmax(z)`` over the ``C`` classes and ``e = smooth_factor`` (0 when
    ``None``)::

        l = (1 - e) * (-log p_t) + (e / C) * sum_c(-log p_c)      (0 where t == ignore_index)

    (e.g. 0.1 turns the one-hot target [1, 0, 0] into [0.9 + 0.1/3, 0.1/3, 0.1/3]).
    ``"mean"`` divides the sum by the number of pixels, ignored ones included (as SMP does);
    ``"sum"`` sums; ``"none"`` returns ``l`` with the target's shape.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        smooth_factor: label smoothing in [0, 1], or ``None`` for plain cross-entropy.
        ignore_index: target value of pixels that do not count (``None``: all count).
        dim: the class dimension of ``y_pred``.

    Shape:
        ``y_pred`` (N, C, H, W) logits; ``y_true`` (N, H, W) long class indices.

    Example::

        loss = SoftCrossEntropyLoss(smooth_factor=0.1, ignore_index=255)
        value = loss(logits, target)      # logits (2, 4, 64, 64), target (2, 64, 64) long
    """

    #: Set to False to skip the target value check (one host sync per call) outside compilation.
    check_target_values: bool = True

    def __init__(
        self,
        reduction: str = "mean",
        smooth_factor: float | None = None,
        ignore_index: int | None = -100,
        dim: int = 1,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.reduction = check_reduction(reduction, name)
        self.smooth_factor = check_number(
            smooth_factor, "smooth_factor", name, minimum=0.0, maximum=1.0, allow_none=True
        )
        self.ignore_index = check_ignore_index(ignore_index, name)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim == 0:
            raise InvalidOptionError(
                f"{name}: dim must be the int index of the class dimension (not 0, the batch), "
                f"got {dim!r}"
            )
        self.dim = dim

    def forward(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        """Args: ``y_pred`` (N, C, H, W) logits, ``y_true`` (N, H, W) class indices.
        Returns a scalar (0 for an empty batch), or the per-pixel loss for ``"none"``."""
        name = type(self).__name__
        if (
            isinstance(y_pred, Tensor)
            and y_pred.dim() >= 2
            and not -y_pred.dim() < self.dim < y_pred.dim()
        ):
            raise InvalidTargetError(
                f"{name}: dim={self.dim} is not a class dimension of the output "
                f"{tuple(y_pred.shape)}; valid values are 1..{y_pred.dim() - 1} (or "
                f"{1 - y_pred.dim()}..-1)"
            )
        if isinstance(y_pred, Tensor) and self.dim not in (1, 1 - y_pred.dim()):
            y_pred = y_pred.movedim(self.dim, 1)
        check_inputs(y_pred, y_true, MULTICLASS_MODE, self.ignore_index, name,
                     self.check_target_values)
        num_classes = y_pred.shape[1]
        log_probs = F.log_softmax(upcast(y_pred), dim=1)
        labels = y_true.long().reshape(y_pred.shape[0], *y_pred.shape[2:])
        valid = None
        if self.ignore_index is not None:
            valid = labels != self.ignore_index
            labels = torch.where(valid, labels, torch.zeros_like(labels))
        loss = -log_probs.gather(1, labels.unsqueeze(1)).squeeze(1)
        if self.smooth_factor:
            uniform = -log_probs.sum(dim=1)
            loss = (1.0 - self.smooth_factor) * loss + (self.smooth_factor / num_classes) * uniform
        if valid is not None:
            loss = loss * valid.to(loss.dtype)
        return apply_reduction(loss, self.reduction)
