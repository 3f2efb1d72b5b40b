"""Binary cross-entropy with logits, plus ``ignore_index`` and label smoothing."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segcore import BINARY_MODE, MULTILABEL_MODE
from segcore.errors import InvalidOptionError, InvalidTargetError
from segcore_losses._functional import (
    apply_reduction,
    check_ignore_index,
    check_number,
    check_reduction,
    check_target_range,
    is_compiling,
    upcast,
)


def _optional_tensor(value: Tensor | Sequence[float] | None, name: str) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as error:
        raise InvalidOptionError(
            f"SoftBCEWithLogitsLoss: {name} must be a tensor, a sequence of numbers or None, "
            f"got {value!r}"
        ) from error


def _check_broadcast(value: Tensor | None, option: str, y_pred: Tensor, loss_name: str) -> None:
    """``weight`` / ``pos_weight`` must broadcast to the output's shape without changing it."""
    if value is None:
        return
    try:
        shape = torch.broadcast_shapes(value.shape, y_pred.shape)
    except RuntimeError:
        shape = None
    if shape != y_pred.shape:
        raise InvalidOptionError(
            f"{loss_name}: {option} of shape {tuple(value.shape)} does not broadcast to the "
            f"output {tuple(y_pred.shape)}; give one value, or a tensor whose trailing "
            "dimensions match the output's (e.g. (C, 1, 1) for one value per channel)"
        )


class SoftBCEWithLogitsLoss(nn.Module):
    """Drop-in replacement of ``torch.nn.BCEWithLogitsLoss`` with ``ignore_index`` and smoothing.

    ``t' = (1 - t) * smooth_factor + t * (1 - smooth_factor)`` (e.g. 0.1 turns [1, 0, 1] into
    [0.9, 0.1, 0.9]); ``l = BCEWithLogits(z, t')`` elementwise (with ``weight`` and
    ``pos_weight``), 0 where ``t == ignore_index``. ``"mean"`` divides the sum by the number
    of elements, ignored ones included (as SMP does); ``"sum"`` sums; ``"none"`` returns ``l``.

    Args:
        weight: rescaling weight broadcast to the output, as in ``BCEWithLogitsLoss``.
        ignore_index: target value of elements that do not count (``None``: all count).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        smooth_factor: label smoothing in [0, 1], or ``None``.
        pos_weight: weight of positive examples, broadcast along the channels.

    Shape:
        ``y_pred`` (N, C, H, W) logits; ``y_true`` of the same shape, or (N, H, W) when C = 1;
        values 0/1 (or soft, in [0, 1]) or ``ignore_index``.

    Example::

        loss = SoftBCEWithLogitsLoss(smooth_factor=0.1, ignore_index=255)
        value = loss(logits, mask)        # logits (2, 1, 64, 64), mask (2, 64, 64)
    """

    #: Set to False to skip the target value check (one host sync per call) outside compilation.
    check_target_values: bool = True

    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(
        self,
        weight: Tensor | None = None,
        ignore_index: int | None = -100,
        reduction: str = "mean",
        smooth_factor: float | None = None,
        pos_weight: Tensor | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.ignore_index = check_ignore_index(ignore_index, name)
        self.reduction = check_reduction(reduction, name)
        self.smooth_factor = check_number(
            smooth_factor, "smooth_factor", name, minimum=0.0, maximum=1.0, allow_none=True
        )
        self.register_buffer("weight", _optional_tensor(weight, "weight"))
        self.register_buffer("pos_weight", _optional_tensor(pos_weight, "pos_weight"))

    def forward(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        """Args: ``y_pred`` logits, ``y_true`` targets (see the class docstring). Returns a
        scalar (0 for an empty batch), or the per-element loss for ``"none"``."""
        name = type(self).__name__
        if not isinstance(y_pred, Tensor) or not isinstance(y_true, Tensor):
            raise InvalidTargetError(f"{name}: output and target must be torch tensors")
        if not y_pred.is_floating_point():
            raise InvalidTargetError(
                f"{name}: the output must be a floating-point tensor of logits, got dtype "
                f"{y_pred.dtype}"
            )
        if y_true.is_complex():
            raise InvalidTargetError(
                f"{name}: the target must hold real 0/1 values, got dtype {y_true.dtype}"
            )
        if y_true.device != y_pred.device:
            raise InvalidTargetError(
                f"{name}: output and target are on different devices ({y_pred.device} and "
                f"{y_true.device}); move the target with target.to(output.device)"
            )
        if y_pred.dim() >= 2 and y_pred.shape[1] == 1 and y_true.dim() == y_pred.dim() - 1:
            y_true = y_true.unsqueeze(1)
        if y_true.shape != y_pred.shape:
            raise InvalidTargetError(
                f"{name}: output {tuple(y_pred.shape)} and target {tuple(y_true.shape)} do not "
                "match; the target must have the output's shape (or (N, H, W) for an output "
                "(N, 1, H, W))"
            )
        for option in ("weight", "pos_weight"):
            _check_broadcast(getattr(self, option), option, y_pred, name)
        if self.check_target_values and not is_compiling():
            mode = BINARY_MODE if y_pred.dim() < 2 or y_pred.shape[1] == 1 else MULTILABEL_MODE
            check_target_range(y_true, mode, 1, self.ignore_index, name)

        logits = upcast(y_pred)
        target = y_true.to(logits.dtype)
        valid = None
        if self.ignore_index is not None:
            valid = y_true != self.ignore_index
            target = torch.where(valid, target, torch.zeros_like(target))
        if self.smooth_factor is not None:
            target = (1.0 - target) * self.smooth_factor + target * (1.0 - self.smooth_factor)
        loss = F.binary_cross_entropy_with_logits(
            logits, target, self.weight, pos_weight=self.pos_weight, reduction="none"
        )
        if valid is not None:
            loss = loss * valid.to(loss.dtype)
        return apply_reduction(loss, self.reduction)
