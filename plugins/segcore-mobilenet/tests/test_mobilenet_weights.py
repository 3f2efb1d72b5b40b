"""Loading weights into the MobileNetV2 encoder: local files, classifier files, first-conv
adaptation, the tag -> source -> download -> cache chain."""

from __future__ import annotations

import torch

from segcore import testing

NAME = "mobilenet_v2"
FIRST_CONV = "features.0.0.weight"


state, weights_file = testing.weights_fixtures(NAME)


class TestWeights(testing.EncoderWeightsSuite):
    """The file loads exactly, with torchvision's classifier too; the first conv adapts, the
    tag downloads; a bad digest fails."""

    encoder_name = NAME
    classifier = {"classifier.1.weight": torch.randn(10, 1280),
                  "classifier.1.bias": torch.randn(10)}
    first_conv_keys = FIRST_CONV
    out_channels = (3, 16, 24, 32, 96, 1280)
    download_in_channels = (1, 3)
    preprocessing = {"mean": [0.485, 0.456, 0.406]}
