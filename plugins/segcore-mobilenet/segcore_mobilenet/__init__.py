"""The MobileNetV2 encoder for segcore (``mobilenet_v2``).

Module names are torchvision's, so SMP encoder state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("mobilenet_v2", in_channels=1, output_stride=16)

The implementation classes are imported lazily (``from segcore_mobilenet import
MobileNetV2Encoder``), so that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["ConvBNReLU6", "InvertedResidual", "MobileNetV2Encoder", "build_encoder"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "segcore_mobilenet.encoder"))
