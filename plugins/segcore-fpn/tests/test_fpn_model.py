"""FPN: shapes, module tree, decoder math, the effect of each option, errors (tiny encoder)."""

from __future__ import annotations

import pytest
import segcore_fpn
import torch
import torch.nn.functional as F
from segcore_fpn import FPN, FPNOptions
from segcore_fpn.decoder import FPNDecoder, MergeBlock
from torch import nn

import segcore
from segcore import testing
from segcore.errors import (
    EncoderCapabilityError,
    InvalidOptionError,
)

TINY = testing.TINY_ENCODER
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)  # the test encoder's out_channels at depth 5
SMALL = {"decoder_pyramid_channels": 16, "decoder_segmentation_channels": 32}


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_fpn(**kwargs) -> FPN:
    torch.manual_seed(0)
    return FPN(TINY, encoder_weights=None, **{**SMALL, **kwargs})


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    # The kit expects masks of the input size at every depth with the same options, but the
    # head upsamples by `upsampling` (4) whatever the depth, as in SMP: the masks have the
    # input size at encoder_depth=5 only. Depths 3 and 4 are checked below.
    testing.check_architecture("fpn", TINY, depths=(5,))


@pytest.mark.parametrize(
    "options",
    [
        {"decoder_merge_policy": "cat"},
        {"decoder_dropout": 0.0},
        {"decoder_interpolation": "bilinear"},
        {"decoder_pyramid_channels": 24, "decoder_segmentation_channels": 64},
    ],
    ids=["cat", "no-dropout", "bilinear", "channels"],
)
def test_conformance_kit_with_options(options):
    testing.check_architecture("fpn", TINY, depths=(5,), classes=(2,), in_channels=(3,),
                               **options)


@pytest.mark.parametrize("depth", [3, 4])
@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_shallower_depths_give_masks_of_the_input_size_with_matching_upsampling(depth,
                                                                                in_channels):
    model = tiny_fpn(encoder_depth=depth, upsampling=2 ** (depth - 3), in_channels=in_channels,
                     classes=5, aux_params={"classes": 2}).eval()
    with torch.no_grad():
        mask, labels = model(torch.randn(2, in_channels, 64, 64))
    assert mask.shape == (2, 5, 64, 64)
    assert labels.shape == (2, 2)
    assert model.classification_head[3].in_features == TINY_CHANNELS[depth]


@pytest.mark.parametrize(("depth", "in_channels", "classes"), [(3, 1, 5), (4, 4, 1), (5, 3, 2)])
def test_mask_shape_follows_depth_and_upsampling(depth, in_channels, classes):
    model = tiny_fpn(encoder_depth=depth, in_channels=in_channels, classes=classes).eval()
    x = torch.randn(1, in_channels, 64, 64)
    with torch.no_grad():
        features = model.encoder(x)
        merged = model.decoder(features)
        mask = model(x)
    finest = 64 // 2 ** (depth - 3)  # the finest pyramid level is features[-4]
    assert features[-4].shape[-1] == finest
    assert merged.shape == (1, 32, finest, finest)
    # as in SMP, the head upsamples by `upsampling` (4) whatever the depth
    assert mask.shape == (1, classes, finest * 4, finest * 4)


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_in_channels(in_channels):
    model = tiny_fpn(in_channels=in_channels).eval()
    with torch.no_grad():
        assert model(torch.randn(1, in_channels, 64, 64)).shape == (1, 1, 64, 64)
    # at depth 3 the input itself is the finest pyramid level
    model = tiny_fpn(in_channels=in_channels, encoder_depth=3, upsampling=1)
    assert model.decoder.p2.skip_conv.in_channels == in_channels


# -- module tree ---------------------------------------------------------------------------
def _decoder_keys(depth_blocks: dict[int, int]) -> list[str]:
    keys = ["decoder.p5.weight", "decoder.p5.bias"]
    keys += [f"decoder.{level}.skip_conv.{p}" for level in ("p4", "p3", "p2")
             for p in ("weight", "bias")]
    for block, count in depth_blocks.items():
        for layer in range(count):
            prefix = f"decoder.seg_blocks.{block}.block.{layer}.block"
            keys += [f"{prefix}.0.weight", f"{prefix}.1.weight", f"{prefix}.1.bias"]
    return keys


