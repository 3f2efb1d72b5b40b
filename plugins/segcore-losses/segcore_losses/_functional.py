"""Shared machinery of the losses: option checks, input checks, targets, soft counts.

Every loss of this package goes through these helpers, so a rule (what a valid multiclass
target is, how ``ignore_index`` masks pixels, how soft TP/FP/FN are counted) lives in one place.

Shapes used below: ``N`` batch, ``C`` classes (channels of the output), ``P`` pixels per image
(``H * W``, or any number of spatial positions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import torch
from torch import Tensor

from segcore import BINARY_MODE, MODES, MULTICLASS_MODE, MULTILABEL_MODE
from segcore.errors import InvalidOptionError, InvalidTargetError, did_you_mean

#: Reductions of the losses that take ``reduction`` (focal, soft BCE, soft CE).
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")

ClassWeights = Sequence[float] | Tensor | None


# -- option checks (constructor time) -----------------------------------------------------
def check_mode(mode: Any, loss_name: str, supported: Sequence[str] = MODES) -> str:
    """Return ``mode`` if it is one of ``supported``; raise ``InvalidOptionError`` otherwise."""
    if not isinstance(mode, str) or mode not in MODES:
        hint = did_you_mean(mode, supported) if isinstance(mode, str) else ""
        raise InvalidOptionError(
            f"{loss_name}: unknown mode {mode!r}; valid modes are "
            f"{', '.join(repr(m) for m in supported)} "
            f"(segcore.BINARY_MODE, segcore.MULTICLASS_MODE, segcore.MULTILABEL_MODE).{hint}"
        )
    if mode not in supported:
        raise InvalidOptionError(
            f"{loss_name} supports only {' and '.join(repr(m) for m in supported)} mode, "
            f"got mode={mode!r}"
        )
    return mode


def check_number(
    value: Any,
    name: str,
    loss_name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    allow_none: bool = False,
) -> float | None:
    """Return ``value`` as a float after checking its type (a finite real number) and range."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        expected = "a finite number or None" if allow_none else "a finite number"
        raise InvalidOptionError(f"{loss_name}: {name} must be {expected}, got {value!r}")
    value = float(value)
    too_small = minimum is not None and (
        value <= minimum if exclusive_minimum else value < minimum
    )
    too_large = maximum is not None and value > maximum
    if too_small or too_large:
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        bracket = "(" if exclusive_minimum else "["
        raise InvalidOptionError(
            f"{loss_name}: {name} must lie in {bracket}{low}, {high}], got {value!r}"
        )
    return value


def check_ignore_index(value: Any, loss_name: str) -> int | float | None:
    """``ignore_index`` is None or a finite number (an int for class indices, any value for
    masks)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InvalidOptionError(
            f"{loss_name}: ignore_index must be an int (the label of ignored pixels) or None, "
            f"got {value!r}"
        )
    return int(value) if float(value).is_integer() else float(value)


def check_reduction(value: Any, loss_name: str) -> str:
    """``reduction`` is one of ``REDUCTIONS`` (``None`` means ``"none"``)."""
    if value is None:
        return "none"
    if not isinstance(value, str) or value not in REDUCTIONS:
        hint = did_you_mean(value, REDUCTIONS) if isinstance(value, str) else ""
        raise InvalidOptionError(
            f"{loss_name}: unknown reduction {value!r}; valid reductions are "
            f"{', '.join(repr(r) for r in REDUCTIONS)}.{hint}"
        )
    return value


def check_flag(value: Any, name: str, loss_name: str) -> bool:
    """A yes/no option: ``True``/``False`` (or 0/1). Refuses strings such as ``"False"``, which
    ``bool()`` would silently turn into ``True``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Real) and value in (0, 1):
        return bool(value)
    raise InvalidOptionError(f"{loss_name}: {name} must be True or False, got {value!r}")


def apply_reduction(loss: Tensor, reduction: str) -> Tensor:
    """``loss`` reduced by ``"mean"`` or ``"sum"``, or unchanged for ``"none"``.

    The mean of an empty tensor is 0 (its sum), not NaN: an empty batch adds nothing.
    """
    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum()
    if reduction == "sum":
        return loss.sum()
    return loss


def check_classes(classes: Any, mode: str, loss_name: str) -> tuple[int, ...] | None:
    """The indices of the classes that contribute to the loss, as a tuple of ints."""
    if classes is None:
        return None
    if mode == BINARY_MODE:
        raise InvalidOptionError(
            f"{loss_name}: classes cannot be chosen in binary mode (there is only one class); "
            "leave classes=None or use mode='multiclass' / 'multilabel'"
        )
    values = classes.tolist() if hasattr(classes, "tolist") else classes  # tensor, ndarray
    if isinstance(values, int) or not isinstance(values, Sequence) or len(values) == 0:
        raise InvalidOptionError(
            f"{loss_name}: classes must be a non-empty list of class indices, got {classes!r}"
        )
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidOptionError(
                f"{loss_name}: classes must hold non-negative int class indices, got {value!r}"
            )
        result.append(value)
    return tuple(result)


