"""Hook implementations of segcore-mobilenet: the spec of the MobileNetV2 encoder.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_mobilenet.encoder:build_encoder"`` and imported only when it is built.
(The ``timm-mobilenetv3_*`` names are provided elsewhere.)
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, smp_hub_weights

FACTORY = "segcore_mobilenet.encoder:build_encoder"

#: Pinned revision of smp-hub/mobilenet_v2.imagenet (SMP 0.6.0).
IMAGENET_REVISION = "e67aa804e17f7b404b629127eabbd224c4e0690b"


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The ``mobilenet_v2`` encoder of the reference documentation."""
    name = "mobilenet_v2"
    return [EncoderSpec(
        name=name,
        family="MobileNet",
        factory=FACTORY,
        out_channels=(3, 16, 24, 32, 96, 1280),
        # torchvision's weights: RGB in [0, 1] with ImageNet statistics
        weights={"imagenet": smp_hub_weights(name, "imagenet", IMAGENET_REVISION,
                                             "ImageNet-1k (torchvision)")},
        supports_dilation=True,
        params_millions=2,
        description="MobileNetV2 (width 1.0, torchvision layout)",
    )]