def test_state_dict_keys_follow_smp_layout():
    model = tiny_fpn()
    keys = [k for k in model.state_dict() if not k.startswith("encoder.")]
    expected = _decoder_keys({0: 3, 1: 2, 2: 1, 3: 1})
    assert keys == [*expected, "segmentation_head.0.weight", "segmentation_head.0.bias"]
    model = tiny_fpn(aux_params={"classes": 2})
    assert [k for k in model.state_dict() if k.startswith("classification_head")] == [
        "classification_head.3.weight", "classification_head.3.bias"]


def test_module_tree_and_channels():
    model = tiny_fpn(decoder_pyramid_channels=24, decoder_segmentation_channels=64)
    decoder = model.decoder
    assert [name for name, _ in decoder.named_children()] == [
        "p5", "p4", "p3", "p2", "seg_blocks", "merge", "dropout"]
    # 1x1 lateral projections of the four deepest features (reductions 32, 16, 8, 4)
    assert (decoder.p5.in_channels, decoder.p5.out_channels, decoder.p5.kernel_size) == (
        40, 24, (1, 1))
    assert [decoder.__getattr__(p).skip_conv.in_channels for p in ("p4", "p3", "p2")] == [
        32, 24, 16]
    assert all(decoder.__getattr__(p).skip_conv.out_channels == 24 for p in ("p4", "p3", "p2"))
    # segmentation blocks: 3, 2, 1, 1 conv-GN-ReLU layers; the first of each takes the pyramid
    assert [len(b.block) for b in decoder.seg_blocks] == [3, 2, 1, 1]
    assert [[layer.upsample for layer in b.block] for b in decoder.seg_blocks] == [
        [True, True, True], [True, True], [True], [False]]
    for block in decoder.seg_blocks:
        conv, norm, relu = block.block[0].block
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (24, 64, (3, 3))
        assert conv.bias is None
        assert isinstance(norm, nn.GroupNorm) and (norm.num_groups, norm.num_channels) == (32, 64)
        assert isinstance(relu, nn.ReLU)
    assert isinstance(decoder.merge, MergeBlock)
    assert isinstance(decoder.dropout, nn.Dropout2d)
    head = model.segmentation_head
    assert (head[0].in_channels, head[0].kernel_size) == (64, (1, 1))
    assert isinstance(head[1], nn.Upsample) and head[1].scale_factor == 4


# -- decoder math against a hand-written reference ----------------------------------------
def _reference_layer(x, layer):
    conv, norm, _ = layer.block
    x = F.conv2d(x, conv.weight, padding=1)
    n, c, h, w = x.shape
    groups = x.reshape(n, 32, -1)
    mean = groups.mean(-1, keepdim=True)
    var = groups.var(-1, unbiased=False, keepdim=True)
    x = ((groups - mean) / torch.sqrt(var + norm.eps)).reshape(n, c, h, w)
    x = torch.clamp(x * norm.weight[:, None, None] + norm.bias[:, None, None], min=0)
    if layer.upsample:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    return x