def check_class_weights(class_weights: ClassWeights, mode: str, loss_name: str) -> Tensor | None:
    """Per-class weights as a 1-D float tensor (one non-negative finite weight per class)."""
    if class_weights is None:
        return None
    if mode == BINARY_MODE:
        raise InvalidOptionError(
            f"{loss_name}: class_weights are not supported in binary mode (there is only one "
            "class); use them with mode='multiclass' or 'multilabel'"
        )
    try:
        weights = torch.as_tensor(
            class_weights.detach() if isinstance(class_weights, Tensor) else class_weights,
            dtype=torch.float32,
        )
    except (TypeError, ValueError, RuntimeError) as error:
        raise InvalidOptionError(
            f"{loss_name}: class_weights must be a sequence or 1-D tensor of numbers, one per "
            f"class, got {class_weights!r}"
        ) from error
    if weights.dim() != 1 or weights.numel() == 0:
        raise InvalidOptionError(
            f"{loss_name}: class_weights must be a 1-D sequence with one weight per class, got "
            f"shape {tuple(weights.shape)}"
        )
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise InvalidOptionError(
            f"{loss_name}: class_weights must be finite and non-negative, got {weights.tolist()}"
        )
    if float(weights.sum()) <= 0:
        raise InvalidOptionError(f"{loss_name}: class_weights must not all be zero")
    return weights.cpu()


