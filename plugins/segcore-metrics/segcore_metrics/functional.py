"""Confusion statistics (``get_stats``) and the 17 scores built on them.

Same names, arguments and defaults as ``segmentation_models_pytorch.metrics`` (SMP 0.6.0)::

    import segcore_metrics as M

    logits = model(images)                                   # (N, C, H, W)
    tp, fp, fn, tn = M.get_stats(logits.argmax(1), masks, mode="multiclass", num_classes=C)
    miou = M.iou_score(tp, fp, fn, tn, reduction="macro")    # a 0-d tensor
    per_image_class = M.f1_score(tp, fp, fn, tn)             # (N, C), reduction=None

Every score is ``formula(tp, fp, fn, tn)`` passed through one reduction engine
(``_compute_metric``); the formulas are written from their definitions
(https://en.wikipedia.org/wiki/Confusion_matrix).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from segcore import BINARY_MODE, MODES, MULTICLASS_MODE
from segcore.errors import InvalidOptionError, InvalidTargetError, did_you_mean
from segcore_metrics import FUNCTIONAL_EXPORTS

# The public names are listed once, in the package (which loads them lazily from here).
__all__ = list(FUNCTIONAL_EXPORTS)

#: Every valid ``reduction``; ``"none"`` and ``None`` both keep the (N, C) scores.
REDUCTIONS = (
    "micro",
    "macro",
    "weighted",
    "micro-imagewise",
    "macro-imagewise",
    "weighted-imagewise",
    "none",
    None,
)
_WEIGHTED = ("weighted", "weighted-imagewise")

#: Pixels handled per step of the multiclass counting loop. Small on CPU, so the temporary
#: index stays around 0.5 MB (SMP's per-image loop allocates about as much); large on
#: accelerators, where every step costs a kernel launch.
_CPU_CHUNK = 1 << 16
_ACCELERATOR_CHUNK = 1 << 24
#: Up to this many classes the multiclass counts come from per-image confusion matrices.
_MAX_CONFUSION_CLASSES = 64

Threshold = float | Sequence[float] | Tensor
Stats = tuple[Tensor, Tensor, Tensor, Tensor]


class UndefinedMetricWarning(UserWarning):
    """A score was 0/0 for some image or class and ``zero_division="warn"`` replaced it by 0."""


###################################################################################################
# get_stats
###################################################################################################


def get_stats(
    output: Tensor,
    target: Tensor,
    mode: str,
    ignore_index: int | None = None,
    threshold: Threshold | None = None,
    num_classes: int | None = None,
) -> Stats:
    """Count true positive, false positive, false negative and true negative pixels.

    Args:
        output: the prediction.
            ``"binary"``: (N, 1, ...), integer 0/1, or float scores with ``threshold``;
            ``"multilabel"``: (N, C, ...), same types;
            ``"multiclass"``: (N, ...), integer class indices (``logits.argmax(dim=1)``).
        target: integer tensor of the same shape as ``output``: 0/1 in binary and multilabel
            mode, class indices in [0, num_classes) in multiclass mode.
        mode: ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        ignore_index: target value whose pixels are left out of every count. Must lie outside
            the valid target values (e.g. -1 or 255). Unlike SMP, it also works in binary and
            multilabel mode.
        threshold: binary/multilabel only: a pixel is predicted positive where
            ``output >= threshold``; one number, or one per class (length C). Use 0.5 for
            probabilities, 0.0 for logits. Only ``output`` is thresholded, never ``target``.
        num_classes: number of classes; required in multiclass mode.

    Returns:
        ``(tp, fp, fn, tn)``, four ``torch.long`` tensors of shape (N, C) on the device of
        ``output``: the counts for each image and each class (C = 1 in binary mode).

    Raises:
        InvalidOptionError: unknown mode, missing ``num_classes`` (multiclass) or
            ``threshold`` (float output), bad ``ignore_index`` or ``threshold``.
        InvalidTargetError: tensors of the wrong type, shape or values.

    Example::

        >>> output = torch.tensor([[0, 1, 1, 2]]); target = torch.tensor([[0, 1, 2, 2]])
        >>> tp, fp, fn, tn = get_stats(output, target, "multiclass", num_classes=3)
        >>> tp
        tensor([[1, 1, 1]])
    """
    check_stats_options(mode, ignore_index, threshold, num_classes)
    for name, tensor in (("output", output), ("target", target)):
        if not isinstance(tensor, Tensor):
            raise InvalidTargetError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if output.device != target.device:
        raise InvalidTargetError(
            f"output and target are on different devices ({output.device} and "
            f"{target.device}); move one with .to(), e.g. target.to(output.device)"
        )
    if target.is_floating_point() or target.is_complex() or (
        mode == MULTICLASS_MODE and target.dtype == torch.bool
    ):
        raise InvalidTargetError(
            f"target must be an integer tensor (torch.long), got {target.dtype}; "
            + (
                "in 'multiclass' mode it holds class indices of shape (N, ...)"
                if mode == MULTICLASS_MODE
                else "it holds 0/1 labels: use target.long()"
            )
        )
    with torch.no_grad():
        if mode == MULTICLASS_MODE:
            assert num_classes is not None  # check_stats_options
            return _multiclass_stats(output, target, num_classes, ignore_index)
        return _binary_stats(output, target, mode, ignore_index, threshold, num_classes)


def _is_integer(tensor: Tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def _check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    if not isinstance(value, str | None) or value not in choices:
        valid = ", ".join(repr(choice) for choice in choices)
        strings = [choice for choice in choices if isinstance(choice, str)]
        hint = did_you_mean(value, strings) if isinstance(value, str) else ""
        raise InvalidOptionError(f"unknown {name} {value!r}; valid values are {valid}.{hint}")


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"{name} must be an int, got {value!r}")
    return value


def check_stats_options(
    mode: str,
    ignore_index: int | None = None,
    threshold: Threshold | None = None,
    num_classes: int | None = None,
) -> None:
    """Check the options of ``get_stats`` (and ``MetricAccumulator``) before any tensor is read.

    Raises:
        InvalidOptionError: unknown mode; ``num_classes`` missing (multiclass), not an int or
            < 1; ``ignore_index`` not an int; ``threshold`` given in multiclass mode, or not a
            finite number or a sequence of finite numbers.
    """
    _check_choice("mode", mode, MODES)
    if ignore_index is not None:
        _check_int("ignore_index", ignore_index)
    if num_classes is not None and _check_int("num_classes", num_classes) < 1:
        raise InvalidOptionError(f"num_classes must be >= 1, got {num_classes}")
    if mode == MULTICLASS_MODE:
        if threshold is not None:
            raise InvalidOptionError(
                "threshold is not used in 'multiclass' mode: output must already hold class "
                "indices (e.g. logits.argmax(dim=1)); drop threshold"
            )
        if num_classes is None:
            raise InvalidOptionError(
                "get_stats(mode='multiclass') needs num_classes, the number of classes C "
                "(class indices are 0..C-1)"
            )
        if ignore_index is not None and 0 <= ignore_index < num_classes:
            raise InvalidOptionError(
                f"ignore_index={ignore_index} is a valid class index (0..{num_classes - 1}); it "
                "must lie outside the classes, e.g. -1 or 255 (shift your labels if class 0 is "
                "'ignore')"
            )
    elif ignore_index is not None and ignore_index in (0, 1):
        raise InvalidOptionError(
            f"ignore_index={ignore_index} is a valid {mode} label (0 or 1); use another value, "
            "e.g. -1 or 255"
        )
    if threshold is not None:
        _threshold_values(threshold)


def _threshold_values(threshold: Threshold) -> Tensor:
    """``threshold`` as a flat float64 tensor of finite values (one, or one per class)."""
    problem = ""
    values = None
    if isinstance(threshold, bool | str | bytes):
        problem = f"got {threshold!r}"
    else:
        try:
            values = torch.as_tensor(threshold, dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            problem = f"got {threshold!r}"
    if values is not None and values.numel() == 0:
        problem = "got no value"
    elif values is not None and not bool(torch.isfinite(values).all()):
        problem = f"got {values.tolist()}"
    if problem:
        raise InvalidOptionError(
            "threshold must be a finite number (0.5 for probabilities, 0.0 for logits) or one "
            f"finite number per class, {problem}"
        )
    assert values is not None
    return values


def _multiclass_stats(
    output: Tensor,
    target: Tensor,
    num_classes: int,
    ignore_index: int | None,
) -> Stats:
    if not _is_integer(output):
        hint = "pass output.argmax(dim=1)" if output.is_floating_point() else "use output.long()"
        raise InvalidTargetError(
            "in 'multiclass' mode output must be an integer (torch.long) tensor of class "
            f"indices of shape (N, ...), got a {output.dtype} tensor of shape "
            f"{tuple(output.shape)}; {hint}"
        )
    if output.ndim == target.ndim + 1 and output.shape[:1] + output.shape[2:] == target.shape:
        raise InvalidTargetError(
            f"in 'multiclass' mode output must have the shape of target {tuple(target.shape)}, "
            f"got {tuple(output.shape)}, which looks like per-class scores (N, C, ...): pass "
            "output.argmax(dim=1)"
        )
    if target.ndim == output.ndim + 1 and target.shape[1] == 1:
        raise InvalidTargetError(
            f"in 'multiclass' mode target must be (N, ...) class indices like output "
            f"{tuple(output.shape)}, got {tuple(target.shape)}: use target.squeeze(1)"
        )
    _check_same_shape(output, target)
    if output.ndim < 1:
        raise InvalidTargetError("output and target need a batch dimension: shape (N, ...)")

    batch, pixels = output.shape[0], math.prod(output.shape[1:])
    predicted = output.reshape(batch, pixels)
    labels = target.reshape(batch, pixels)
    device = output.device
    check_labels = not _all_in_range(labels, 0, num_classes - 1)
    check_predicted = not _all_in_range(predicted, 0, num_classes - 1)

    # Few classes: one bincount of the (label, prediction) pairs, the confusion matrix of each
    # image. Many classes: bincount of 2 * label + hit (hits and misses of each class) and one
    # of the predictions, O(C) bins per image instead of C^2.
    confusion = num_classes <= _MAX_CONFUSION_CLASSES
    bins = num_classes * num_classes if confusion else 2 * num_classes
    tp = torch.zeros(batch, num_classes, dtype=torch.long, device=device)
    fp = torch.zeros_like(tp)
    fn = torch.zeros_like(tp)
    ignored_pixels = torch.zeros(batch, dtype=torch.long, device=device)
    for rows, columns in _chunks(batch, pixels, bins, device):
        labels_chunk = labels[rows, columns].long()
        predicted_chunk = predicted[rows, columns].long()
        images = rows.stop - rows.start
        ignored = labels_chunk == ignore_index if ignore_index is not None else None
        if (check_labels or check_predicted) and _any_invalid(
            labels_chunk, predicted_chunk, num_classes, ignored, check_labels, check_predicted
        ):
            _raise_invalid_classes(labels, predicted, num_classes, ignore_index)
        if ignored is not None:
            ignored_pixels[rows] += ignored.sum(1)
        image_offsets = torch.arange(images, device=device).unsqueeze(1)

        # Every index is built in place in one long buffer (an in-place add of a bool tensor
        # would allocate a long copy of it); ignored pixels go to a spare last bin.
        index = torch.empty_like(labels_chunk)
        if confusion:
            torch.mul(labels_chunk, num_classes, out=index)
            index += predicted_chunk
        else:
            torch.eq(predicted_chunk, labels_chunk, out=index)
            index.add_(labels_chunk, alpha=2)
        counts = _count(index, image_offsets, bins, ignored).view(images, num_classes, -1)
        if confusion:  # counts[n, label, prediction]
            hits = counts.diagonal(dim1=1, dim2=2)
            tp[rows] += hits
            fn[rows] += counts.sum(2) - hits
            fp[rows] += counts.sum(1) - hits
        else:  # counts[n, label, hit]
            hits = counts[..., 1]
            tp[rows] += hits
            fn[rows] += counts[..., 0]
            index.copy_(predicted_chunk)
            fp[rows] += _count(index, image_offsets, num_classes, ignored) - hits
        del index, counts

    tn = (pixels - ignored_pixels).unsqueeze(1) - tp - fp - fn
    return tp, fp, fn, tn


def _count(index: Tensor, image_offsets: Tensor, bins: int, ignored: Tensor | None) -> Tensor:
    """Per-image bincount of ``index`` (images, pixels) in [0, bins): (images, bins).
    Modifies ``index``."""
    images = index.shape[0]
    index += image_offsets * bins
    if ignored is not None:
        index.masked_fill_(ignored, images * bins)
    counts = torch.bincount(index.view(-1), minlength=images * bins + 1)
    return counts[: images * bins].view(images, bins)


def _chunks(
    batch: int, pixels: int, bins: int, device: torch.device
) -> Iterator[tuple[slice, slice]]:
    """(images, pixels) slices of about ``chunk`` pixels and at most ``chunk`` bins: whole
    images grouped, or one image split in pieces when a single image is larger."""
    chunk = _CPU_CHUNK if device.type == "cpu" else _ACCELERATOR_CHUNK
    if pixels >= chunk:
        for image in range(batch):
            for start in range(0, pixels, chunk):
                yield slice(image, image + 1), slice(start, min(start + chunk, pixels))
    else:
        step = max(1, min(chunk // max(pixels, 1), chunk // bins))
        for start in range(0, batch, step):
            yield slice(start, min(start + step, batch)), slice(None)


def _all_in_range(values: Tensor, low: int, high: int) -> bool:
    if values.numel() == 0:
        return True
    smallest, largest = torch.aminmax(values)
    return bool(smallest >= low) and bool(largest <= high)


def _any_invalid(
    labels: Tensor,
    predicted: Tensor,
    num_classes: int,
    ignored: Tensor | None,
    check_labels: bool,
    check_predicted: bool,
) -> bool:
    """Whether a pixel (not ignored) has a target or predicted value that is no class index."""
    bad = torch.zeros_like(labels, dtype=torch.bool)
    if check_labels:
        bad |= (labels < 0) | (labels >= num_classes)
    if check_predicted:
        bad |= (predicted < 0) | (predicted >= num_classes)
    if ignored is not None:
        bad &= ~ignored
    return bool(bad.any())


def _raise_invalid_classes(
    labels: Tensor, predicted: Tensor, num_classes: int, ignore_index: int | None
) -> None:
    if ignore_index is not None:
        valid = labels != ignore_index
    else:
        valid = torch.ones_like(labels, dtype=torch.bool)
    for name, values in (("target", labels), ("output", predicted)):
        bad = ((values < 0) | (values >= num_classes)) & valid
        if bool(bad.any()):
            example = int(values[bad][0])
            allowed = f"class indices in [0, {num_classes})"
            if name == "target":
                allowed += f" or ignore_index ({ignore_index})" if ignore_index is not None else (
                    "; pass ignore_index=<value> to leave pixels out"
                )
            raise InvalidTargetError(
                f"{name} holds {int(bad.sum())} value(s) that are not {allowed}, e.g. {example}"
            )


def _check_same_shape(output: Tensor, target: Tensor) -> None:
    if output.shape != target.shape:
        raise InvalidTargetError(
            f"output and target must have the same shape, got output {tuple(output.shape)} "
            f"and target {tuple(target.shape)}"
        )


def _binary_stats(
    output: Tensor,
    target: Tensor,
    mode: str,
    ignore_index: int | None,
    threshold: Threshold | None,
    num_classes: int | None,
) -> Stats:
    expected = "(N, 1, ...)" if mode == BINARY_MODE else "(N, C, ...)"
    if output.is_complex():
        raise InvalidTargetError(f"output must be a real tensor, got {output.dtype}")
    _check_same_shape(output, target)
    if output.ndim < 2:
        raise InvalidTargetError(
            f"in {mode!r} mode output and target must have shape {expected}, got "
            f"{tuple(output.shape)}"
            + ("; add the channel dimension with .unsqueeze(1)" if mode == BINARY_MODE else "")
        )
    batch, classes = output.shape[:2]
    if mode == BINARY_MODE and classes != 1:
        raise InvalidTargetError(
            f"in 'binary' mode output and target must have shape (N, 1, ...), got "
            f"{tuple(output.shape)}; use mode='multilabel' for {classes} independent channels, "
            "or .unsqueeze(1) for (N, H, W) masks"
        )
    if num_classes is not None and num_classes != classes:
        raise InvalidOptionError(
            f"num_classes={num_classes} does not match the {classes} channel(s) of output "
            f"{tuple(output.shape)}"
        )
    if threshold is None:
        if output.is_floating_point():
            raise InvalidOptionError(
                f"output is a {output.dtype} tensor (scores): pass threshold (0.5 for "
                "probabilities, 0.0 for logits) or give 0/1 integer predictions"
            )
        if output.dtype != torch.bool and not _all_in_range(output, 0, 1):
            raise InvalidTargetError(
                f"in {mode!r} mode an integer output must hold only 0 and 1; pass threshold to "
                "binarize scores"
            )
        predicted = output != 0
    else:
        predicted = output >= _threshold_tensor(threshold, classes, output)

    if target.dtype != torch.bool and not _all_in_range(target, 0, 1):
        bad = (target != 0) & (target != 1)
        if ignore_index is not None:
            bad &= target != ignore_index
        if bool(bad.any()):
            raise InvalidTargetError(
                f"in {mode!r} mode target must hold only 0 and 1"
                + (f" or ignore_index ({ignore_index})" if ignore_index is not None else "")
                + f", found e.g. {int(target[bad][0])}"
            )
    positive = target == 1 if target.dtype != torch.bool else target

    shape = (batch, classes, math.prod(output.shape[2:]))
    predicted = predicted.reshape(shape)
    positive = positive.reshape(shape)
    if ignore_index is not None:
        valid = (target != ignore_index).reshape(shape)
        predicted = predicted & valid
        total: Tensor | int = valid.sum(-1)
    else:
        total = predicted.shape[-1]
    tp = (predicted & positive).sum(-1)
    fp = predicted.sum(-1) - tp
    fn = positive.sum(-1) - tp
    tn = total - tp - fp - fn
    return tp, fp, fn, tn


def _threshold_tensor(threshold: Threshold, classes: int, output: Tensor) -> Tensor | float:
    if isinstance(threshold, int | float):
        return float(threshold)
    values = _threshold_values(threshold)
    if values.numel() == 1:
        return float(values)
    if values.numel() != classes:
        raise InvalidOptionError(
            f"threshold must be one number or one per class ({classes}), got {values.numel()} "
            "values"
        )
    dtype = output.dtype if output.is_floating_point() else torch.float64
    return values.to(device=output.device, dtype=dtype).view(1, classes, *[1] * (output.ndim - 2))


###################################################################################################
# The reduction engine
###################################################################################################


def _compute_metric(
    formula: Callable[..., Tensor],
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    reduction: str | None,
    class_weights: Sequence[float] | Tensor | None,
    zero_division: str | float,
) -> Tensor:
    """Reduce ``formula(tp, fp, fn, tn)`` as ``reduction`` says (see ``_REDUCTION_DOC``)."""
    _check_choice("reduction", reduction, REDUCTIONS)
    _check_zero_division(zero_division)
    tp, fp, fn, tn = _check_stats(tp, fp, fn, tn, reduction)
    weights = _normalized_weights(class_weights, reduction, tp)

    if reduction == "micro":
        counts = [value.sum() for value in (tp, fp, fn, tn)]
    elif reduction in ("macro", "weighted"):
        counts = [value.sum(0) for value in (tp, fp, fn, tn)]
    elif reduction == "micro-imagewise":
        counts = [value.sum(1) for value in (tp, fp, fn, tn)]
    else:
        counts = [tp, fp, fn, tn]
    score = _fill_undefined(formula(*(_as_float(value) for value in counts)), zero_division)

    if reduction in ("macro", "micro-imagewise", "macro-imagewise"):
        return _mean(score, zero_division)
    if reduction in _WEIGHTED:
        # a class of weight 0 contributes nothing, even an infinite likelihood ratio (inf * 0)
        weighted = (score * weights).masked_fill(weights == 0, 0.0)
        return weighted.sum() if reduction == "weighted" else _mean(weighted.sum(1), zero_division)
    return score  # "micro" (already a scalar), "none", None


def _mean(score: Tensor, zero_division: str | float) -> Tensor:
    """The mean of ``score``; the mean over no image at all (counts of an empty batch, an
    accumulator without updates) is undefined (0/0), so it is ``zero_division``."""
    if score.numel():
        return score.mean()
    return _fill_undefined(score.new_full((), math.nan), zero_division)


def _check_zero_division(zero_division: object) -> None:
    if zero_division == "warn":
        return
    if (
        isinstance(zero_division, bool)
        or not isinstance(zero_division, int | float)
        or not math.isfinite(zero_division)
    ):
        hint = did_you_mean(zero_division, ["warn"]) if isinstance(zero_division, str) else ""
        raise InvalidOptionError(
            f"zero_division must be a finite number (the score used for 0/0, e.g. 0 or 1) or "
            f"'warn', got {zero_division!r}.{hint}"
        )


def _check_stats(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor, reduction: str | None) -> Stats:
    values = []
    for name, value in (("tp", tp), ("fp", fp), ("fn", fn), ("tn", tn)):
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            tensor = None
        if tensor is None or tensor.is_complex() or tensor.dtype == torch.bool:
            raise InvalidTargetError(
                f"{name} must be a tensor of counts (as get_stats returns them), got "
                f"{type(value).__name__} {value!r:.80}"
            )
        values.append(tensor)
    shapes = {tuple(value.shape) for value in values}
    if len(shapes) != 1:
        raise InvalidTargetError(
            "tp, fp, fn and tn must have the same shape, got "
            + ", ".join(str(tuple(value.shape)) for value in values)
        )
    if reduction not in ("micro", "none", None) and values[0].ndim != 2:
        raise InvalidTargetError(
            f"reduction {reduction!r} needs tp, fp, fn, tn of shape (N, C) as get_stats returns "
            f"them, got shape {tuple(values[0].shape)}"
        )
    return tuple(values)  # type: ignore[return-value]


def _normalized_weights(
    class_weights: Sequence[float] | Tensor | None, reduction: str | None, tp: Tensor
) -> Tensor | None:
    if reduction not in _WEIGHTED:
        if class_weights is not None:
            warnings.warn(
                f"class_weights are only used by the weighted reductions {_WEIGHTED}; they are "
                f"ignored with reduction={reduction!r}",
                UserWarning,
                stacklevel=4,
            )
        return None
    classes = tp.shape[-1]
    if class_weights is None:
        raise InvalidOptionError(
            f"reduction {reduction!r} needs class_weights, one non-negative weight per class "
            f"({classes} values)"
        )
    try:
        weights = torch.as_tensor(class_weights, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise InvalidOptionError(
            f"class_weights must be a list or tensor of {classes} numbers (one per class), got "
            f"{class_weights!r}"
        ) from None
    if weights.numel() != classes:
        raise InvalidOptionError(
            f"class_weights must have one value per class ({classes}), got {weights.numel()}"
        )
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise InvalidOptionError(f"class_weights must be finite and >= 0, got {weights.tolist()}")
    total = float(weights.sum())
    if total <= 0:
        raise InvalidOptionError("class_weights must not all be zero")
    dtype = tp.dtype if tp.is_floating_point() else torch.get_default_dtype()
    return (weights / total).to(device=tp.device, dtype=dtype)


def _as_float(value: Tensor) -> Tensor:
    return value if value.is_floating_point() else value.to(torch.get_default_dtype())


def _fill_undefined(score: Tensor, zero_division: str | float) -> Tensor:
    undefined = torch.isnan(score)
    if zero_division == "warn":
        if bool(undefined.any()):
            warnings.warn(
                "a score is undefined (0/0) for some image or class and was set to 0; pass "
                "zero_division=<value> to choose the value and silence this warning",
                UndefinedMetricWarning,
                stacklevel=4,
            )
        zero_division = 0.0
    return score.masked_fill(undefined, float(zero_division))


###################################################################################################
# The formulas (float tensors in, float tensor out; 0/0 gives NaN, filled by zero_division)
###################################################################################################


def _fbeta(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor, beta: float = 1.0) -> Tensor:
    weighted_tp = (1 + beta**2) * tp
    return weighted_tp / (weighted_tp + beta**2 * fn + fp)


def _f1(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    return _fbeta(tp, fp, fn, tn, beta=1.0)


def _iou(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    return tp / (tp + fp + fn)


def _accuracy(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    return (tp + tn) / (tp + fp + fn + tn)


def _rate(part: str, other: str) -> Callable[..., Tensor]:
    """The formula ``part / (part + other)`` of two counts named as get_stats returns them."""
    first, second = _COUNT_NAMES.index(part), _COUNT_NAMES.index(other)

    def formula(*counts: Tensor) -> Tensor:
        return counts[first] / (counts[first] + counts[second])

    formula.__name__ = formula.__qualname__ = f"{part}_over_{part}_plus_{other}"
    return formula


_COUNT_NAMES = ("tp", "fp", "fn", "tn")
_true_positive_rate = _rate("tp", "fn")
_true_negative_rate = _rate("tn", "fp")
_positive_predictive_value = _rate("tp", "fp")
_negative_predictive_value = _rate("tn", "fn")
_false_negative_rate = _rate("fn", "tp")
_false_positive_rate = _rate("fp", "tn")
_false_discovery_rate = _rate("fp", "tp")
_false_omission_rate = _rate("fn", "tn")


def _balanced_accuracy(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
    return (_true_positive_rate(tp, fp, fn, tn) + _true_negative_rate(tp, fp, fn, tn)) / 2


def _likelihood_ratio(
    numerator: Callable[..., Tensor], denominator: Callable[..., Tensor]
) -> Callable[..., Tensor]:
    """The formula ``numerator(counts) / denominator(counts)`` of two rates."""

    def formula(*counts: Tensor) -> Tensor:
        return numerator(*counts) / denominator(*counts)

    return formula


_positive_likelihood_ratio = _likelihood_ratio(_true_positive_rate, _false_positive_rate)
_negative_likelihood_ratio = _likelihood_ratio(_false_negative_rate, _true_negative_rate)


###################################################################################################
# The public score functions
###################################################################################################

_REDUCTION_DOC = """
    Args:
        tp, fp, fn, tn: counts of shape (N, C) from ``get_stats`` (images x classes).
        reduction: how scores are aggregated over images and classes:
            ``"micro"``: sum the counts over images and classes, then one score.
            ``"macro"``: sum over images, one score per class, plain mean over classes.
            ``"weighted"``: as macro, weighted mean over classes (needs ``class_weights``).
            ``"micro-imagewise"``: sum over classes, one score per image, mean over images.
            ``"macro-imagewise"``: one score per image and class, mean over classes then images.
            ``"weighted-imagewise"``: one score per image and class, weighted mean over
            classes, then mean over images (needs ``class_weights``).
            ``"none"`` / ``None`` (default): the (N, C) scores.
        class_weights: one non-negative weight per class for the weighted reductions
            (normalized to sum 1); ignored, with a warning, by the other reductions.
        zero_division: the score where the formula is 0/0 (e.g. a class absent from both
            prediction and target); ``"warn"`` uses 0 and warns. Default 1.

    Returns:
        a 0-d tensor, or (N, C) scores for ``reduction=None``/``"none"``.

    Raises:
        InvalidOptionError: unknown reduction, bad ``zero_division`` or ``class_weights``.
        InvalidTargetError: tp, fp, fn, tn of different or wrong shapes.

    Example::

        tp, fp, fn, tn = get_stats(output, target, "multiclass", num_classes=3)
        {name}(tp, fp, fn, tn, reduction="macro")