@pytest.mark.parametrize("policy", ["add", "cat"])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_decoder_matches_reference_formula(policy, mode):
    decoder = FPNDecoder(TINY_CHANNELS, 5, pyramid_channels=12, segmentation_channels=32,
                         dropout=0.5, merge_policy=policy, interpolation_mode=mode).eval()
    testing.randomise_weights(decoder)
    features = [torch.randn(2, c, 64 // 2**i, 96 // 2**i) for i, c in enumerate(TINY_CHANNELS)]
    with torch.no_grad():
        actual = decoder(features)
        lateral = [F.conv2d(f, block.skip_conv.weight, block.skip_conv.bias) for f, block in
                   zip(features[2:5], (decoder.p2, decoder.p3, decoder.p4))]
        p5 = F.conv2d(features[5], decoder.p5.weight, decoder.p5.bias)
        p4 = F.interpolate(p5, scale_factor=2, mode=mode) + lateral[2]
        p3 = F.interpolate(p4, scale_factor=2, mode=mode) + lateral[1]
        p2 = F.interpolate(p3, scale_factor=2, mode=mode) + lateral[0]
        refined = []
        for level, block in zip((p5, p4, p3, p2), decoder.seg_blocks):
            for layer in block.block:
                level = _reference_layer(level, layer)
            refined.append(level)
        expected = sum(refined) if policy == "add" else torch.cat(refined, 1)
    assert actual.shape == (2, 32 if policy == "add" else 128, 16, 24)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


# -- the effect of each option -------------------------------------------------------------
@pytest.mark.parametrize("upsampling", [1, 2, 8])
def test_upsampling_changes_the_head_and_the_mask_size(upsampling):
    testing.check_head_upsampling(tiny_fpn(upsampling=upsampling), upsampling,
                                  torch.randn(1, 3, 64, 64))


def test_merge_policy_cat_quadruples_the_head_input():
    add, cat = tiny_fpn(), tiny_fpn(decoder_merge_policy="cat")
    assert (add.decoder.out_channels, cat.decoder.out_channels) == (32, 128)
    assert (add.segmentation_head[0].in_channels, cat.segmentation_head[0].in_channels) == (
        32, 128)
    assert (add.decoder.merge.policy, cat.decoder.merge.policy) == ("add", "cat")
    maps = [torch.full((1, 2, 3, 3), float(i)) for i in range(4)]
    torch.testing.assert_close(add.decoder.merge(maps), torch.full((1, 2, 3, 3), 6.0))
    assert torch.equal(cat.decoder.merge(maps)[:, 4:6], maps[2])


@pytest.mark.parametrize("dropout", [0.0, 0.2, 0.5])
def test_decoder_dropout_drops_whole_channels_in_training_only(dropout):
    model = tiny_fpn(decoder_dropout=dropout)
    assert isinstance(model.decoder.dropout, nn.Dropout2d) and model.decoder.dropout.p == dropout
    testing.check_decoder_channel_dropout(model, dropout, torch.randn(2, 3, 64, 64))


def test_pyramid_and_segmentation_channels_change_the_layers():
    model = tiny_fpn(decoder_pyramid_channels=20, decoder_segmentation_channels=96)
    convs = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)]
    assert {c.out_channels for c in convs[:4]} == {20}  # p5 and the three skip convs
    assert {c.out_channels for c in convs[4:]} == {96}  # segmentation blocks
    assert {m.num_channels for m in model.decoder.modules() if isinstance(m, nn.GroupNorm)} == {
        96}


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "nearest-exact"])
def test_each_interpolation_mode_is_used(mode):
    model = tiny_fpn(decoder_interpolation=mode).eval()
    assert {b.interpolation_mode for b in (model.decoder.p4, model.decoder.p3,
                                           model.decoder.p2)} == {mode}
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_interpolation_modes_change_the_output():
    testing.check_option_changes_output("fpn", "decoder_interpolation", "nearest", "bilinear",
                                        **SMALL)


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_encoder_depth_chooses_the_four_deepest_features(depth):
    model = tiny_fpn(encoder_depth=depth, upsampling=2 ** (depth - 3))
    decoder = model.decoder
    assert decoder.p5.in_channels == TINY_CHANNELS[depth]
    assert [b.skip_conv.in_channels for b in (decoder.p4, decoder.p3, decoder.p2)] == list(
        TINY_CHANNELS[depth - 3: depth][::-1])
    assert model.encoder.output_stride == 2**depth


def test_options_are_validated_and_stored_in_config():
    model = tiny_fpn(decoder_merge_policy="cat", decoder_dropout=0.1,
                     decoder_interpolation="bicubic", upsampling=2)
    testing.check_stored_options(model, "fpn", FPNOptions, {
        "decoder_pyramid_channels": 16, "decoder_segmentation_channels": 32,
        "decoder_merge_policy": "cat", "decoder_dropout": 0.1,
        "decoder_interpolation": "bicubic", "upsampling": 2}, every_option=True)


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("fpn", **SMALL)


