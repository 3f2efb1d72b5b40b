"""EfficientNet encoders for segcore built on timm's blocks (SMP's ``timm-efficientnet-*``).

Names: ``timm-efficientnet-b0`` .. ``-b8``, ``timm-efficientnet-l2`` and
``timm-efficientnet-lite0`` .. ``-lite4`` (also under SMP 0.6.0's spelling
``timm-tf_efficientnet_lite0`` .. ``4``). Module names are timm's ``EfficientNet`` ones
(``conv_stem, bn1, blocks, conv_head, bn2``), so SMP encoder state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("timm-efficientnet-b0", in_channels=1, depth=4)

The implementation (and timm) is imported lazily: discovering the plugin imports neither.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["EfficientNetEncoder", "build_encoder"]
__getattr__, __dir__ = lazy_exports(
    __name__, dict.fromkeys(__all__, "segcore_timm_efficientnet.encoder")
)
