"""DeepLabV3 / DeepLabV3+ built through segcore with the conformance kit's tiny encoder.

The tiny encoder's features have channels (3, 8, 16, 24, 32, 40) and reductions 1..32; its
last two stages are dilated for output stride 16 and 8.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from segcore_deeplab import (
    DeepLabV3,
    DeepLabV3Options,
    DeepLabV3Plus,
    DeepLabV3PlusOptions,
)
from torch import nn

import segcore
from segcore import testing
from segcore.errors import InputShapeError
from segcore.model import from_config

TINY = testing.TINY_ENCODER
SMALL = {"decoder_channels": 16}  # fast models; the decoder's width does not change the shapes


tiny_encoder = testing.tiny_encoder_fixture()


def _model(architecture: str, **options) -> nn.Module:
    torch.manual_seed(0)
    return segcore.build(architecture, encoder=TINY, **{**SMALL, **options}).eval()


# -- the plugin -------------------------------------------------------------------------------
def test_plugin_registers_both_architectures():
    assert {"deeplabv3", "deeplabv3plus"} <= set(segcore.list_architectures())
    assert segcore.DeepLabV3 is DeepLabV3
    assert segcore.DeepLabV3Plus is DeepLabV3Plus
    from segcore.registry import get_registry

    for name, class_name in (("deeplabv3", "DeepLabV3"), ("deeplabv3plus", "DeepLabV3Plus")):
        spec = get_registry().get("architectures", name)
        assert spec.class_name == class_name
        assert segcore.get_architecture_class(name).requires_dilation


def test_loading_the_plugin_imports_no_model_code():
    code = (
        "import sys, segcore_deeplab.plugin as p; p.segcore_architectures(); "
        "print(sorted(m for m in ('torch', 'segcore_deeplab.model', 'segcore_deeplab.decoder', "
        "'segcore_deeplab.options') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_documented_defaults():
    v3 = DeepLabV3(TINY, encoder_weights=None)
    assert v3.options == DeepLabV3Options(
        decoder_channels=256, decoder_atrous_rates=(12, 24, 36), decoder_aspp_dropout=0.5,
        encoder_output_stride=8, decoder_aspp_separable=False, upsampling=None,
    )
    assert v3.encoder.output_stride == 8
    assert v3.segmentation_head[1].scale_factor == 8  # the documented default upsampling
    assert v3.segmentation_head[0].kernel_size == (1, 1)
    assert v3.segmentation_head[0].out_channels == 1
    assert v3.classification_head is None

    plus = DeepLabV3Plus(TINY, encoder_weights=None)
    assert plus.options == DeepLabV3PlusOptions(
        decoder_channels=256, decoder_atrous_rates=(12, 24, 36), decoder_aspp_dropout=0.5,
        encoder_output_stride=16, decoder_aspp_separable=True, upsampling=4,
    )
    assert plus.encoder.output_stride == 16
    assert plus.segmentation_head[1].scale_factor == 4
    assert plus.segmentation_head[0].kernel_size == (1, 1)


def test_documented_positional_order():
    # DeepLabV3(encoder_name, encoder_depth, encoder_weights, decoder_channels, in_channels,
    #           classes, activation, upsampling, aux_params)
    v3 = DeepLabV3(TINY, 4, None, 24, 2, 3, "sigmoid", 2, {"classes": 5})
    assert v3.config["encoder_depth"] == 4
    assert v3.options.decoder_channels == 24 and v3.options.upsampling == 2
    assert v3.config["in_channels"] == 2 and v3.config["classes"] == 3
    assert v3.classification_head[3].out_features == 5
    # DeepLabV3Plus(encoder_name, encoder_depth, encoder_weights, encoder_output_stride,
    #               decoder_channels, decoder_atrous_rates, in_channels, classes, ...)
    plus = DeepLabV3Plus(TINY, 5, None, 8, 24, (1, 2, 3), 2, 3)
    assert plus.options.encoder_output_stride == 8
    assert plus.options.decoder_atrous_rates == (1, 2, 3)
    assert plus.config["in_channels"] == 2 and plus.config["classes"] == 3


def test_constructor_default_weights_is_imagenet():
    import inspect

    for cls in (DeepLabV3, DeepLabV3Plus):
        assert inspect.signature(cls).parameters["encoder_weights"].default == "imagenet"


# -- conformance kit --------------------------------------------------------------------------
@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
def test_conformance(architecture):
    testing.check_architecture(architecture, encoder=TINY, classes=(1, 4), in_channels=(1, 3),
                               **SMALL)


@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
def test_conformance_other_output_stride(architecture):
    other = {"deeplabv3": 16, "deeplabv3plus": 8}[architecture]
    testing.check_architecture(architecture, encoder=TINY, depths=(4, 5), classes=(2,),
                               in_channels=(3,), encoder_output_stride=other, **SMALL)


# -- output stride ----------------------------------------------------------------------------
@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
@pytest.mark.parametrize(("depth", "output_stride", "last_size"), [
    (5, 8, 8), (5, 16, 4), (4, 8, 8), (4, 16, 4), (3, 8, 8), (3, 16, 8),
])
def test_deepest_features_stay_at_the_output_stride(architecture, depth, output_stride,
                                                    last_size):
    # 64 / min(output_stride, 2 ** depth): the dilated stages keep the resolution.
    model = _model(architecture, encoder_depth=depth, encoder_output_stride=output_stride)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.encoder(x)
        mask = model(x)
    assert len(features) == depth + 1
    assert tuple(features[-1].shape) == (2, (3, 8, 16, 24, 32, 40)[depth], last_size, last_size)
    assert model.encoder.output_stride == 64 // last_size
    assert tuple(mask.shape) == (2, 1, 64, 64)


@pytest.mark.parametrize(("depth", "output_stride", "upsampling"), [
    (5, 8, 8), (5, 16, 16), (4, 8, 8), (4, 16, 16), (3, 8, 8), (3, 16, 8),
])
def test_deeplabv3_default_upsampling_restores_the_input_size(depth, output_stride,
                                                              upsampling):
    model = _model("deeplabv3", encoder_depth=depth, encoder_output_stride=output_stride)
    assert model.segmentation_head[1].scale_factor == upsampling
    assert model.config["upsampling"] is None  # stays "automatic" in config.json
    with torch.no_grad():
        decoded = model.decoder(model.encoder(torch.randn(2, 3, 64, 64)))
    assert tuple(decoded.shape) == (2, 16, 64 // upsampling, 64 // upsampling)


@pytest.mark.parametrize(("depth", "output_stride", "factor"), [
    (5, 16, 4), (4, 16, 4), (3, 16, 2), (5, 8, 2), (4, 8, 2), (3, 8, 2),
])
def test_deeplabv3plus_decoder_works_at_a_quarter_of_the_input(depth, output_stride, factor):
    model = _model("deeplabv3plus", encoder_depth=depth, encoder_output_stride=output_stride)
    assert model.decoder.up.scale_factor == factor
    with torch.no_grad():
        decoded = model.decoder(model.encoder(torch.randn(2, 3, 64, 96)))
    assert tuple(decoded.shape) == (2, 16, 16, 24)


# -- every option -----------------------------------------------------------------------------
@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
def test_decoder_channels(architecture):
    model = _model(architecture, decoder_channels=12)
    assert model.segmentation_head[0].in_channels == 12
    aspp = model.decoder.aspp if architecture == "deeplabv3" else model.decoder.aspp[0]
    assert aspp.convs[0][0].out_channels == 12       # 1x1 branch
    assert aspp.convs[4][1].out_channels == 12       # image pooling branch
    assert aspp.project[0].in_channels == 5 * 12


@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
@pytest.mark.parametrize("separable", [False, True])
def test_atrous_rates_and_separable_convolutions(architecture, separable):
    model = _model(architecture, decoder_atrous_rates=[2, 3, 5], decoder_aspp_separable=separable)
    assert model.options.decoder_atrous_rates == (2, 3, 5)
    aspp = model.decoder.aspp if architecture == "deeplabv3" else model.decoder.aspp[0]
    for branch, rate in zip(aspp.convs[1:4], (2, 3, 5)):
        if separable:
            depthwise, pointwise = branch[0]
            assert depthwise.groups == depthwise.in_channels == 40
            assert pointwise.kernel_size == (1, 1)
            atrous = depthwise
        else:
            atrous = branch[0]
            assert isinstance(atrous, nn.Conv2d) and atrous.groups == 1
        assert atrous.kernel_size == (3, 3)
        assert atrous.dilation == (rate, rate) and atrous.padding == (rate, rate)


def test_separable_aspp_has_fewer_parameters_as_computed_by_hand():
    def aspp_parameters(model):
        aspp = model.decoder.aspp
        return sum(p.numel() for p in aspp.convs[1:4].parameters())

    c_in, c = 40, 16
    plain = _model("deeplabv3", decoder_aspp_separable=False)
    separable = _model("deeplabv3", decoder_aspp_separable=True)
    # three branches: 3x3 conv (no bias) + BatchNorm, or depthwise 3x3 + pointwise 1x1 + BN
    assert aspp_parameters(plain) == 3 * (9 * c_in * c + 2 * c)
    assert aspp_parameters(separable) == 3 * (9 * c_in + c_in * c + 2 * c)


def test_deeplabv3_decoder_parameter_count_by_hand():
    c_in, c = 40, 16
    model = _model("deeplabv3")
    expected = (
        (c_in * c + 2 * c)              # 1x1 branch
        + 3 * (9 * c_in * c + 2 * c)    # atrous branches
        + (c_in * c + 2 * c)            # image pooling branch
        + (5 * c * c + 2 * c)           # projection
        + (9 * c * c + 2 * c)           # conv + bn
    )
    assert sum(p.numel() for p in model.decoder.parameters()) == expected


def test_deeplabv3plus_decoder_parameter_count_by_hand():
    c_in, c, high_in, high = 40, 16, 16, 48
    model = _model("deeplabv3plus")
    aspp = (
        (c_in * c + 2 * c) + 3 * (9 * c_in + c_in * c + 2 * c) + (c_in * c + 2 * c)
        + (5 * c * c + 2 * c)
    )
    after_aspp = 9 * c + c * c + 2 * c                      # separable 3x3 + bn
    block1 = high_in * high + 2 * high                      # 1x1 on the 1/4 features + bn
    block2 = 9 * (high + c) + (high + c) * c + 2 * c        # separable 3x3 on the concat + bn
    assert sum(p.numel() for p in model.decoder.parameters()) == (
        aspp + after_aspp + block1 + block2
    )


@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
def test_aspp_dropout(architecture):
    x = torch.randn(2, 3, 64, 64)
    for dropout, same in ((0.0, True), (0.6, False)):
        model = _model(architecture, decoder_aspp_dropout=dropout).train()
        aspp = model.decoder.aspp if architecture == "deeplabv3" else model.decoder.aspp[0]
        assert aspp.project[3].p == dropout
        with torch.no_grad():
            first, second = model(x), model(x)
        assert torch.equal(first, second) is same
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
def test_explicit_upsampling(architecture):
    model = _model(architecture, encoder_output_stride=8, upsampling=2)
    with torch.no_grad():
        mask = model(torch.randn(2, 3, 64, 64))
    # DeepLabV3's decoder output is at 1/8, DeepLabV3+'s at 1/4
    expected = 16 if architecture == "deeplabv3" else 32
    assert tuple(mask.shape) == (2, 1, expected, expected)


@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
def test_encoder_depth_and_in_channels(architecture):
    model = _model(architecture, encoder_depth=3, in_channels=1, classes=2)
    with torch.no_grad():
        mask = model(torch.randn(2, 1, 64, 64))
    assert tuple(mask.shape) == (2, 2, 64, 64)
    assert model.encoder.out_channels == (1, 8, 16, 24)


# -- input sizes ------------------------------------------------------------------------------
@pytest.mark.parametrize(("architecture", "stride", "size", "nearest", "padded"), [
    ("deeplabv3", 8, (67, 59), "64x56", "72x64"),
    ("deeplabv3plus", 16, (70, 50), "64x48", "80x64"),
])
def test_sizes_not_divisible_are_padded_or_refused_on_request(architecture, stride, size,
                                                              nearest, padded):
    model = _model(architecture)
    assert model.encoder.output_stride == stride
    with torch.no_grad():  # padded to the next multiple and cropped back by default
        assert model(torch.randn(1, 3, *size)).shape == (1, 1, *size)
    model.pad_inputs = False  # SMP's strict behaviour
    with pytest.raises(InputShapeError, match=f"divisible by {stride}") as error:
        model(torch.randn(1, 3, *size))
    assert f"nearest valid size is {nearest}" in str(error.value)
    assert padded in str(error.value)


@pytest.mark.parametrize(("architecture", "size"), [
    ("deeplabv3", (72, 40)),       # multiples of 8, not of 16
    ("deeplabv3plus", (80, 48)),   # multiples of 16
])
def test_divisible_non_square_sizes_give_masks_of_the_input_size(architecture, size):
    model = _model(architecture)
    with torch.no_grad():
        mask = model(torch.randn(1, 3, *size))
    assert tuple(mask.shape[2:]) == size


@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
def test_batch_of_one_in_eval_mode(architecture):
    # The ASPP image-pooling branch has a BatchNorm on 1x1 maps: batch 1 works in eval mode.
    model = _model(architecture, classes=2)
    with torch.no_grad():
        single = model(torch.randn(1, 3, 64, 64))
    assert tuple(single.shape) == (1, 2, 64, 64)
    batch = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(batch[1:2]), model(batch)[1:2])


# -- saving -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("architecture", "options"), [
    ("deeplabv3", {"encoder_output_stride": 16, "decoder_atrous_rates": (1, 2, 4)}),
    ("deeplabv3plus", {"encoder_depth": 4, "decoder_aspp_separable": False,
                       "decoder_aspp_dropout": 0.1}),
])
def test_save_and_load_round_trip(tmp_path, architecture, options):
    model = _model(architecture, classes=2, **options)
    rebuilt = from_config(model.config)
    assert rebuilt.options == model.options
    testing.check_save_load(model, torch.randn(2, 3, 64, 64), tmp_path)


@pytest.mark.parametrize("architecture", ["deeplabv3", "deeplabv3plus"])
def test_decoder_and_heads_keep_pytorch_default_initialisation(architecture: str) -> None:
    """As SMP 0.6.0: no re-initialisation; PyTorch's default bound is 1/sqrt(fan_in)."""
    model = _model(architecture, decoder_channels=256, aux_params={"classes": 4})
    modules = [model.decoder, model.segmentation_head, model.classification_head]
    layers = [m for part in modules for m in part.modules()
              if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers
    for layer in layers:
        fan_in = layer.weight[0].numel()
        assert layer.weight.abs().max() <= fan_in**-0.5 + 1e-7, layer
    # The decoder's normalisations start as identities either way.
    norms = [m for m in model.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(bool((m.weight == 1).all()) for m in norms)