# -- errors --------------------------------------------------------------------------------
def test_unknown_options_are_refused_with_suggestions():
    testing.check_unknown_options("fpn", "decoder_merge_polcy", "decoder_merge_policy", **SMALL)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("decoder_merge_policy", "sum", r"decoder_merge_policy must be one of 'add', 'cat'"),
        ("decoder_merge_policy", None, r"decoder_merge_policy must be one of 'add', 'cat'"),
        ("decoder_segmentation_channels", 48, r"multiple of 32 .*GroupNorm.*use 32 or 64"),
        ("decoder_segmentation_channels", 16, r"multiple of 32 .*use 32"),
        ("decoder_segmentation_channels", 0, r"decoder_segmentation_channels must be a positive"),
        ("decoder_pyramid_channels", 0, r"decoder_pyramid_channels must be a positive int"),
        ("decoder_pyramid_channels", 64.0, r"decoder_pyramid_channels must be a positive int"),
        ("decoder_dropout", 1.0, r"decoder_dropout must be a number in \[0, 1\)"),
        ("decoder_dropout", -0.1, r"decoder_dropout must be a number in \[0, 1\)"),
        ("decoder_dropout", "0.2", r"decoder_dropout must be a number in \[0, 1\)"),
        ("decoder_interpolation", "linear", r"decoder_interpolation.*'nearest'.*'bilinear'"),
        ("upsampling", 0, r"upsampling must be a positive int"),
        ("upsampling", 2.5, r"upsampling must be a positive int"),
        ("upsampling", None, r"upsampling must be a positive int"),
    ],
)
def test_bad_option_values_name_the_valid_ones(option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_fpn(**{option: value})


@pytest.mark.parametrize("depth", [2, 1, 6])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("fpn", depth, **SMALL)


def test_other_sizes_are_padded_or_refused_on_request():
    testing.check_input_divisor(tiny_fpn(), 32, (70, 64))
    model = tiny_fpn(encoder_depth=3, upsampling=1).eval()
    with torch.no_grad():  # depth 3: a multiple of 8 is enough
        assert model(torch.randn(1, 3, 40, 56)).shape == (1, 1, 40, 56)


def test_encoder_without_features_at_a_pyramid_level_is_refused():
    spec = testing.tiny_encoder_spec("tiny-no-stride-2", transformer_like=True)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(EncoderCapabilityError, match=r"no features at reduction 2.*depth"):
            FPN("tiny-no-stride-2", encoder_weights=None, encoder_depth=4, **SMALL)
        model = FPN("tiny-no-stride-2", encoder_weights=None, **SMALL)  # depth 5 reads 4-32
    assert model.decoder.p2.skip_conv.in_channels == 16


def test_merge_block_refuses_an_unknown_policy():
    with pytest.raises(InvalidOptionError, match="'add', 'cat'"):
        MergeBlock("max")


# -- public API ----------------------------------------------------------------------------
def test_segcore_fpn_resolves_to_the_plugin_class():
    assert segcore.FPN is segcore_fpn.FPN
    assert "fpn" in segcore.list_architectures()
    assert isinstance(segcore.build("fpn", encoder=TINY, **SMALL), FPN)


def test_documented_signature():
    testing.check_documented_signature(
        FPN,
        ["encoder_name", "encoder_depth", "encoder_weights", "decoder_pyramid_channels",
         "decoder_segmentation_channels", "decoder_merge_policy", "decoder_dropout",
         "in_channels", "classes", "activation", "upsampling", "aux_params"],
        {"encoder_depth": 5, "decoder_pyramid_channels": 256,
         "decoder_segmentation_channels": 128, "decoder_merge_policy": "add",
         "decoder_dropout": 0.2, "upsampling": 4, "decoder_interpolation": "nearest"},
        keyword_only=["decoder_interpolation"], options_class=FPNOptions,
    )


def test_positional_arguments_follow_the_documented_order():
    model = FPN(TINY, 4, None, 12, 64, "cat", 0.0, 2, 3, "sigmoid", 2).eval()
    assert model.encoder.depth == 4
    assert model.decoder.p5.out_channels == 12
    assert model.decoder.out_channels == 4 * 64
    assert model.decoder.dropout.p == 0.0
    testing.check_sigmoid_outputs(model, 2, 3)


def test_build_defaults_to_no_weights():
    testing.check_default_weights("fpn", **SMALL)


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
def test_save_pretrained_round_trip(tmp_path):
    model = tiny_fpn(classes=2, decoder_merge_policy="cat", decoder_interpolation="bilinear",
                     decoder_dropout=0.3, upsampling=2, encoder_depth=4,
                     aux_params={"classes": 3, "dropout": 0.2})
    saved = {"_architecture": "fpn",  # segcore's key; SMP reads "_model_class"
             "decoder_merge_policy": "cat", "upsampling": 2}
    x = torch.randn(1, 3, 64, 48)
    loaded = testing.check_save_load(model, x, tmp_path / "fpn", config=saved)
    assert loaded.decoder.out_channels == 128


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_fpn(aux_params={"classes": 3}, decoder_interpolation="bilinear"),
                          torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_fpn(classes=3, decoder_merge_policy="cat"),
                         torch.randn(1, 3, 64, 64))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("fpn", "segcore_fpn")
