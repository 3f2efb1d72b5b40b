"""``tu-<timm model>`` encoders for segcore: any timm model that supports ``features_only``.

Example::

    import segcore
    encoder = segcore.get_encoder("tu-convnext_atto", in_channels=1, depth=4)
    model = segcore.build("unet", encoder="tu-resnet18", encoder_weights="imagenet")

The encoder keeps timm's feature extractor in ``encoder.model``, so SMP checkpoints of
``TimmUniversalEncoder`` (keys ``encoder.model.*``) load unchanged. Implementation modules
(and timm) are imported lazily: discovering the plugin imports neither.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

PREFIX = "tu-"  # the name prefix of every encoder this plugin resolves

_EXPORTS = {
    "TimmUniversalEncoder": "segcore_timm.encoder",
    "build_timm_encoder": "segcore_timm.encoder",
    "FeatureLayout": "segcore_timm.layout",
    "probe_layout": "segcore_timm.layout",
    "encoder_spec": "segcore_timm.layout",
}
__all__ = ["PREFIX", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
