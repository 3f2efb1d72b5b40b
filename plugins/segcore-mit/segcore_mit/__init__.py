"""Mix Transformer (MiT) encoders for segcore: ``mit_b0`` .. ``mit_b5``.

The SegFormer backbone, written in plain PyTorch (no timm). Module names are SMP's, so SMP
encoder state dicts load unchanged. The reduction-2 feature is an empty 0-channel map (the
model starts at reduction 4); dilation is not supported.

Example::

    import segcore
    encoder = segcore.get_encoder("mit_b0", in_channels=1)
    model = segcore.Segformer(encoder_name="mit_b2", encoder_weights=None, classes=3)

The implementation classes are imported lazily (``from segcore_mit import
MixTransformerEncoder``), so that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["MixTransformerEncoder", "build_encoder"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "segcore_mit.encoder"))
