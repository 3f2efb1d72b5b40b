"""Hook implementations only: describe the encoder, reference its code lazily."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, Preprocessing, WeightSource

#: Where the "demo" weights are published: a file on a shared disk, read through its file://
#: URL (an https:// URL works the same way), and the sha256 of that file. On first use segcore
#: copies the file into its cache (SEGCORE_CACHE/guide-cnn/guide-cnn-demo.safetensors) and
#: checks it against the digest. The package's tests publish a file of their own and point the
#: tag at it (tests/test_example_cnn.py).
DEMO_URL = "file:///srv/segcore-weights/guide-cnn-demo.safetensors"
DEMO_SHA256 = "365913b654eb9a7a1ddf8e93de75240e1901cd55084979912ef503392ce5a983"


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            name="guide-cnn",
            family="GuideCNN",
            factory="segcore_example_cnn.encoder:build_encoder",  # imported on first use
            params={"width": 16},  # passed to the factory
            out_channels=(3, 16, 32, 64, 128, 256),  # at depth 5, the input first
            weights={
                "demo": WeightSource(
                    url=DEMO_URL,
                    sha256=DEMO_SHA256,
                    # how images must be normalised for these weights
                    preprocessing=Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
                    description="demo weights of the plugin guide",
                ),
            },
            supports_dilation=True,  # get_stages() says what to dilate
            params_millions=1.18,
            description="a small VGG-like CNN: the encoder of the plugin guide",
        )
    ]
