"""The Unet architecture for segcore.

Example::

    import segcore
    model = segcore.Unet(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_unet import Unet

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_unet.plugin``) imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "Unet": "segcore_unet.model",
    "UnetOptions": "segcore_unet.options",
    "UnetDecoder": "segcore_unet.decoder",
    "UnetDecoderBlock": "segcore_unet.decoder",
    "UnetCenterBlock": "segcore_unet.decoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