# -- input checks (forward time) ----------------------------------------------------------
def is_compiling() -> bool:
    """True while torch.compile / torch.export traces the code (value checks are skipped)."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        return bool(compiler.is_compiling())
    return False  # pragma: no cover - torch < 2.3


def check_class_options(
    num_classes: int,
    classes: tuple[int, ...] | None,
    class_weights: Tensor | None,
    loss_name: str,
) -> None:
    """``class_weights`` has one value per output channel; ``classes`` index existing ones."""
    if class_weights is not None and class_weights.numel() != num_classes:
        raise InvalidOptionError(
            f"{loss_name}: class_weights has {class_weights.numel()} values but the output has "
            f"{num_classes} classes (channels); give exactly one weight per class"
        )
    if classes is not None and max(classes) >= num_classes:
        raise InvalidOptionError(
            f"{loss_name}: classes={list(classes)} refers to class {max(classes)} but the "
            f"output has only {num_classes} classes (valid indices 0..{num_classes - 1})"
        )


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_inputs(
    y_pred: Tensor,
    y_true: Tensor,
    mode: str,
    ignore_index: float | None,
    loss_name: str,
    check_values: bool = True,
) -> None:
    """Check output and target shapes, dtypes and (outside compilation) target values.

    Valid inputs (``N`` batch, ``C`` classes, any number of spatial dimensions):

    - binary: output ``(N, 1, H, W)``; target ``(N, H, W)`` or ``(N, 1, H, W)`` with 0/1
      (or soft values in [0, 1]) or ``ignore_index``.
    - multiclass: output ``(N, C, H, W)``; target a long tensor ``(N, H, W)`` (or
      ``(N, 1, H, W)``) of class indices in ``[0, C)`` or ``ignore_index``.
    - multilabel: output and target ``(N, C, H, W)``; target values in [0, 1] or
      ``ignore_index``.

    Raises:
        InvalidTargetError: with what was expected.
    """
    if not isinstance(y_pred, Tensor) or not isinstance(y_true, Tensor):
        raise InvalidTargetError(
            f"{loss_name}: output and target must be torch tensors, got "
            f"{type(y_pred).__name__} and {type(y_true).__name__}"
        )
    if not y_pred.is_floating_point():
        raise InvalidTargetError(
            f"{loss_name}: the output must be a floating-point tensor (logits or "
            f"probabilities), got dtype {y_pred.dtype}"
        )
    if y_pred.dim() < 2:
        raise InvalidTargetError(
            f"{loss_name}: the output must have shape (N, C, H, W) (or (N, C, ...)), got "
            f"{_shape(y_pred.shape)}"
        )
    if y_true.device != y_pred.device:
        raise InvalidTargetError(
            f"{loss_name}: output and target are on different devices ({y_pred.device} and "
            f"{y_true.device}); move the target with target.to(output.device)"
        )
    batch, num_classes = y_pred.shape[0], y_pred.shape[1]
    if num_classes == 0:
        raise InvalidTargetError(
            f"{loss_name}: the output {_shape(y_pred.shape)} has no class channel; it must be "
            "(N, C, H, W) with C >= 1 (C = 1 in binary mode)"
        )
    spatial = tuple(y_pred.shape[2:])
    target_shape = tuple(y_true.shape)
    if mode == BINARY_MODE:
        if num_classes != 1:
            raise InvalidTargetError(
                f"{loss_name}: binary mode expects an output with one channel (N, 1, H, W), got "
                f"{_shape(y_pred.shape)} with C={num_classes}; use mode='multiclass' for "
                "mutually exclusive classes or mode='multilabel' for independent ones"
            )
        if target_shape not in ((batch, *spatial), (batch, 1, *spatial)):
            raise InvalidTargetError(
                f"{loss_name}: output {_shape(y_pred.shape)} and target {_shape(target_shape)} "
                f"do not match; in binary mode the target must be (N, H, W) = "
                f"{_shape((batch, *spatial))} or (N, 1, H, W) = {_shape(y_pred.shape)}"
            )
    elif mode == MULTICLASS_MODE:
        expected = _shape((batch, *spatial))
        if target_shape == tuple(y_pred.shape) and y_pred.dim() > 2 and num_classes > 1:
            raise InvalidTargetError(
                f"{loss_name}: a multiclass target must be a long tensor (N, H, W) of class "
                f"indices = {expected}, got a tensor of the output's shape (N, C, H, W) = "
                f"{_shape(target_shape)}; turn one-hot targets into indices with "
                "target.argmax(dim=1), or use mode='multilabel'"
            )
        if y_true.is_floating_point() or y_true.is_complex() or y_true.dtype == torch.bool:
            raise InvalidTargetError(
                f"{loss_name}: a multiclass target must be a long tensor (N, H, W) of class "
                f"indices, got dtype {y_true.dtype}; convert it with target.long()"
            )
        if target_shape not in ((batch, *spatial), (batch, 1, *spatial)):
            raise InvalidTargetError(
                f"{loss_name}: output {_shape(y_pred.shape)} and target {_shape(target_shape)} "
                f"do not match; a multiclass target must be a long tensor (N, H, W) of class "
                f"indices = {expected}"
            )
    elif target_shape != tuple(y_pred.shape):
        raise InvalidTargetError(
            f"{loss_name}: output {_shape(y_pred.shape)} and target {_shape(target_shape)} do "
            f"not match; in multilabel mode the target must have the output's shape "
            f"(N, C, H, W) = {_shape(y_pred.shape)}"
        )
    if check_values and not is_compiling():
        check_target_range(y_true, mode, num_classes, ignore_index, loss_name)


def check_target_range(
    y_true: Tensor,
    mode: str,
    num_classes: int,
    ignore_index: float | None,
    loss_name: str,
) -> None:
    """Class indices in ``[0, num_classes)`` (multiclass) or values in [0, 1] (otherwise).

    One fused reduction and one host synchronisation; the offending values are only
    collected when there are some.
    """
    if mode == MULTICLASS_MODE:
        bad = (y_true < 0) | (y_true >= num_classes)
    elif y_true.dtype == torch.bool:
        return
    else:
        bad = ~((y_true >= 0) & (y_true <= 1))  # also catches NaN
    if ignore_index is not None:
        bad = bad & (y_true != ignore_index)
    if not bool(bad.any()):
        return
    found = torch.unique(y_true[bad])[:5].tolist()
    hint = (
        f" Set ignore_index={found[0]!r} if that value marks pixels to ignore."
        if ignore_index is None and len(found) == 1
        else ""
    )
    ignored = f" or ignore_index={ignore_index!r}" if ignore_index is not None else ""
    if mode == MULTICLASS_MODE:
        raise InvalidTargetError(
            f"{loss_name}: multiclass target values must be class indices in "
            f"[0, {num_classes}){ignored} (the output has {num_classes} classes), found "
            f"{found}.{hint}"
        )
    raise InvalidTargetError(
        f"{loss_name}: {mode} target values must be 0/1 (or probabilities in [0, 1])"
        f"{ignored}, found {found}.{hint}"
    )


# -- targets and probabilities ------------------------------------------------------------
def pixel_count(y_true: Tensor, mode: str) -> int:
    """Pixels per image ``P`` of a checked target (``(N, H, W)``, ``(N, 1, H, W)`` or, in
    multilabel mode, ``(N, C, H, W)``). Computed from the shape, so that reshapes never use
    ``-1``, which is ambiguous for an empty batch."""
    spatial = y_true.shape[2:] if mode == MULTILABEL_MODE else y_true.shape[1:]
    return math.prod(spatial)


def empty_batch_loss(y_pred: Tensor) -> Tensor:
    """The loss of an output without elements (an empty batch, N = 0, or no pixels): 0.

    A 0-dim zero computed from ``y_pred``, so it requires grad when ``y_pred`` does and
    ``backward()`` gives zero gradients, like any batch that contributes nothing.
    """
    return upcast(y_pred).sum()


def upcast(tensor: Tensor) -> Tensor:
    """Half precision sums over many pixels overflow: compute losses in float32 at least."""
    if tensor.dtype in (torch.float16, torch.bfloat16):
        return tensor.float()
    return tensor


def activate(y_pred: Tensor, mode: str, from_logits: bool) -> Tensor:
    """Probabilities: softmax over classes (multiclass) or sigmoid (binary, multilabel)."""
    y_pred = upcast(y_pred)
    if not from_logits:
        return y_pred
    if mode == MULTICLASS_MODE:
        return y_pred.softmax(dim=1)
    return y_pred.sigmoid()


def flat_targets(
    num_classes: int,
    y_true: Tensor,
    mode: str,
    ignore_index: float | None,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor | None]:
    """Targets as ``(N, C, P)`` per-class masks, and the mask of pixels that count.

    Multiclass class indices become one-hot masks; ignored pixels get an all-zero target.

    Returns:
        ``(target, valid)``: ``target`` of shape ``(N, C, P)`` and dtype ``dtype``; ``valid`` a
        bool tensor broadcastable to it (``(N, 1, P)`` multiclass, ``(N, C, P)`` otherwise), or
        ``None`` when ``ignore_index`` is None.
    """
    batch = y_true.shape[0]
    pixels = pixel_count(y_true, mode)
    if mode == MULTICLASS_MODE:
        labels = y_true.reshape(batch, 1, pixels)
        classes = torch.arange(num_classes, device=y_true.device).view(1, num_classes, 1)
        target = labels == classes
        valid = None
        if ignore_index is not None:
            valid = labels != ignore_index
            target = target & valid
        return target.to(dtype), valid
    target = y_true.reshape(batch, num_classes, pixels)
    valid = None
    if ignore_index is not None:
        valid = target != ignore_index
        target = torch.where(valid, target, torch.zeros_like(target))
    return target.to(dtype), valid


# -- soft counts and scores ---------------------------------------------------------------
def soft_overlap_counts(
    probs: Tensor, target: Tensor, dims: tuple[int, ...]
) -> tuple[Tensor, Tensor, Tensor]:
    """Soft true positives, false positives and false negatives summed over ``dims``.

    ``TP = (sum(p) + sum(t) - sum(|p - t|)) / 2``, which is ``sum(p * t)`` for 0/1 targets and
    ``sum(min(p, t))`` for soft ones; ``FP = sum(p) - TP``; ``FN = sum(t) - TP``.
    """
    prob_sum = probs.sum(dims)
    target_sum = target.sum(dims)
    difference = (probs - target).abs().sum(dims)
    tp = (prob_sum + target_sum - difference) / 2
    return tp, prob_sum - tp, target_sum - tp


def soft_confusion_counts(
    probs: Tensor, target: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Soft TP, FP, FN, TN as sums of products over every element (``TP = sum(p * t)``...)."""
    tp = (probs * target).sum()
    fp = (probs * (1 - target)).sum()
    fn = ((1 - probs) * target).sum()
    tn = ((1 - probs) * (1 - target)).sum()
    return tp, fp, fn, tn


def tversky_index(
    tp: Tensor, fp: Tensor, fn: Tensor, alpha: float, beta: float, smooth: float, eps: float
) -> Tensor:
    """``(TP + smooth) / max(TP + alpha * FP + beta * FN + smooth, eps)``.

    alpha = beta = 0.5 is the Dice coefficient, alpha = beta = 1 the Jaccard index (IoU).
    """
    return (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(eps)


def reduce_classes(
    per_class: Tensor, classes: tuple[int, ...] | None, class_weights: Tensor | None
) -> Tensor:
    """Average per-class values (last dimension), over ``classes`` only, weighted if asked.

    With weights ``w``: ``sum(w_c * l_c) / sum(w_c)``; otherwise the plain mean.
    """
    weights = class_weights
    if classes is not None:
        index = list(classes)
        per_class = per_class[..., index]
        weights = weights[index] if weights is not None else None
    if weights is None:
        return per_class.mean(-1)
    weights = weights.to(device=per_class.device, dtype=per_class.dtype)
    return (per_class * weights).sum(-1) / weights.sum()