"""


def _define_metric(
    name: str, formula: Callable[..., Tensor], title: str, definition: str
) -> Callable[..., Tensor]:
    """One public score function: ``formula`` behind the shared reduction engine."""

    def metric(
        tp: Tensor,
        fp: Tensor,
        fn: Tensor,
        tn: Tensor,
        reduction: str | None = None,
        class_weights: Sequence[float] | Tensor | None = None,
        zero_division: str | float = 1.0,
    ) -> Tensor:
        return _compute_metric(formula, tp, fp, fn, tn, reduction, class_weights, zero_division)

    metric.__name__ = metric.__qualname__ = name
    metric.__module__ = __name__
    metric.__doc__ = f"{title}: ``{definition}``.\n" + _REDUCTION_DOC.replace("{name}", name)
    return metric


def fbeta_score(
    tp: Tensor,
    fp: Tensor,
    fn: Tensor,
    tn: Tensor,
    beta: float = 1.0,
    reduction: str | None = None,
    class_weights: Sequence[float] | Tensor | None = None,
    zero_division: str | float = 1.0,
) -> Tensor:
    _check_beta(beta)

    def formula(tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor) -> Tensor:
        return _fbeta(tp, fp, fn, tn, beta=beta)

    return _compute_metric(formula, tp, fp, fn, tn, reduction, class_weights, zero_division)


def _check_beta(beta: object) -> None:
    """``beta`` is a finite number > 0 (the F-beta score is defined for positive beta)."""
    if (
        isinstance(beta, bool)
        or not isinstance(beta, int | float)
        or not math.isfinite(beta)
        or beta <= 0
    ):
        raise InvalidOptionError(
            f"beta must be a finite number > 0 (1: F1, 2: recall weighs more, 0.5: precision "
            f"weighs more), got {beta!r}; for the precision itself use precision()"
        )


fbeta_score.__doc__ = (
    "F-beta score: ``(1 + beta^2) tp / ((1 + beta^2) tp + beta^2 fn + fp)``; ``beta`` > 1 "
    "favours recall, < 1 precision.\n"
    + _REDUCTION_DOC.replace("{name}(tp, fp, fn, tn,", "fbeta_score(tp, fp, fn, tn, beta=2,")
    .replace(
        "        reduction: how",
        "        beta: weight of recall against precision, a finite number >= 0 (1: F1, "
        "0: precision).\n"
        "        reduction: how",
    )
    .replace("InvalidOptionError: unknown", "InvalidOptionError: bad beta, unknown")
)

#: name: (formula, definition, title) of every score with the shared signature.
_SCORE_TABLE: dict[str, tuple[Callable[..., Tensor], str, str]] = {
    "f1_score": (_f1, "2 tp / (2 tp + fp + fn)", "F1 score (Dice)"),
    "iou_score": (_iou, "tp / (tp + fp + fn)", "IoU score (Jaccard index)"),
    "accuracy": (_accuracy, "(tp + tn) / (tp + fp + fn + tn)", "Accuracy"),
    "sensitivity": (
        _true_positive_rate, "tp / (tp + fn)",
        "Sensitivity, recall, hit rate, true positive rate (TPR)",
    ),
    "recall": (
        _true_positive_rate, "tp / (tp + fn)", "Recall, sensitivity, true positive rate (TPR)"
    ),
    "specificity": (
        _true_negative_rate, "tn / (tn + fp)", "Specificity, selectivity, true negative rate (TNR)"
    ),
    "balanced_accuracy": (
        _balanced_accuracy, "(tp / (tp + fn) + tn / (tn + fp)) / 2", "Balanced accuracy"
    ),
    "positive_predictive_value": (
        _positive_predictive_value, "tp / (tp + fp)", "Positive predictive value (PPV), precision"
    ),
    "precision": (
        _positive_predictive_value, "tp / (tp + fp)", "Precision, positive predictive value (PPV)"
    ),
    "negative_predictive_value": (
        _negative_predictive_value, "tn / (tn + fn)", "Negative predictive value (NPV)"
    ),
    "false_negative_rate": (
        _false_negative_rate, "fn / (fn + tp)", "Miss rate, false negative rate (FNR)"
    ),
    "false_positive_rate": (
        _false_positive_rate, "fp / (fp + tn)", "Fall-out, false positive rate (FPR)"
    ),
    "false_discovery_rate": (_false_discovery_rate, "fp / (fp + tp)", "False discovery rate (FDR)"),
    "false_omission_rate": (_false_omission_rate, "fn / (fn + tn)", "False omission rate (FOR)"),
    "positive_likelihood_ratio": (
        _positive_likelihood_ratio, "TPR / FPR = (tp / (tp + fn)) / (fp / (fp + tn))",
        "Positive likelihood ratio (LR+)",
    ),
    "negative_likelihood_ratio": (
        _negative_likelihood_ratio, "FNR / TNR = (fn / (fn + tp)) / (tn / (tn + fp))",
        "Negative likelihood ratio (LR-)",
    ),
}
_SCORES = {
    name: _define_metric(name, formula, title, definition)
    for name, (formula, definition, title) in _SCORE_TABLE.items()
}
f1_score = _SCORES["f1_score"]
iou_score = _SCORES["iou_score"]
accuracy = _SCORES["accuracy"]
sensitivity = _SCORES["sensitivity"]
recall = _SCORES["recall"]
specificity = _SCORES["specificity"]
balanced_accuracy = _SCORES["balanced_accuracy"]
positive_predictive_value = _SCORES["positive_predictive_value"]
precision = _SCORES["precision"]
negative_predictive_value = _SCORES["negative_predictive_value"]
false_negative_rate = _SCORES["false_negative_rate"]
false_positive_rate = _SCORES["false_positive_rate"]
false_discovery_rate = _SCORES["false_discovery_rate"]
false_omission_rate = _SCORES["false_omission_rate"]
positive_likelihood_ratio = _SCORES["positive_likelihood_ratio"]
negative_likelihood_ratio = _SCORES["negative_likelihood_ratio"]

#: Every score function by name (what the ``segcore_metrics`` hook registers).
METRICS: dict[str, Callable[..., Tensor]] = {
    function.__name__: function
    for function in (
        fbeta_score, f1_score, iou_score, accuracy, precision, recall, sensitivity,
        specificity, balanced_accuracy, positive_predictive_value, negative_predictive_value,
        false_negative_rate, false_positive_rate, false_discovery_rate, false_omission_rate,
        positive_likelihood_ratio, negative_likelihood_ratio,
    )
}
