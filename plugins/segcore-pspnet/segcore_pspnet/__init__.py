"""The PSPNet (Pyramid Scene Parsing Network) architecture for segcore.

Example::

    import segcore
    model = segcore.PSPNet(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_pspnet import PSPNet

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_pspnet.plugin``) imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "PSPNet": "segcore_pspnet.model",
    "PSPNetOptions": "segcore_pspnet.options",
    "PSPDecoder": "segcore_pspnet.decoder",
    "PSPModule": "segcore_pspnet.decoder",
    "PSPBlock": "segcore_pspnet.decoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
