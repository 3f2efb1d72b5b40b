"""The Segformer architecture for segcore (an all-MLP decoder over the encoder's stages).

Example::

    import segcore
    model = segcore.Segformer(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_segformer import Segformer

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_segformer.plugin``) imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "Segformer": "segcore_segformer.model",
    "SegformerOptions": "segcore_segformer.options",
    "SegformerDecoder": "segcore_segformer.decoder",
    "MLP": "segcore_segformer.decoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
