"""Lovasz loss: a convex surrogate of the Jaccard loss (Berman et al., CVPR 2018).

Binary and multilabel modes use the Lovasz hinge on logits; multiclass mode the
Lovasz-softmax on class probabilities. Everything is batched (one sort per image or per
batch), without data-dependent Python control flow, so the loss compiles.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segcore import MULTICLASS_MODE
from segcore_losses._functional import (
    check_flag,
    check_ignore_index,
    check_inputs,
    check_mode,
    empty_batch_loss,
    upcast,
)

#: Clamp of probabilities turned into logits when ``from_logits=False`` (binary, multilabel).
_PROBABILITY_EPS = 1e-7


def lovasz_gradient(gt_sorted: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss, along the last dimension.

    Args:
        gt_sorted: ``(..., P)`` ground truth (0/1) sorted by decreasing error.

    Returns:
        ``g`` of the same shape with ``g_1 = J_1`` and ``g_k = J_k - J_(k-1)``, where ``J_k`` is
        the Jaccard loss when the ``k`` largest errors are the mistakes.
    """
    positives = gt_sorted.sum(-1, keepdim=True)
    intersection = positives - gt_sorted.cumsum(-1)
    union = positives + (1.0 - gt_sorted).cumsum(-1)  # >= 1 for targets in [0, 1]
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def lovasz_hinge(logits: Tensor, labels: Tensor, valid: Tensor | None) -> Tensor:
    """Lovasz hinge of each row.

    Args:
        logits: ``(B, P)`` logits.
        labels: ``(B, P)`` 0/1 targets (any value where ``valid`` is False).
        valid: ``(B, P)`` bool mask of the pixels that count, or None.

    Returns:
        ``(B,)`` losses (0 for a row without valid pixels).
    """
    if valid is not None:
        labels = torch.where(valid, labels, torch.zeros_like(labels))
    errors = 1.0 - logits * (2.0 * labels - 1.0)
    if valid is not None:
        # Ignored pixels sort last and contribute relu(-inf) = 0.
        errors = errors.masked_fill(~valid, float("-inf"))
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    gradient = lovasz_gradient(labels.gather(-1, order))
    return (F.relu(errors_sorted) * gradient).sum(-1)


def lovasz_softmax(probs: Tensor, labels: Tensor, valid: Tensor | None) -> Tensor:
    """Lovasz-softmax of each row, averaged over the classes present in the row.

    Args:
        probs: ``(B, C, P)`` class probabilities.
        labels: ``(B, P)`` class indices.
        valid: ``(B, P)`` bool mask of the pixels that count, or None.

    Returns:
        ``(B,)`` losses (0 for a row where no class is present).
    """
    num_classes = probs.shape[1]
    classes = torch.arange(num_classes, device=probs.device).view(1, num_classes, 1)
    foreground = labels.unsqueeze(1) == classes
    if valid is not None:
        foreground = foreground & valid.unsqueeze(1)
    foreground = foreground.to(probs.dtype)
    errors = (foreground - probs).abs()
    if valid is not None:
        # Ignored pixels sort last (errors are >= 0) and are zeroed after sorting.
        errors = errors.masked_fill(~valid.unsqueeze(1), -1.0)
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    gradient = lovasz_gradient(foreground.gather(-1, order))
    if valid is not None:
        errors_sorted = errors_sorted.clamp_min(0.0)
    per_class = (errors_sorted * gradient).sum(-1)
    present = (foreground.sum(-1) > 0).to(per_class.dtype)
    return (per_class * present).sum(-1) / present.sum(-1).clamp_min(1.0)


class LovaszLoss(nn.Module):
    """Lovasz loss for binary, multiclass and multilabel segmentation.

    - binary / multilabel: Lovasz hinge. With ``e_i = 1 - z_i s_i`` (``s_i = 2 t_i - 1``) sorted
      decreasingly, ``loss = sum_i relu(e_(i)) g_i`` where ``g`` is the gradient of the Lovasz
      extension of the Jaccard loss (``lovasz_gradient``). Multilabel channels are pooled
      into one binary problem (as SMP does).
    - multiclass: Lovasz-softmax. Per class ``c`` with ``e_i = |1[t_i = c] - p_ic|``, the same
      sum; averaged over the classes present in the target.

    The loss is computed over the whole batch, or per image and averaged when ``per_image``.
    Ignored pixels do not count; an image (or batch) without valid pixels, and an empty
    batch, give 0.

    Args:
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        per_image: compute the loss per image, then average over the batch.
        ignore_index: target value of pixels that do not count.
        from_logits: ``y_pred`` holds logits; ``False`` when it holds probabilities
            (multiclass: used as they are; binary/multilabel: turned into logits).

    Shape:
        ``y_pred`` (N, C, H, W); ``y_true`` (N, H, W) class indices (multiclass), (N, H, W) or
        (N, 1, H, W) 0/1 (binary), (N, C, H, W) 0/1 (multilabel). Returns a scalar.

    Example::

        loss = LovaszLoss("multiclass", per_image=True, ignore_index=255)
        value = loss(logits, target)      # logits (2, 5, 64, 64), target (2, 64, 64) long
    """

    #: Set to False to skip the target value check (one host sync per call) outside compilation.
    check_target_values: bool = True

    def __init__(
        self,
        mode: str,
        per_image: bool = False,
        ignore_index: int | None = None,
        from_logits: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = check_mode(mode, name)
        self.per_image = check_flag(per_image, "per_image", name)
        self.ignore_index = check_ignore_index(ignore_index, name)
        self.from_logits = check_flag(from_logits, "from_logits", name)

    def forward(self, y_pred: Tensor, y_true: Tensor) -> Tensor:
        """Args: ``y_pred`` (N, C, H, W), ``y_true`` as documented. Returns a scalar (0 for an
        empty batch)."""
        name = type(self).__name__
        check_inputs(y_pred, y_true, self.mode, self.ignore_index, name, self.check_target_values)
        if y_pred.numel() == 0:
            return empty_batch_loss(y_pred)
        batch, num_classes = y_pred.shape[0], y_pred.shape[1]
        rows = batch if self.per_image else 1
        y_pred = upcast(y_pred)

        if self.mode == MULTICLASS_MODE:
            pixels = math.prod(y_pred.shape[2:])
            probs = y_pred.softmax(dim=1) if self.from_logits else y_pred
            probs = probs.reshape(batch, num_classes, pixels)
            if not self.per_image:
                probs = probs.transpose(0, 1).reshape(1, num_classes, batch * pixels)
            labels = y_true.reshape(rows, batch * pixels // rows)
            valid = labels != self.ignore_index if self.ignore_index is not None else None
            return lovasz_softmax(probs, labels, valid).mean()

        elements = y_pred.numel() // rows  # binary: C = 1, so the target has as many elements
        logits = y_pred if self.from_logits else torch.logit(y_pred, eps=_PROBABILITY_EPS)
        logits = logits.reshape(rows, elements)
        labels = y_true.reshape(rows, elements)
        valid = labels != self.ignore_index if self.ignore_index is not None else None
        return lovasz_hinge(logits, labels.to(logits.dtype), valid).mean()

    def extra_repr(self) -> str:
        parts = [f"mode={self.mode!r}", f"per_image={self.per_image}"]
        if self.ignore_index is not None:
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(parts)
