"""The FPN (Feature Pyramid Network) architecture for segcore.

Example::

    import segcore
    model = segcore.FPN(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_fpn import FPN

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_fpn.plugin``) imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "FPN": "segcore_fpn.model",
    "FPNOptions": "segcore_fpn.options",
    "FPNDecoder": "segcore_fpn.decoder",
    "FPNBlock": "segcore_fpn.decoder",
    "SegmentationBlock": "segcore_fpn.decoder",
    "MergeBlock": "segcore_fpn.decoder",
    "Conv3x3GNReLU": "segcore_fpn.decoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
