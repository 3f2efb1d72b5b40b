"""The architecture-test helpers of ``segcore.testing`` and the decoder helpers of
``segcore.nn``: they pass on a conforming model and fail, naming the problem, otherwise."""

from __future__ import annotations

from types import SimpleNamespace

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


# -- helpers for an architecture's own tests: they fail on a model that breaks their rule -----
tiny_encoder = testing.tiny_encoder_fixture()


def test_tiny_encoder_fixture_installs_the_tiny_encoder():
    import segcore

    assert testing.TINY_ENCODER in segcore.list_encoders()


def test_check_sigmoid_outputs(installed):
    model = ShallowProbe(testing.TINY_ENCODER, encoder_weights=None, in_channels=2, classes=3,
                         activation="sigmoid", aux_params={"classes": 2})
    testing.check_sigmoid_outputs(model, 2, 3, aux_classes=2)
    with pytest.raises(AssertionError, match="mask shape"):
        testing.check_sigmoid_outputs(model, 2, 3, mask_size=(16, 16), aux_classes=2)
    with pytest.raises(AssertionError, match="labels shape"):
        testing.check_sigmoid_outputs(model, 2, 3, aux_classes=5)
    logits = ShallowProbe(testing.TINY_ENCODER, encoder_weights=None, classes=3)
    with torch.no_grad():
        logits.segmentation_head[0].bias.fill_(2.0)  # masks above 1 without the sigmoid
    with pytest.raises(AssertionError, match="no sigmoid"):
        testing.check_sigmoid_outputs(logits, 3, 3)


def _stub_model(decoder: nn.Module, decoder_use_norm: object) -> SimpleNamespace:
    """What the batch-norm checks read of a model: decoder, options and config."""
    return SimpleNamespace(decoder=decoder, options=SimpleNamespace(
        decoder_use_norm=decoder_use_norm), config={"decoder_use_norm": decoder_use_norm})


def test_check_decoder_batchnorm():
    normed = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))
    testing.check_decoder_batchnorm(_stub_model(normed, True), [normed[1]], [normed[0]])
    testing.check_decoder_batchnorm(_stub_model(normed, True), [normed[1]])  # every conv
    with pytest.raises(AssertionError, match="1 convolutions before a batch norm"):
        mixed = nn.Sequential(*normed, nn.Conv2d(4, 4, 1))
        testing.check_decoder_batchnorm(_stub_model(mixed, True), [normed[1]])
    with pytest.raises(AssertionError, match="have a bias"):
        biased = nn.Conv2d(3, 4, 3)
        testing.check_decoder_batchnorm(_stub_model(normed, True), [normed[1]], [biased])
    with pytest.raises(AssertionError, match=r"found \['Identity'\]"):
        testing.check_decoder_batchnorm(_stub_model(normed, True), [nn.Identity()], [normed[0]])
    with pytest.raises(AssertionError, match="expected True"):
        testing.check_decoder_batchnorm(_stub_model(normed, "batchnorm"), [normed[1]],
                                        [normed[0]])


def test_check_decoder_without_batchnorm():
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Identity())
    testing.check_decoder_without_batchnorm(_stub_model(plain, False), [plain[0]])
    testing.check_decoder_without_batchnorm(_stub_model(plain, False))  # every conv
    with pytest.raises(AssertionError, match="1 convolutions without a norm"):
        mixed = nn.Sequential(*plain, nn.Conv2d(4, 4, 1, bias=False))
        testing.check_decoder_without_batchnorm(_stub_model(mixed, False))
    with pytest.raises(AssertionError, match="still has batch norms"):
        normed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        testing.check_decoder_without_batchnorm(_stub_model(normed, False), [normed[0]])
    with pytest.raises(AssertionError, match="have no bias"):
        testing.check_decoder_without_batchnorm(_stub_model(plain, False),
                                                [nn.Conv2d(3, 4, 3, bias=False)])
    with pytest.raises(AssertionError, match="store decoder_use_norm"):
        testing.check_decoder_without_batchnorm(_stub_model(plain, True), [plain[0]])


def test_check_unused_parameters_frozen(installed):
    model = ShallowProbe(testing.TINY_ENCODER, encoder_weights=None)
    model.decoder.unused = nn.Conv2d(4, 4, 1).requires_grad_(False)
    x = torch.randn(2, 3, 32, 32)
    testing.check_unused_parameters_frozen(model, model.decoder.unused, x)
    model.zero_grad(set_to_none=True)
    model.decoder.unused.requires_grad_(True)
    with pytest.raises(AssertionError, match="unused module are trainable"):
        testing.check_unused_parameters_frozen(model, model.decoder.unused, x)
    model.zero_grad(set_to_none=True)
    model.decoder.unused.requires_grad_(False)
    model.decoder.stray = nn.Conv2d(4, 4, 1)  # trainable, never applied
    with pytest.raises(AssertionError, match=r"\['stray.weight', 'stray.bias'\] received no"):
        testing.check_unused_parameters_frozen(model, model.decoder.unused, x)


def test_check_save_load_checks_the_config_entries(installed, tmp_path):
    model = ShallowProbe(testing.TINY_ENCODER, encoder_weights=None, classes=2)
    x = torch.randn(1, 3, 32, 32)
    testing.check_save_load(model, x, tmp_path / "a", config={"_architecture": "shallowprobe",
                                                             "classes": 2})
    with pytest.raises(AssertionError, match=r"config.json has \{'classes': 2\}"):
        testing.check_save_load(model, x, tmp_path / "b", config={"classes": 3})


class DeepLabProbe(ShallowProbe):
    """Dilates its encoder to output stride 16, as DeepLabV3+ does by default."""

    architecture = "deeplabv3plus"

    def encoder_output_stride(self, options):
        return 16


def test_check_undilated_encoder_in_deeplabv3plus(core_only):
    probe = ArchitectureSpec(name="deeplabv3plus", model=DeepLabProbe)
    undilated = testing.tiny_encoder_spec("undilated-tiny", supports_dilation=False)
    dilated = testing.tiny_encoder_spec("dilated-tiny", supports_dilation=True)
    with testing.specs_installed(encoders=[undilated, dilated], architectures=[probe]):
        model = testing.check_undilated_encoder_in_deeplabv3plus("undilated-tiny")
        assert model.encoder.depth == 4
        with pytest.raises(AssertionError, match="no EncoderCapabilityError raised"):
            testing.check_undilated_encoder_in_deeplabv3plus("dilated-tiny")


@attrs.frozen
class ScaleOptions(ArchitectureOptions):
    """One decoder option."""

    decoder_scale: float = 1.0


def test_check_stored_options():
    model = SimpleNamespace(options=ScaleOptions(), config={
        "architecture": "probe", "classes": 2, "decoder_scale": 1.0})
    testing.check_stored_options(model, "probe", ScaleOptions, {"classes": 2})
    testing.check_stored_options(model, "probe", ScaleOptions,
                                 {"classes": 2, "decoder_scale": 1.0}, every_option=True)
    wrong = [
        (("probe", ShallowProbeOptions, {}), {}, "expected ShallowProbeOptions"),
        (("other", ScaleOptions, {}), {}, "expected 'other'"),
        (("probe", ScaleOptions, {"classes": 2.0}), {}, r"stores \{'classes': 2\}"),
        (("probe", ScaleOptions, {"classes": 2}), {"every_option": True},
         r"\['decoder_scale'\] are not in config"),
    ]
    for arguments, keywords, message in wrong:
        with pytest.raises(AssertionError, match=message):
            testing.check_stored_options(model, *arguments, **keywords)
