"""The UPerNet (Unified Perceptual Parsing) architecture for segcore.

Example::

    import segcore
    model = segcore.UPerNet(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_upernet import UPerNet

The classes are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_upernet.plugin``) imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "UPerNet": "segcore_upernet.model",
    "UPerNetOptions": "segcore_upernet.options",
    "UPerNetDecoder": "segcore_upernet.decoder",
    "PSPModule": "segcore_upernet.decoder",
    "FPNLateralBlock": "segcore_upernet.decoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
