"""Weights for the SK-ResNe(X)ts: tag -> source -> download/cache -> module, remapping of
classifier files, and first-convolution adaptation."""

from __future__ import annotations

import torch

from segcore import testing

NAME = "timm-skresnet18"


state, weights_file = testing.weights_fixtures(NAME, filename="sk18.safetensors")


class TestWeights(testing.EncoderWeightsSuite):
    # timm's classification files carry the classifier, which the encoder drops; other
    # unexpected keys are refused
    encoder_name = NAME
    classifier = {"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)}
    unexpected_keys = {"head.fc.weight": torch.zeros(2)}
    first_conv_keys = "conv1.weight"
    out_channels = (3, 64, 64, 128, 256, 512)
