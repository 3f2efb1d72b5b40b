"""The DPT (Dense Prediction Transformer) architecture for segcore.

Example::

    import segcore
    model = segcore.DPT("tu-vit_small_patch16_224", encoder_weights=None, classes=3,
                        dynamic_img_size=True)
    # or: from segcore_dpt import DPT

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_dpt.plugin``) imports no model code and no timm.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "DPT": "segcore_dpt.model",
    "DPTOptions": "segcore_dpt.options",
    "DPTDecoder": "segcore_dpt.decoder",
    "DPTSegmentationHead": "segcore_dpt.decoder",
    "FusionBlock": "segcore_dpt.decoder",
    "ReassembleBlock": "segcore_dpt.decoder",
    "ResidualConvBlock": "segcore_dpt.decoder",
    "ReadoutConcatBlock": "segcore_dpt.decoder",
    "ReadoutAddBlock": "segcore_dpt.decoder",
    "ReadoutIgnoreBlock": "segcore_dpt.decoder",
    "TimmViTEncoder": "segcore_dpt.encoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
