"""Hook implementations of segcore-losses: the specs of the eight losses.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; each loss class is referenced
as ``"segcore_losses.<module>:<Class>"`` and imported only when it is built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import LossSpec

_LOSSES = (
    ("jaccard", "segcore_losses.jaccard:JaccardLoss",
     "1 - soft IoU (Jaccard index); binary, multiclass, multilabel"),
    ("dice", "segcore_losses.dice:DiceLoss",
     "1 - soft Dice coefficient; binary, multiclass, multilabel"),
    ("tversky", "segcore_losses.tversky:TverskyLoss",
     "1 - Tversky index (FP/FN weighted by alpha/beta); binary, multiclass, multilabel"),
    ("focal", "segcore_losses.focal:FocalLoss",
     "sigmoid focal loss per class; binary, multiclass, multilabel"),
    ("lovasz", "segcore_losses.lovasz:LovaszLoss",
     "Lovasz hinge / Lovasz-softmax surrogate of the IoU; binary, multiclass, multilabel"),
    ("soft_bce", "segcore_losses.soft_bce:SoftBCEWithLogitsLoss",
     "BCE with logits plus ignore_index and label smoothing"),
    ("soft_ce", "segcore_losses.soft_ce:SoftCrossEntropyLoss",
     "cross-entropy plus ignore_index and label smoothing"),
    ("mcc", "segcore_losses.mcc:MCCLoss",
     "1 - soft Matthews correlation coefficient; binary only"),
)


@hookimpl
def segcore_losses() -> list[LossSpec]:
    """The losses of segcore-losses, by their documented short names."""
    return [
        LossSpec(name=name, factory=factory, description=description)
        for name, factory, description in _LOSSES
    ]
