"""``smp.losses``: SMP 0.6.0's losses, served by the segcore-losses plugin.

Example::

    from segcore.smp.losses import DiceLoss, MULTICLASS_MODE
    loss = DiceLoss(MULTICLASS_MODE, ignore_index=255)
    value = loss(logits, target)          # logits (N, C, H, W), target (N, H, W) long

Each class is the one the installed losses plugin registers (``smp.losses.DiceLoss`` builds a
``segcore_losses.DiceLoss``), with segcore's fixes (docs/losses.md). One addition, for SMP
scripts: in binary mode the losses that take a ``mode`` accept an output and a target that
hold the same pixels in shapes differing only by size-1 axes, such as ``(N, 1, L)`` and
``(N, 1, 1, L)``; SMP flattens both, so the value is SMP's. Shapes that would need a real
reshape (``(N, 1, 4, 4)`` against ``(N, 1, 16)``) are still refused.
"""

from __future__ import annotations

import importlib
import math
from typing import TYPE_CHECKING, Any

from segcore.errors import UnknownNameError
from segcore.smp import missing
from segcore.smp.losses.constants import BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE

if TYPE_CHECKING:
    from torch import Tensor

#: SMP's loss classes and the segcore loss names that provide them.
LOSS_NAMES: dict[str, str] = {
    "JaccardLoss": "jaccard",
    "DiceLoss": "dice",
    "FocalLoss": "focal",
    "LovaszLoss": "lovasz",
    "SoftBCEWithLogitsLoss": "soft_bce",
    "SoftCrossEntropyLoss": "soft_ce",
    "TverskyLoss": "tversky",
    "MCCLoss": "mcc",
}

#: The losses with a ``mode`` whose binary inputs SMP flattens to ``(N, 1, -1)``.
_FLATTENING = ("JaccardLoss", "DiceLoss", "FocalLoss", "LovaszLoss", "TverskyLoss", "MCCLoss")

__all__ = ["BINARY_MODE", "MULTICLASS_MODE", "MULTILABEL_MODE", *LOSS_NAMES]

_SUBMODULES = ("constants", "_functional")
_compat_classes: dict[type, type] = {}


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(size for size in shape if size != 1)


def binary_inputs_as_smp(y_pred: Tensor, y_true: Tensor) -> tuple[Tensor, Tensor] | None:
    """Binary output and target reshaped to ``(N, 1, P)`` where SMP flattens them and segcore
    would refuse them; ``None`` when the pair needs no reshape (or is not unambiguous).

    Applies when the output has one channel, ``(N, 1, ...)``, the target has the same batch
    size, the pair is not already one segcore accepts (target ``(N, ...)`` or ``(N, 1, ...)``
    with the output's spatial shape), and both hold the same pixels in the same order: their
    shapes after the batch axis are equal once size-1 axes are dropped.
    """
    from torch import Tensor

    if not (isinstance(y_pred, Tensor) and isinstance(y_true, Tensor)):
        return None
    if y_pred.dim() < 2 or y_true.dim() < 1 or y_pred.shape[1] != 1:
        return None
    batch = y_pred.shape[0]
    if y_true.shape[0] != batch:
        return None
    spatial = tuple(y_pred.shape[2:])
    if tuple(y_true.shape) in ((batch, *spatial), (batch, 1, *spatial)):
        return None
    if _squeezed(tuple(y_pred.shape[1:])) != _squeezed(tuple(y_true.shape[1:])):
        return None
    pixels = math.prod(y_pred.shape[1:])
    return y_pred.reshape(batch, 1, pixels), y_true.reshape(batch, 1, pixels)


def _flattening_class(base: type, name: str) -> type:
    """A subclass of ``base`` whose binary ``forward`` first reshapes as SMP does."""
    if base in _compat_classes:
        return _compat_classes[base]

    def forward(self: Any, y_pred: Tensor, y_true: Tensor) -> Tensor:
        if getattr(self, "mode", None) == BINARY_MODE:
            reshaped = binary_inputs_as_smp(y_pred, y_true)
            if reshaped is not None:
                result = base.forward(self, *reshaped)
                if result.dim() > 0 and result.numel() == y_pred.numel():
                    result = result.reshape(y_pred.shape)  # reduction="none": the output's shape
                return result
        return base.forward(self, y_pred, y_true)

    forward.__doc__ = base.forward.__doc__
    compat = type(name, (base,), {
        "forward": forward,
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": (base.__doc__ or "") + (
            "\n\n    segcore.smp: binary inputs whose shapes differ only by size-1 axes, such "
            "as (N, 1, L) and (N, 1, 1, L), are flattened as SMP 0.6.0 does.\n"
        ),
    })
    _compat_classes[base] = compat
    return compat


def _loss_class(name: str) -> type:
    from segcore.objectives import get_loss_class

    try:
        base = get_loss_class(LOSS_NAMES[name])
    except UnknownNameError as error:
        raise missing(name, error, __name__) from None
    if name in _FLATTENING and isinstance(base, type) and hasattr(base, "forward"):
        return _flattening_class(base, name)
    return base


def __getattr__(name: str) -> Any:
    if name in LOSS_NAMES:
        return _loss_class(name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES, "LOSS_NAMES", "binary_inputs_as_smp"})
