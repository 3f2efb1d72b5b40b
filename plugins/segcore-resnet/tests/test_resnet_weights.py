"""Loading weights into the ResNet encoders: local files, first-conv adaptation, downloads."""

from __future__ import annotations

import torch

from segcore import testing

FIRST_CONV = "conv1.weight"


state, weights_file = testing.weights_fixtures("resnet18")


class TestWeights(testing.EncoderWeightsSuite):
    # One channel: the sum of the RGB kernels. Four: R, G, B, R scaled by 3/4, so that an
    # input whose 4th channel repeats the 1st gives 3/4 * (original + channel-0 response).
    encoder_name = "resnet18"
    classifier = {"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)}
    first_conv_keys = FIRST_CONV
    out_channels = (3, 64, 64, 128, 256, 512)
    conv_reference = {"stride": 2, "padding": 3}
    adapted_size = 64
    tag = "sswl"
    requested = ("swsl", "sswl")  # "swsl" is SMP's spelling of the tag "sswl"
