"""ResNet and ResNeXt encoders for segcore.

Names: ``resnet18/34/50/101/152``, ``resnext50_32x4d``, ``resnext101_32x{4,8,16,32,48}d``.
Module names are torchvision's, so SMP encoder state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("resnet34", in_channels=1, depth=4)

The implementation classes are imported lazily (``from segcore_resnet import ResNetEncoder``),
so that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["BasicBlock", "Bottleneck", "ResNetEncoder", "build_encoder"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "segcore_resnet.encoder"))
