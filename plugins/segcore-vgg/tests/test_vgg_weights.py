"""Loading weights into the VGG encoders: local files, classifier files, first-conv adaptation,
the tag -> source -> download -> cache chain."""

from __future__ import annotations

import torch

from segcore import testing

NAME = "vgg11_bn"  # has every kind of tensor (conv weight and bias, BN statistics)
FIRST_CONV = "features.0.weight"


state, weights_file = testing.weights_fixtures(NAME)


class TestWeights(testing.EncoderWeightsSuite):
    """The file loads exactly, with torchvision's classifier too; the first conv adapts, the
    tag downloads; a bad digest fails."""

    encoder_name = NAME
    first_conv_keys = FIRST_CONV
    classifier = {"classifier.0.weight": torch.randn(8, 4), "classifier.0.bias": torch.randn(8),
                  "classifier.6.weight": torch.randn(10, 8), "classifier.6.bias": torch.randn(10)}
    out_channels = (3, 128, 256, 512, 512, 512)
    download_in_channels = (1, 3)
    preprocessing = {"mean": [0.485, 0.456, 0.406]}
