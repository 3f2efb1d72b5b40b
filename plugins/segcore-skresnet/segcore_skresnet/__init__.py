"""Selective-kernel ResNet / ResNeXt encoders for segcore, built on timm's SK blocks.

Names: ``timm-skresnet18``, ``timm-skresnet34``, ``timm-skresnext50_32x4d`` (SMP's). Module
names are timm's ``ResNet`` ones (``conv1, bn1, act1, maxpool, layer1..layer4``), so SMP
encoder state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("timm-skresnet18", in_channels=1, output_stride=16)

The implementation (and timm) is imported lazily: discovering the plugin imports neither.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["SKResNetEncoder", "build_encoder"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "segcore_skresnet.encoder"))
