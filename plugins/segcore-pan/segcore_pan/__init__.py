"""The PAN (Pyramid Attention Network) architecture for segcore.

Example::

    import segcore
    model = segcore.PAN(encoder_name="resnet34", encoder_weights=None, classes=3)
    # or: from segcore_pan import PAN

The names are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_pan.plugin``) imports no model code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segcore.specs import lazy_exports

if TYPE_CHECKING:
    from segcore_pan.decoder import ConvBnRelu, FPABlock, GAUBlock, PANDecoder
    from segcore_pan.model import PAN
    from segcore_pan.options import PANOptions

_EXPORTS = {
    "PAN": "segcore_pan.model",
    "PANOptions": "segcore_pan.options",
    "PANDecoder": "segcore_pan.decoder",
    "FPABlock": "segcore_pan.decoder",
    "GAUBlock": "segcore_pan.decoder",
    "ConvBnRelu": "segcore_pan.decoder",
}
__all__ = ["PAN", "ConvBnRelu", "FPABlock", "GAUBlock", "PANDecoder", "PANOptions"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
