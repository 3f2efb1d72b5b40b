"""Hook implementations of segcore-mobilenet: the spec of the MobileNetV2 encoder.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_mobilenet.encoder:build_encoder"`` and imported only when it is built.
(The ``timm-mobilenetv3_*`` names are provided elsewhere.)
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, Preprocessing, WeightSource

FACTORY = "segcore_mobilenet.encoder:build_encoder"
HUB_URL = "https://huggingface.co/smp-hub/{name}.{tag}/resolve/{revision}/model.safetensors"

#: torchvision's MobileNetV2 weights take RGB input in [0, 1], normalised with ImageNet statistics.
IMAGENET_PREPROCESSING = Preprocessing(
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_space="RGB",
    input_range=(0.0, 1.0),
)

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
        weights={"imagenet": WeightSource(
            url=HUB_URL.format(name=name, tag="imagenet", revision=IMAGENET_REVISION),
            filename=f"{name}.imagenet.safetensors",
            preprocessing=IMAGENET_PREPROCESSING,
            description="ImageNet-1k (torchvision)",
        )},
        supports_dilation=True,
        params_millions=2,
        description="MobileNetV2 (width 1.0, torchvision layout)",
    )]
