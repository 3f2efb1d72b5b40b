"""Matthews correlation coefficient loss (binary)."""

from __future__ import annotations

from torch import Tensor, nn

from segcore import BINARY_MODE
from segcore.errors import InvalidTargetError
from segcore_losses._functional import (
    check_flag,
    check_inputs,
    check_mode,
    check_number,
    empty_batch_loss,
    soft_confusion_counts,
    upcast,
)


class MCCLoss(nn.Module):
    """``1 - MCC`` with soft counts over the whole batch; binary segmentation only.

    With ``TP = sum(p t) + eps``, ``FP = sum(p (1 - t)) + eps``, ``FN = sum((1 - p) t) + eps``,
    ``TN = sum((1 - p)(1 - t)) + eps``::

        MCC = (TP TN - FP FN) / sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN))

    Args:
        eps: added to each count, so that a batch of a single class does not divide by zero.
        mode: only ``"binary"`` (the argument exists so that ``build_loss(..., mode=...)``
            refuses other modes clearly).
        from_logits: apply a sigmoid to ``y_pred`` first. The default ``False`` expects
            probabilities, as SMP's ``MCCLoss`` does.

    Shape:
        ``y_pred`` (N, 1, H, W) or (N, H, W) probabilities; ``y_true`` (N, H, W) or
        (N, 1, H, W) 0/1. Returns a scalar.

    Reference: https://github.com/kakumarabhishek/MCC-Loss

    Example::

        loss = MCCLoss()
        value = loss(logits.sigmoid(), mask)    # (2, 1, 64, 64), mask (2, 64, 64)
    """

    #: Set to False to skip the target value check (one host sync per call) outside compilation.
    check_target_values: bool = True

    def __init__(
        self, eps: float = 1e-5, *, mode: str = BINARY_MODE, from_logits: bool = False
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.eps = check_number(eps, "eps", name, minimum=0.0)
        self.mode = check_mode(mode, name, supported=(BINARY_MODE,))
        self.from_logits = check_flag(from_logits, "from_logits", name)

    def forward(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        """Args: ``y_pred`` probabilities (logits with ``from_logits``), ``y_true`` 0/1 masks.
        Returns a scalar (0 for an empty batch)."""
        name = type(self).__name__
        if isinstance(y_pred, Tensor) and isinstance(y_true, Tensor):
            if y_pred.dim() == 3:
                y_pred = y_pred.unsqueeze(1)
            if y_pred.dim() == 4 and y_pred.shape[1] != 1:
                raise InvalidTargetError(
                    f"{name} supports only binary mode: the output must be (N, 1, H, W) or "
                    f"(N, H, W), got {tuple(y_pred.shape)} with {y_pred.shape[1]} channels"
                )
        check_inputs(y_pred, y_true, BINARY_MODE, None, name, self.check_target_values)
        if y_pred.numel() == 0:
            return empty_batch_loss(y_pred)
        probs = upcast(y_pred)
        if self.from_logits:
            probs = probs.sigmoid()
        probs = probs.reshape(-1)
        target = y_true.reshape(-1).to(probs.dtype)
        tp, fp, fn, tn = (count + self.eps for count in soft_confusion_counts(probs, target))
        numerator = tp * tn - fp * fn
        denominator = ((tp + fp) * (tp + fn)).sqrt() * ((tn + fp) * (tn + fn)).sqrt()
        return 1.0 - numerator / denominator
