"""The UNet++ architecture for segcore.

Example::

    import segcore
    model = segcore.UnetPlusPlus(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_unetplusplus import UnetPlusPlus

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_unetplusplus.plugin``) imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "UnetPlusPlus": "segcore_unetplusplus.model",
    "UnetPlusPlusOptions": "segcore_unetplusplus.options",
    "UnetPlusPlusDecoder": "segcore_unetplusplus.decoder",
    "UnetPlusPlusDecoderBlock": "segcore_unetplusplus.decoder",
    "UnetPlusPlusCenterBlock": "segcore_unetplusplus.decoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
