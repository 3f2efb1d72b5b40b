"""PAN: shapes, module tree, decoder math, the effect of each option, errors (tiny encoder).

PAN's attention block pools the deepest features three times, so they must be at least 8x8:
with the default ``encoder_output_stride=16`` inputs are 128x128 here (64x64 at depth 3).
"""

from __future__ import annotations

import inspect
import warnings

import pytest
import segcore_pan
import torch
import torch.nn.functional as F
from segcore_pan import PAN, PANOptions
from segcore_pan.decoder import ConvBnRelu, FPABlock, GAUBlock, PANDecoder
from torch import nn

import segcore
from segcore import testing
from segcore.errors import (
    EncoderCapabilityError,
    InputShapeError,
    InvalidOptionError,
)

TINY = testing.TINY_ENCODER
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)  # the test encoder's out_channels at depth 5
SIZE = 128  # the smallest input of the default PAN (deepest features 8x8 at stride 16)


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_pan(**kwargs) -> PAN:
    torch.manual_seed(0)
    return PAN(TINY, encoder_weights=None, **kwargs)


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    testing.check_architecture("pan", TINY, size=SIZE)


@pytest.mark.parametrize(
    ("options", "size"),
    [
        ({"encoder_output_stride": 32}, 256),
        ({"decoder_channels": 16}, SIZE),
        ({"decoder_interpolation": "nearest"}, SIZE),
        ({"decoder_interpolation": "bicubic", "decoder_channels": 8}, SIZE),
    ],
    ids=["stride-32", "channels-16", "nearest", "bicubic-8"],
)
def test_conformance_kit_with_options(options, size):
    testing.check_architecture("pan", TINY, depths=(3, 5), classes=(2,), in_channels=(3,),
                               size=size, **options)


@pytest.mark.parametrize(("depth", "in_channels", "classes", "size"),
                         [(3, 1, 5, 64), (4, 4, 1, 128), (5, 3, 2, 128)])
