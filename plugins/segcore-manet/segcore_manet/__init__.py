"""The MAnet architecture for segcore.

Example::

    import segcore
    model = segcore.MAnet(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_manet import MAnet

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_manet.plugin``) imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "MAnet": "segcore_manet.model",
    "MAnetOptions": "segcore_manet.options",
    "MAnetDecoder": "segcore_manet.decoder",
    "MAnetDecoderBlock": "segcore_manet.decoder",
    "MFABBlock": "segcore_manet.decoder",
    "PABBlock": "segcore_manet.decoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
