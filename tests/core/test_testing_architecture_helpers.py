"""The architecture-test helpers of ``segcore.testing`` and the decoder helpers of
``segcore.nn``: they pass on a conforming model and fail, naming the problem, otherwise."""

from __future__ import annotations

import attrs
import pytest
import torch
from torch import nn

from segcore import nn as segnn
from segcore import testing
from segcore.errors import InvalidOptionError
from segcore.model import SegmentationModel
from segcore.options import ArchitectureOptions
from segcore.specs import ArchitectureSpec


@attrs.frozen
class ShallowProbeOptions(ArchitectureOptions):
    """No decoder options."""


class ShallowProbe(SegmentationModel):
    """Reads the deepest features; needs 3 encoder stages; masks of the input's size."""

    architecture = "shallowprobe"
    options_class = ShallowProbeOptions
    min_encoder_depth = 3

    def __init__(self, encoder_name: str = "resnet34", encoder_depth: int = 5,
                 encoder_weights: str | None = "imagenet", in_channels: int = 3,
                 classes: int = 1, activation=None, aux_params=None, *,
                 decoder_scale: float = 1.0, **kwargs) -> None:
        super().__init__(encoder_name=encoder_name, encoder_depth=encoder_depth,
                         encoder_weights=encoder_weights, in_channels=in_channels,
                         classes=classes, activation=activation, aux_params=aux_params,
                         encoder_params=kwargs)

    def build_decoder(self, encoder_channels, options):
        return _Deepest(encoder_channels[-1])

    def segmentation_head_options(self, options):
        return {"in_channels": 4, "kernel_size": 1, "upsampling": self.encoder.output_stride}


class _Deepest(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 1)

    def forward(self, features):
        return self.conv(features[-1])


SPEC = ArchitectureSpec(name="shallowprobe", model=ShallowProbe, description="test model")
POSITIONAL = ["encoder_name", "encoder_depth", "encoder_weights", "in_channels", "classes",
              "activation", "aux_params"]


@pytest.fixture
def installed(core_only):
    with testing.specs_installed(encoders=[testing.TINY_ENCODER_SPEC], architectures=[SPEC]):
        yield


def test_documented_signature_passes_and_names_what_differs():
    testing.check_documented_signature(ShallowProbe, POSITIONAL,
                                       {"encoder_depth": 5, "decoder_scale": 1.0},
                                       keyword_only=["decoder_scale"])
    wrong = [
        ({"encoder_depth": 5, "decoder_scale": 1}, ["decoder_scale"], "differ"),  # 1 is not 1.0
        ({"encoder_depth": 4, "decoder_scale": 1.0}, ["decoder_scale"], "encoder_depth"),
        ({"encoder_depth": 5}, ["decoder_scale"], "defaults to check"),
        ({"encoder_depth": 5, "decoder_scale": 1.0}, [], "parameters are"),
    ]
    for defaults, keyword_only, words in wrong:
        with pytest.raises(AssertionError, match=words):
            testing.check_documented_signature(ShallowProbe, POSITIONAL, defaults,
                                               keyword_only=keyword_only)
    with pytest.raises(AssertionError, match="not of the documented kind"):
        testing.check_documented_signature(
            ShallowProbe, [*POSITIONAL, "decoder_scale"], {"encoder_depth": 5,
                                                           "decoder_scale": 1.0})


def test_encoder_depth_refused(installed):
    for depth in (2, 0, 6):
        testing.check_encoder_depth_refused("shallowprobe", depth)
    with pytest.raises(AssertionError, match="needs at least 4"):
        testing.check_encoder_depth_refused("shallowprobe", 2, minimum=4)
    with pytest.raises(AssertionError, match="is a valid depth"):
        testing.check_encoder_depth_refused("shallowprobe", 4)


def test_input_divisor(installed):
    model = ShallowProbe(testing.TINY_ENCODER, encoder_weights=None)
    testing.check_input_divisor(model, 32, (70, 61))
    assert model.pad_inputs
    with pytest.raises(AssertionError, match="input_divisor"):
        testing.check_input_divisor(model, 16, (70, 61))
    shallow = ShallowProbe(testing.TINY_ENCODER, encoder_depth=3, encoder_weights=None)
    testing.check_input_divisor(shallow, 8, (41, 56))


def test_reference_scse_matches_the_module():
    attention = testing.randomise_weights(segnn.Attention("scse", in_channels=20))
    x = torch.randn(2, 20, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(testing.reference_scse(x, attention.attention), attention(x))
    assert testing.reference_scse(x, nn.Identity()) is x


def test_skip_decoder_block_channels():
    assert segnn.skip_decoder_block_channels((3, 8, 16), (12, 6)) == [(16, 8, 12), (12, 0, 6)]
    assert segnn.skip_decoder_block_channels((3, 8, 16, 24), (32, 16, 8)) == [
        (24, 16, 32), (32, 8, 16), (16, 0, 8)]
    with pytest.raises(InvalidOptionError, match="decoder_channels has 2 values but the "
                                                 "encoder returns 3 stages"):
        segnn.skip_decoder_block_channels((3, 8, 16, 24), (32, 16))
    assert segnn.check_decoder_channels_per_stage((3, 8, 16, 24), (1, 2, 3)) == 3


def test_pyramid_decoder_inputs():
    segnn.check_pyramid_decoder_inputs("FPN", (3, 8, 16, 24), 3)
    with pytest.raises(InvalidOptionError,
                       match=r"^the FPN decoder needs encoder_depth >= 3 \(four levels\), got 2$"):
        segnn.check_pyramid_decoder_inputs("FPN", (3, 8, 16), 2, reason="four levels")
    with pytest.raises(InvalidOptionError, match=r"^the PAN decoder needs encoder_depth >= 3, "):
        segnn.check_pyramid_decoder_inputs("PAN", (3, 8), 1)
    with pytest.raises(InvalidOptionError, match=r"encoder_depth \+ 1 = 4 values, got 3"):
        segnn.check_pyramid_decoder_inputs("PAN", (3, 8, 16), 3)


def test_double_conv_relu_layout():
    block = segnn.DoubleConv2dReLU(4, 6, use_norm=False)
    assert [(layer[0].in_channels, layer[0].out_channels) for layer in block] == [(4, 6), (6, 6)]
    assert list(block.state_dict()) == ["0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias"]
    assert block(torch.randn(1, 4, 5, 5)).shape == (1, 6, 5, 5)
