"""Inception-v4, Inception-ResNet-v2 and Xception encoders for segcore.

Names: ``inceptionv4``, ``inceptionresnetv2``, ``xception``. Module names are those of SMP's
encoders (Cadene's ``pretrainedmodels`` layout), so SMP encoder state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("inceptionresnetv2", in_channels=1, depth=4)

The implementation classes are imported lazily (``from segcore_inception import
XceptionEncoder``), so that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = [
    "InceptionResNetV2Encoder",
    "InceptionV4Encoder",
    "XceptionEncoder",
    "build_inceptionresnetv2",
    "build_inceptionv4",
    "build_xception",
]
__getattr__, __dir__ = lazy_exports(__name__, {
    "InceptionV4Encoder": "segcore_inception.inceptionv4",
    "build_inceptionv4": "segcore_inception.inceptionv4",
    "InceptionResNetV2Encoder": "segcore_inception.inceptionresnetv2",
    "build_inceptionresnetv2": "segcore_inception.inceptionresnetv2",
    "XceptionEncoder": "segcore_inception.xception",
    "build_xception": "segcore_inception.xception",
})
