"""The Linknet architecture for segcore.

Example::

    import segcore
    model = segcore.Linknet(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_linknet import Linknet

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_linknet.plugin``) imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "Linknet": "segcore_linknet.model",
    "LinknetOptions": "segcore_linknet.options",
    "LinknetDecoder": "segcore_linknet.decoder",
    "LinknetDecoderBlock": "segcore_linknet.decoder",
    "TransposeX2": "segcore_linknet.decoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
