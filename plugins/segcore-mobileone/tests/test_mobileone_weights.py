"""Loading weights into the MobileOne encoders: tag -> source -> cache -> module, stem convs."""

from __future__ import annotations

import torch
from segcore_mobileone import reparameterize_model

import segcore
from segcore import testing

NAME = "mobileone_s0"
TAG = "imagenet"
# the stem's two branches that see the input: both are adapted to the input channels
STEM_KERNELS = ("stage0.rbr_conv.0.conv.weight", "stage0.rbr_scale.conv.weight")


# a classification file: the encoder's weights and the classifier (``linear.*``)
CLASSIFIER = {"linear.weight": torch.randn(1000, 1024), "linear.bias": torch.randn(1000)}
state, weights_file = testing.weights_fixtures(NAME, extra=CLASSIFIER,
                                               filename="model.safetensors")


class TestWeights(testing.EncoderWeightsSuite):
    # both stem kernels are adapted: for 1 and 4 channels, and in the download's second build
    encoder_name = NAME
    first_conv_keys = STEM_KERNELS
    classifier = CLASSIFIER  # loaded from a file with it; remap_state_dict drops only it
    classifier_filename = "model.safetensors"
    out_channels = (3, 48, 48, 128, 256, 1024)
    tag = TAG
    preprocessing = {"mean": [0.485, 0.456, 0.406]}


def test_pretrained_one_channel_encoder_fuses_with_the_same_features(weights_file) -> None:
    encoder = segcore.get_encoder(NAME, in_channels=1, weights=weights_file, depth=3).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        expected = encoder(x)
        actual = reparameterize_model(encoder)(x)
    for a, b in zip(actual, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * (float(b.abs().max()) + 1))
