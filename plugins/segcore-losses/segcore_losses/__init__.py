"""segcore-losses: the segmentation losses of the reference, as a segcore plugin.

Build them by name through the core (``segcore.build_loss("dice", mode="multiclass")``,
``segcore.build_loss({"dice": 1.0, "focal": 0.5}, mode="binary")``) or use the classes::

    from segcore_losses import DiceLoss, MULTICLASS_MODE
    loss = DiceLoss(MULTICLASS_MODE, ignore_index=255)
    value = loss(logits, target)          # logits (N, C, H, W), target (N, H, W) long

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_losses.plugin``) imports no torch code.
"""

from __future__ import annotations

from segcore import BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE
from segcore.specs import lazy_exports

_EXPORTS = {
    "DiceLoss": "segcore_losses.dice",
    "FocalLoss": "segcore_losses.focal",
    "JaccardLoss": "segcore_losses.jaccard",
    "LovaszLoss": "segcore_losses.lovasz",
    "MCCLoss": "segcore_losses.mcc",
    "SoftBCEWithLogitsLoss": "segcore_losses.soft_bce",
    "SoftCrossEntropyLoss": "segcore_losses.soft_ce",
    "TverskyLoss": "segcore_losses.tversky",
}
__all__ = ["BINARY_MODE", "MULTICLASS_MODE", "MULTILABEL_MODE", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