def test_decoder_output_is_at_a_quarter_of_the_input_at_every_depth(depth, in_channels,
                                                                    classes, size):
    model = tiny_pan(encoder_depth=depth, in_channels=in_channels, classes=classes).eval()
    x = torch.randn(1, in_channels, size, size + 32)
    with torch.no_grad():
        decoded = model.decoder(model.encoder(x))
        mask = model(x)
    assert decoded.shape == (1, 32, size // 4, (size + 32) // 4)
    assert mask.shape == (1, classes, size, size + 32)


def test_aux_head_reads_the_deepest_features_at_depth_4():
    # the conformance kit checks the aux head at the default depth (5)
    model = tiny_pan(encoder_depth=4, aux_params={"classes": 2})
    assert model.classification_head[3].in_features == TINY_CHANNELS[4]


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_in_channels(in_channels):
    model = tiny_pan(in_channels=in_channels).eval()
    assert model.encoder.stages[0][0].in_channels == in_channels
    with torch.no_grad():
        assert model(torch.randn(1, in_channels, SIZE, SIZE)).shape == (1, 1, SIZE, SIZE)
    with pytest.raises(InputShapeError, match=f"in_channels={in_channels}"):
        model(torch.randn(1, in_channels + 1, SIZE, SIZE))


# -- module tree ---------------------------------------------------------------------------
def _conv_bn_keys(prefix: str) -> list[str]:
    return [f"{prefix}.conv.weight", f"{prefix}.conv.bias", f"{prefix}.bn.weight",
            f"{prefix}.bn.bias", f"{prefix}.bn.running_mean", f"{prefix}.bn.running_var",
            f"{prefix}.bn.num_batches_tracked"]


def _expected_decoder_keys(levels: tuple[int, ...]) -> list[str]:
    keys = []
    for prefix in ("fpa.branch1.1", "fpa.mid.0", "fpa.down1.1", "fpa.down2.1", "fpa.down3.1",
                   "fpa.down3.2", "fpa.conv2", "fpa.conv1"):
        keys += _conv_bn_keys(f"decoder.{prefix}")
    for level in levels:
        keys += _conv_bn_keys(f"decoder.gau{level}.conv1.1")
        keys += _conv_bn_keys(f"decoder.gau{level}.conv2")
    return keys


@pytest.mark.parametrize(("depth", "levels"), [(5, (3, 2, 1)), (4, (2, 1)), (3, (1,))])
def test_state_dict_keys_follow_smp_layout(depth, levels):
    model = tiny_pan(encoder_depth=depth, aux_params={"classes": 2})
    keys = [k for k in model.state_dict() if not k.startswith("encoder.")]
    assert keys == [*_expected_decoder_keys(levels), "segmentation_head.0.weight",
                    "segmentation_head.0.bias", "classification_head.3.weight",
                    "classification_head.3.bias"]


def test_module_tree_and_channels():
    model = tiny_pan(decoder_channels=24)
    decoder = model.decoder
    assert [name for name, _ in decoder.named_children()] == ["fpa", "gau3", "gau2", "gau1"]
    fpa = decoder.fpa
    assert isinstance(fpa, FPABlock)
    assert [name for name, _ in fpa.named_children()] == [
        "branch1", "mid", "down1", "down2", "down3", "conv2", "conv1"]
    assert [type(m) for m in fpa.branch1] == [nn.AdaptiveAvgPool2d, ConvBnRelu]
    assert [type(m) for m in fpa.down1] == [nn.MaxPool2d, ConvBnRelu]
    assert [type(m) for m in fpa.down3] == [nn.MaxPool2d, ConvBnRelu, ConvBnRelu]

    def shape(block):
        conv = block.conv
        return conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.padding[0]

    assert shape(fpa.branch1[1]) == (40, 24, 1, 0)
    assert shape(fpa.mid[0]) == (40, 24, 1, 0)
    assert shape(fpa.down1[1]) == (40, 1, 7, 3)
    assert shape(fpa.down2[1]) == (1, 1, 5, 2)
    assert shape(fpa.down3[1]) == shape(fpa.down3[2]) == (1, 1, 3, 1)
    assert shape(fpa.conv2) == (1, 1, 5, 2)
    assert shape(fpa.conv1) == (1, 1, 7, 3)
    for level, skip_channels in ((3, 32), (2, 24), (1, 16)):
        gau = decoder.get_submodule(f"gau{level}")
        assert isinstance(gau, GAUBlock)
        assert [name for name, _ in gau.named_children()] == ["conv1", "conv2"]
        assert [type(m) for m in gau.conv1] == [nn.AdaptiveAvgPool2d, ConvBnRelu, nn.Sigmoid]
        assert shape(gau.conv1[1]) == (24, 24, 1, 0)
        assert not gau.conv1[1].add_relu  # the attention weights are not rectified
        assert shape(gau.conv2) == (skip_channels, 24, 3, 1)
    block = decoder.gau1.conv2
    assert [name for name, _ in block.named_children()] == ["conv", "activation", "bn"]
    assert block.conv.bias is not None and isinstance(block.bn, nn.BatchNorm2d)
    head = model.segmentation_head
    assert (head[0].in_channels, head[0].kernel_size) == (24, (3, 3))
    assert isinstance(head[1], nn.Upsample) and head[1].scale_factor == 4


# -- decoder math against a hand-written reference ----------------------------------------
def _conv_bn(x, block, relu=True):
    conv, bn = block.conv, block.bn
    x = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)
    x = (x - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
    x = x * bn.weight[:, None, None] + bn.bias[:, None, None]
    return x.clamp(min=0) if relu else x


def _bilinear(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _reference_fpa(x, fpa):
    h, w = x.shape[-2:]
    context = _bilinear(_conv_bn(x.mean((2, 3), keepdim=True), fpa.branch1[1]), (h, w))
    projected = _conv_bn(x, fpa.mid[0])
    half = _conv_bn(F.max_pool2d(x, 2), fpa.down1[1])
    quarter = _conv_bn(F.max_pool2d(half, 2), fpa.down2[1])
    eighth = _conv_bn(_conv_bn(F.max_pool2d(quarter, 2), fpa.down3[1]), fpa.down3[2])
    pyramid = _bilinear(eighth, (h // 4, w // 4)) + _conv_bn(quarter, fpa.conv2)
    pyramid = _bilinear(pyramid, (h // 2, w // 2)) + _conv_bn(half, fpa.conv1)
    return _bilinear(pyramid, (h, w)) * projected + context


def _reference_gau(x, y, gau, mode):
    weights = torch.sigmoid(_conv_bn(y.mean((2, 3), keepdim=True), gau.conv1[1], relu=False))
    align = True if mode == "bilinear" else None
    upsampled = F.interpolate(y, size=x.shape[-2:], mode=mode, align_corners=align)
    return upsampled + _conv_bn(x, gau.conv2) * weights


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize(("depth", "deepest"), [(5, (9, 11)), (4, (8, 12)), (3, (10, 8))])
def test_decoder_matches_reference_formula(mode, depth, deepest):
    channels = TINY_CHANNELS[: depth + 1]
    decoder = PANDecoder(channels, depth, decoder_channels=12, interpolation_mode=mode).eval()
    testing.randomise_weights(decoder)
    # as a dilated encoder: at depth 5 the deepest two features share stride 16 (odd sizes on
    # purpose, the blocks resize to the exact size of each encoder feature)
    cap = min(16, 2**depth)
    strides = [min(2**level, cap) for level in range(depth + 1)]
    sizes = [(deepest[0] * cap // s, deepest[1] * cap // s) for s in strides]
    features = [torch.randn(2, c, *s) for c, s in zip(channels, sizes)]
    with torch.no_grad():
        actual = decoder(features)
        expected = _reference_fpa(features[-1], decoder.fpa)
        for level in range(depth - 2, 0, -1):
            expected = _reference_gau(features[level + 1], expected,
                                      decoder.get_submodule(f"gau{level}"), mode)
    assert actual.shape == (2, 12, *sizes[2])
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [(8, 8), (9, 13), (15, 10)])
def test_fpa_block_keeps_the_size_of_any_input_from_8_pixels(size):
    block = FPABlock(6, 4).eval()
    testing.randomise_weights(block)
    x = torch.randn(1, 6, *size)
    with torch.no_grad():
        out = block(x)
        torch.testing.assert_close(out, _reference_fpa(x, block), rtol=1e-4, atol=1e-5)
    assert out.shape == (1, 4, *size)
    with pytest.raises(RuntimeError):  # three 2x2 poolings of 7 pixels leave none
        block(torch.randn(1, 6, 7, 8))


# -- the effect of each option -------------------------------------------------------------
@pytest.mark.parametrize("upsampling", [1, 2, 4, 8])
def test_upsampling_changes_the_head_and_the_mask_size(upsampling):
    testing.check_head_upsampling(tiny_pan(upsampling=upsampling), upsampling,
                                  torch.randn(1, 3, SIZE, SIZE))


def test_upsampling_crops_padded_inputs_at_the_mask_scale():
    model = tiny_pan(upsampling=2).eval()
    with torch.no_grad():  # 130x140 is padded to 144x144; the mask is at half scale
        assert model(torch.randn(1, 3, 130, 140)).shape == (1, 1, 65, 70)


@pytest.mark.parametrize("channels", [1, 8, 48])
def test_decoder_channels_set_every_attention_block_and_the_head(channels):
    model = tiny_pan(decoder_channels=channels).eval()
    decoder = model.decoder
    assert decoder.out_channels == channels
    assert decoder.fpa.mid[0].conv.out_channels == channels
    assert decoder.fpa.branch1[1].conv.out_channels == channels
    assert {decoder.get_submodule(f"gau{k}").conv2.conv.out_channels for k in (1, 2, 3)} == {
        channels}
    assert {decoder.get_submodule(f"gau{k}").conv1[1].bn.num_features for k in (1, 2, 3)} == {
        channels}
    assert model.segmentation_head[0].in_channels == channels
    with torch.no_grad():
        assert model.decoder(model.encoder(torch.randn(1, 3, SIZE, SIZE))).shape[1] == channels


def test_encoder_output_stride_16_dilates_the_last_stage():
    dilated, plain = tiny_pan(), tiny_pan(encoder_output_stride=32)
    assert (dilated.encoder.output_stride, plain.encoder.output_stride) == (16, 32)
    assert (dilated.input_divisor(), plain.input_divisor()) == (16, 32)
    last_dilated, last_plain = dilated.encoder.stages[4][0], plain.encoder.stages[4][0]
    assert (last_dilated.stride, last_dilated.dilation) == ((1, 1), (2, 2))
    assert (last_plain.stride, last_plain.dilation) == ((2, 2), (1, 1))
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert dilated.encoder.eval()(x)[-1].shape[-2:] == (16, 16)
        assert plain.encoder.eval()(x)[-1].shape[-2:] == (8, 8)
        assert dilated.eval()(x).shape == plain.eval()(x).shape == (1, 1, 256, 256)
    assert dilated.config["encoder_output_stride"] == 16
    assert plain.config["encoder_output_stride"] == 32


def test_encoder_output_stride_32_needs_larger_inputs():
    model = tiny_pan(encoder_output_stride=32).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 256, 288)).shape == (1, 1, 256, 288)
    # 256x256 is the smallest multiple of 32 that runs; padding makes any side from 225 enough
    with pytest.raises(InputShapeError, match=r"smallest height and width .* 225x225"):
        model(torch.randn(1, 3, 128, 128))


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "nearest-exact"])
def test_each_interpolation_mode_is_used_by_the_upsample_blocks(mode):
    model = tiny_pan(decoder_interpolation=mode).eval()
    assert {model.decoder.get_submodule(f"gau{k}").interpolation_mode for k in (1, 2, 3)} == {
        mode}
    with torch.no_grad():
        assert model(torch.randn(1, 3, SIZE, SIZE)).shape == (1, 1, SIZE, SIZE)


def test_interpolation_mode_changes_the_upsample_blocks_only():
    bilinear = tiny_pan(decoder_interpolation="bilinear").eval()
    testing.randomise_weights(bilinear.decoder)
    nearest = tiny_pan(decoder_interpolation="nearest").eval()
    nearest.load_state_dict(bilinear.state_dict())
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        deepest = bilinear.encoder(x)[-1]
        torch.testing.assert_close(nearest.decoder.fpa(deepest), bilinear.decoder.fpa(deepest))
        assert not torch.allclose(nearest(x), bilinear(x))


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_encoder_depth_sets_the_attention_levels(depth):
    model = tiny_pan(encoder_depth=depth)
    decoder = model.decoder
    assert decoder.fpa.mid[0].conv.in_channels == TINY_CHANNELS[depth]
    levels = list(range(depth - 2, 0, -1))
    assert [name for name, _ in decoder.named_children()] == ["fpa"] + [
        f"gau{level}" for level in levels]
    assert [decoder.get_submodule(f"gau{level}").conv2.conv.in_channels for level in levels] == [
        TINY_CHANNELS[level + 1] for level in levels]
    assert model.encoder.output_stride == min(16, 2**depth)


def test_options_are_validated_and_stored_in_config():
    model = tiny_pan(encoder_output_stride=32, decoder_channels=8, decoder_interpolation="area",
                     upsampling=2, encoder_depth=4)
    testing.check_stored_options(model, "pan", PANOptions, {
        "encoder_depth": 4, "encoder_output_stride": 32, "decoder_channels": 8,
        "decoder_interpolation": "area", "upsampling": 2}, every_option=True)


def test_smp_upscale_mode_is_a_deprecated_alias_of_decoder_interpolation():
    with pytest.warns(DeprecationWarning, match="upscale_mode.*decoder_interpolation"):
        model = tiny_pan(upscale_mode="nearest")
    assert model.options.decoder_interpolation == "nearest"
    assert model.decoder.gau1.interpolation_mode == "nearest"
    assert "upscale_mode" not in model.config["encoder_params"]
    with warnings.catch_warnings():  # None (SMP's default) is no use of the old name
        warnings.simplefilter("error")
        assert tiny_pan(upscale_mode=None).options.decoder_interpolation == "bilinear"


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("pan")


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(("typo", "name"), [("decoder_chanels", "decoder_channels"),
                                            ("encoder_output_strid", "encoder_output_stride"),
                                            ("upsamplng", "upsampling")])
def test_unknown_options_are_refused_with_suggestions(typo, name):
    testing.check_unknown_options("pan", typo, name)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("encoder_output_stride", 8, r"encoder_output_stride must be 16 or 32, got 8"),
        ("encoder_output_stride", 16.0, r"encoder_output_stride must be 16 or 32, got 16.0"),
        ("encoder_output_stride", True, r"encoder_output_stride must be 16 or 32, got True"),
        ("encoder_output_stride", None, r"encoder_output_stride must be 16 or 32.*dilat"),
        ("decoder_channels", 0, r"decoder_channels must be a positive int, got 0"),
        ("decoder_channels", 32.0, r"decoder_channels must be a positive int"),
        ("decoder_channels", (32,), r"decoder_channels must be a positive int"),
        ("decoder_interpolation", "linear",
         r"decoder_interpolation must be one of 'nearest', 'bilinear', 'bicubic', 'area', "
         r"'nearest-exact', got 'linear'"),
        ("decoder_interpolation", None, r"decoder_interpolation must be one of"),
        ("upsampling", 0, r"upsampling must be a positive int"),
        ("upsampling", 2.5, r"upsampling must be a positive int"),
        ("upsampling", None, r"upsampling must be a positive int"),
    ],
)
def test_bad_option_values_name_the_valid_ones(option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_pan(**{option: value})


@pytest.mark.parametrize("depth", [2, 1, 6])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("pan", depth)


def test_decoder_refuses_a_depth_below_3_and_mismatched_channels():
    with pytest.raises(InvalidOptionError, match="encoder_depth >= 3"):
        PANDecoder((3, 8, 16), encoder_depth=2)
    with pytest.raises(InvalidOptionError, match="encoder_depth \\+ 1 = 6 values"):
        PANDecoder((3, 8, 16, 24), encoder_depth=5)


def test_encoder_without_dilation_needs_encoder_output_stride_32():
    spec = testing.tiny_encoder_spec("tiny-no-dilation")
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(EncoderCapabilityError,
                           match=r"cannot be dilated.*pass encoder_output_stride=32"):
            PAN("tiny-no-dilation", encoder_weights=None)
        model = PAN("tiny-no-dilation", encoder_weights=None, encoder_output_stride=32)
        assert model.encoder.output_stride == 32
        # at depth 4 the deepest features are at stride 16 without any dilation
        model = PAN("tiny-no-dilation", encoder_weights=None, encoder_depth=4)
        assert model.encoder.output_stride == 16


def test_inputs_below_the_smallest_size_are_refused_with_the_size_to_use():
    model = tiny_pan().eval()
    # the deepest features must be 8x8: 128x128 at stride 16; padding makes 113 enough
    with pytest.raises(InputShapeError, match=r"64x64 input is too small.*113x113.*pads to 128"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(InputShapeError, match=r"too small.*113x113"):
        model(torch.randn(1, 3, 256, 96))
    model = tiny_pan(encoder_depth=3).eval()
    with torch.no_grad():  # depth 3: the deepest features are at stride 8
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_a_size_that_pads_to_a_valid_one_still_works_after_a_too_small_input():
    model = tiny_pan().eval()
    with pytest.raises(InputShapeError):
        model(torch.randn(1, 3, 64, 64))
    with torch.no_grad():  # 120x117 is padded to 128x128, which goes through
        assert model(torch.randn(1, 3, 120, 117)).shape == (1, 1, 120, 117)


def test_other_sizes_are_padded_or_refused_on_request():
    testing.check_input_divisor(tiny_pan(), 16, (120, 130))


def test_a_batch_of_one_cannot_train_the_pooled_branches():
    model = tiny_pan().train()
    with pytest.raises(InputShapeError, match="at least 2 images per batch"):
        model(torch.randn(1, 3, SIZE, SIZE))


# -- public API ----------------------------------------------------------------------------
def test_segcore_pan_resolves_to_the_plugin_class():
    assert segcore.PAN is segcore_pan.PAN
    assert "pan" in segcore.list_architectures()
    assert isinstance(segcore.build("pan", encoder=TINY), PAN)
    assert segcore.build("pan", encoder=TINY, encoder_depth=3).encoder.depth == 3


def test_documented_signature():
    testing.check_documented_signature(
        PAN,
        ["encoder_name", "encoder_weights", "encoder_output_stride", "decoder_channels",
         "in_channels", "classes", "activation", "upsampling", "aux_params"],
        {"encoder_output_stride": 16, "decoder_channels": 32, "upsampling": 4,
         "encoder_depth": 5, "decoder_interpolation": "bilinear"},
        keyword_only=["encoder_depth", "decoder_interpolation"],  # newer than the documentation
        options_class=PANOptions,
    )


def test_positional_arguments_follow_the_documented_order():
    model = PAN(TINY, None, 32, 12, 2, 3, "sigmoid", 2, {"classes": 5}).eval()
    assert model.encoder.output_stride == 32
    assert model.decoder.out_channels == 12
    assert model.encoder.stages[0][0].in_channels == 2
    # upsampling 2: half the input size
    testing.check_sigmoid_outputs(model, 2, 3, size=(256, 256), mask_size=(128, 128),
                                  aux_classes=5)


def test_build_defaults_to_no_weights():
    testing.check_default_weights("pan")


def test_model_docstring_has_the_sections_the_docs_generator_reads():
    doc = inspect.getdoc(PAN)
    first, paragraph = doc.split("\n\n")[:2]
    assert "https://arxiv.org/abs/1805.10180" in first
    assert paragraph.replace("``", "").count(". ") + paragraph.endswith(".") == 3
    for section in ("Args:", "Shapes:", "Example::"):
        assert f"\n{section}\n" in doc
    documented = inspect.getdoc(PAN).split("Args:")[1].split("Shapes:")[0]
    for name in inspect.signature(PAN).parameters:
        assert f"\n    {'**' if name == 'kwargs' else ''}{name}: " in documented, name
    options_doc = inspect.getdoc(PANOptions).split("Attributes:")[1]
    for name in PANOptions.names():
        assert f"\n    {name}: " in options_doc, name


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
def _train_a_little(model: PAN) -> None:
    """A few steps so weights and normalisation statistics differ from their initial values."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        output = model(torch.randn(2, 3, SIZE, SIZE))
        mask = output[0] if isinstance(output, tuple) else output
        mask.pow(2).mean().backward()
        optimizer.step()


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_pan(classes=2, encoder_output_stride=32, decoder_channels=8,
                     decoder_interpolation="bicubic", upsampling=2, encoder_depth=4,
                     aux_params={"classes": 3, "dropout": 0.2})
    _train_a_little(model)
    saved = {"_architecture": "pan",  # segcore's key; SMP reads "_model_class"
             "encoder_output_stride": 32, "decoder_interpolation": "bicubic", "encoder_depth": 4}
    x = torch.randn(1, 3, SIZE, 144)
    loaded = testing.check_save_load(model, x, tmp_path / "pan", config=saved)
    assert [n for n, _ in loaded.decoder.named_children()] == ["fpa", "gau2", "gau1"]


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_gradients_reach_every_parameter(depth):
    model = tiny_pan(encoder_depth=depth, aux_params={"classes": 2}).train()
    size = 64 if depth == 3 else SIZE
    mask, labels = model(torch.randn(2, 3, size, size))
    (mask.mean() + labels.mean()).backward()
    unused = tuple(f"encoder.stages.{stage}." for stage in range(depth, 5))  # tiny encoder
    for name, parameter in model.named_parameters():
        if not name.startswith(unused):
            assert parameter.grad is not None, name


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_pan(aux_params={"classes": 3}, decoder_interpolation="nearest"),
                          torch.randn(1, 3, SIZE, 160))


def test_torch_export():
    testing.check_export(tiny_pan(classes=3, encoder_depth=4), torch.randn(1, 3, SIZE, SIZE))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("pan", "segcore_pan")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("depth", [3, 4, 5])
def test_decoder_compiles_with_torchscript(depth):
    from segcore_pan.decoder import PANDecoder

    channels = (3, 8, 16, 24, 32, 40)[: depth + 1]
    decoder = PANDecoder(channels, depth, decoder_channels=8, interpolation_mode="nearest").eval()
    scripted = torch.jit.script(decoder)
    cap = min(16, 2**depth)
    features = [torch.randn(1, c, 8 * cap // min(2**i, cap), 9 * cap // min(2**i, cap))
                for i, c in enumerate(channels)]
    with torch.no_grad():
        torch.testing.assert_close(scripted(features), decoder(features))
