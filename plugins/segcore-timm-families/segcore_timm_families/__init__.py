"""SMP's documented ``timm-`` encoders, served by timm's own models through segcore-timm
(a dependency, reached through the core's registry).

Names: ``timm-resnest*``, ``timm-res2net*``, ``timm-res2next50``, ``timm-regnetx_*``,
``timm-regnety_*``, ``timm-gernet_*`` and ``timm-mobilenetv3_*`` (48 names). Each is the timm
model SMP 0.6.0 maps it to (``timm-resnest14d`` -> ``tu-resnest14d``, ``timm-mobilenetv3_large_100``
-> ``tu-tf_mobilenetv3_large_100``), kept here as a first-class name without SMP's deprecation
warning. Module names are those of SMP 0.6.0 (``model.*``); state dicts of SMP 0.2-0.4, whose
encoders had no ``model.`` prefix, load too (``remap_state_dict``).

Example::

    import segcore
    encoder = segcore.get_encoder("timm-regnety_016", in_channels=1, output_stride=16)
    model = segcore.Unet("timm-resnest14d", encoder_weights="imagenet")  # timm's weights

Discovering the plugin imports neither the encoder module nor timm.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "build_encoder": "segcore_timm_families.encoder",
    "remap_state_dict": "segcore_timm_families.encoder",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
