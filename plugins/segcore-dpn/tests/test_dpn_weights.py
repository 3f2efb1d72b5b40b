"""Loading weights into the DPN encoders: tag -> source -> cache -> module, first conv."""

from __future__ import annotations

import attrs
import pytest
import torch

import segcore
from segcore import testing
from segcore.errors import EncoderCapabilityError
from segcore.factory import get_encoder_spec

NAME = "dpn68b"
TAG = "imagenet+5k"
FIRST_CONV = "features.conv1_1.conv.weight"


# a file as SMP's hub publishes it: with the classifier, which the encoder drops
CLASSIFIER = {"last_linear.weight": torch.randn(1000, 832, 1, 1),
              "last_linear.bias": torch.randn(1000)}
state, weights_file = testing.weights_fixtures(NAME, extra=CLASSIFIER,
                                               filename="model.safetensors")


class TestWeights(testing.EncoderWeightsSuite):
    encoder_name = NAME
    classifier = CLASSIFIER  # loaded from a file with it; remap_state_dict drops only it
    classifier_filename = "model.safetensors"
    first_conv_keys = FIRST_CONV
    out_channels = (3, 10, 144, 320, 704, 832)
    tag = TAG
    preprocessing = {"mean": [124 / 255, 117 / 255, 104 / 255]}


def test_encoder_without_dilation_support_is_refused_with_a_capability_error() -> None:
    # Every DPN supports dilation; the refusal path is the core's, keyed on the spec flag.
    spec = attrs.evolve(get_encoder_spec(NAME), name="dpn68b-no-dilation",
                        supports_dilation=False)
    with testing.specs_installed(encoders=[spec]), pytest.raises(EncoderCapabilityError):
        segcore.get_encoder("dpn68b-no-dilation", output_stride=16)
