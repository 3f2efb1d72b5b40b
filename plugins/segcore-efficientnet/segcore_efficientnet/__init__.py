"""EfficientNet-B0..B7 encoders for segcore (SMP's ``efficientnet-b*`` encoders).

Names: ``efficientnet-b0`` ... ``efficientnet-b7``. Module names are those of SMP's
``EfficientNetEncoder``, so SMP encoder state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("efficientnet-b0", in_channels=1, depth=4)

The implementation classes are imported lazily (``from segcore_efficientnet import
EfficientNetEncoder``), so that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["EfficientNetEncoder", "MBConvBlock", "SameConv2d", "build_encoder"]
__getattr__, __dir__ = lazy_exports(
    __name__, dict.fromkeys(__all__, "segcore_efficientnet.encoder")
)
