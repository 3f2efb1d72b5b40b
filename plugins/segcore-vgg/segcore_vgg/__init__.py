"""VGG encoders for segcore.

Names: ``vgg11``, ``vgg13``, ``vgg16``, ``vgg19`` and their batch-norm variants ``*_bn``.
Module names are torchvision's, so SMP encoder state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("vgg16_bn", in_channels=1, depth=4)

The implementation classes are imported lazily (``from segcore_vgg import VGGEncoder``), so
that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["CONFIGS", "VGGEncoder", "build_encoder"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "segcore_vgg.encoder"))
