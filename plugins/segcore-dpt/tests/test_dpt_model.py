"""DPT: shapes, module tree, decoder math, the effect of each option, errors (tiny timm ViT)."""

from __future__ import annotations

import warnings

import pytest
import segcore_dpt
import torch
import torch.nn.functional as F
from segcore_dpt import DPT, DPTOptions
from segcore_dpt.decoder import (
    DPTDecoder,
    FusionBlock,
    ReadoutAddBlock,
    ReadoutConcatBlock,
    ReadoutIgnoreBlock,
    ResidualConvBlock,
)
from segcore_dpt.encoder import sample_block_indices
from torch import nn

import segcore
from segcore import testing
from segcore.errors import (
    ConfigurationWarning,
    EncoderCapabilityError,
    InputShapeError,
    InvalidOptionError,
    UnknownNameError,
    UnknownOptionError,
    UnknownWeightsError,
)

# A 4-block ViT with 32 channels, patch 16: 64x64 inputs give 4x4 token maps.
VIT = "tu-vit_tiny_patch16_224"
VIT_OPTIONS = {"img_size": 64, "depth": 4, "embed_dim": 32, "num_heads": 2,
               "dynamic_img_size": True}
SMALL = {"decoder_intermediate_channels": (8, 16, 32, 32), "decoder_fusion_channels": 16}
EMBED = VIT_OPTIONS["embed_dim"]


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_dpt(**kwargs) -> DPT:
    depth = kwargs.get("encoder_depth", 4)
    options = {**VIT_OPTIONS, **SMALL, **kwargs}
    if "decoder_intermediate_channels" not in kwargs:
        options["decoder_intermediate_channels"] = SMALL["decoder_intermediate_channels"][:depth]
    torch.manual_seed(0)
    return DPT(VIT, encoder_weights=None, **options)


def _small_for_depth(depth: int) -> dict:
    return {**VIT_OPTIONS, **SMALL,
            "decoder_intermediate_channels": SMALL["decoder_intermediate_channels"][:depth]}


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    # the default decoder (256-1024 channels) is heavy: one depth, one class/channel count
    testing.check_architecture("dpt", VIT, depths=(4,), classes=(2,), in_channels=(3,),
                               **VIT_OPTIONS)


def test_conformance_kit_small_decoder_every_depth():
    testing.check_architecture("dpt", VIT, depths=(1, 2, 3, 4),
                               options_for_depth=_small_for_depth, **VIT_OPTIONS, **SMALL)


@pytest.mark.parametrize(
    "options",
    [
        {"decoder_readout": "add"},
        {"decoder_readout": "ignore"},
        {"decoder_intermediate_channels": (4, 4, 8, 8)},
        {"decoder_fusion_channels": 8},
        {"encoder_output_indices": (0, 1, 2, 3)},
        {"encoder_output_indices": (-4, -3, -2, -1), "decoder_readout": "add"},
    ],
    ids=["add", "ignore", "intermediate", "fusion", "indices", "negative-indices"],
)
def test_conformance_kit_with_options(options):
    testing.check_architecture("dpt", VIT, depths=(4,), classes=(2,), in_channels=(3,),
                               **{**VIT_OPTIONS, **SMALL, **options})


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_in_channels(in_channels):
    model = tiny_dpt(in_channels=in_channels).eval()
    assert model.encoder.model.patch_embed.proj.in_channels == in_channels
    with torch.no_grad():
        assert model(torch.randn(1, in_channels, 64, 64)).shape == (1, 1, 64, 64)


def test_aux_head_reads_the_deepest_token_map():
    # shapes, pooling, dropout and activation of the aux head: the conformance kit
    model = tiny_dpt(aux_params={"classes": 4}).eval()
    assert model.classification_head[3].in_features == EMBED
    with torch.no_grad():
        features, _ = model.encoder(torch.randn(2, 3, 64, 96))
    assert features[-1].shape == (2, EMBED, 4, 6)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_encoder_depth_is_the_number_of_blocks_read(depth):
    model = tiny_dpt(encoder_depth=depth)
    assert model.encoder.output_indices == tuple(sample_block_indices(depth, 4))
    assert len(model.decoder.fusion_blocks) == depth
    assert len(model.decoder.reassemble_blocks) == depth
    # the coarsest reassembled map is at reduction 4 * 2 ** (depth - 1), and at least 16
    assert model.input_divisor() == max(16, 4 * 2 ** (depth - 1))
    with torch.no_grad():
        features, tokens = model.encoder(torch.randn(1, 3, 64, 64))
    assert len(features) == len(tokens) == depth
    assert all(f.shape == (1, EMBED, 4, 4) for f in features)
    assert all(t.shape == (1, 1, EMBED) for t in tokens)


def test_block_sampling_matches_smp_rule():
    assert sample_block_indices(4, 12) == [2, 5, 8, 11]
    assert sample_block_indices(3, 12) == [3, 7, 11]
    assert sample_block_indices(4, 24) == [5, 11, 17, 23]
    assert sample_block_indices(1, 4) == [3]


# -- module tree ---------------------------------------------------------------------------
def test_module_tree_follows_smp_layout():
    model = tiny_dpt(aux_params={"classes": 2})
    assert [name for name, _ in model.named_children()] == [
        "encoder", "decoder", "segmentation_head", "classification_head"]
    assert [name for name, _ in model.encoder.named_children()] == ["model"]
    assert [name for name, _ in model.decoder.named_children()] == [
        "projection_blocks", "reassemble_blocks", "fusion_blocks"]
    block = model.decoder.reassemble_blocks[0]
    assert [name for name, _ in block.named_children()] == [
        "project_to_out_channel", "upsample", "project_to_feature_dim"]
    fusion = model.decoder.fusion_blocks[0]
    assert [name for name, _ in fusion.named_children()] == [
        "residual_conv_block1", "residual_conv_block2", "project", "activation"]
    assert [name for name, _ in fusion.residual_conv_block1.named_children()] == [
        "conv_1", "batch_norm_1", "conv_2", "batch_norm_2", "activation"]
    assert [name for name, _ in model.segmentation_head.named_children()] == [
        "head", "activation"]
    keys = [k for k in model.state_dict() if not k.startswith("encoder.")]
    expected = []
    for i in range(4):
        expected += [f"decoder.projection_blocks.{i}.project.0.{p}" for p in ("weight", "bias")]
    for i in range(4):
        prefix = f"decoder.reassemble_blocks.{i}"
        expected += [f"{prefix}.project_to_out_channel.weight",
                     f"{prefix}.project_to_out_channel.bias"]
        if i != 2:  # patch 16 -> reduction 16 at block 2: no resampling
            expected += [f"{prefix}.upsample.weight", f"{prefix}.upsample.bias"]
        expected += [f"{prefix}.project_to_feature_dim.weight"]
    norm = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    for i in range(4):
        for unit in ("residual_conv_block1", "residual_conv_block2"):
            prefix = f"decoder.fusion_blocks.{i}.{unit}"
            expected += [f"{prefix}.conv_1.weight", *(f"{prefix}.batch_norm_1.{p}" for p in norm),
                         f"{prefix}.conv_2.weight", *(f"{prefix}.batch_norm_2.{p}" for p in norm)]
        expected += [f"decoder.fusion_blocks.{i}.project.weight",
                     f"decoder.fusion_blocks.{i}.project.bias"]
    expected += ["segmentation_head.head.0.weight",
                 *(f"segmentation_head.head.1.{p}" for p in norm),
                 "segmentation_head.head.4.weight", "segmentation_head.head.4.bias",
                 "classification_head.3.weight", "classification_head.3.bias"]
    assert keys == expected


def test_reassembly_resamples_each_block_to_its_reduction():
    model = tiny_dpt()
    upsample = [block.upsample for block in model.decoder.reassemble_blocks]
    # patch 16 -> reductions 4 (4x up), 8 (2x up), 16 (same), 32 (2x down)
    assert isinstance(upsample[0], nn.ConvTranspose2d) and upsample[0].stride == (4, 4)
    assert upsample[0].kernel_size == (4, 4)
    assert isinstance(upsample[1], nn.ConvTranspose2d) and upsample[1].stride == (2, 2)
    assert isinstance(upsample[2], nn.Identity)
    assert isinstance(upsample[3], nn.Conv2d) and upsample[3].stride == (2, 2)
    assert (upsample[3].kernel_size, upsample[3].padding) == ((3, 3), (1, 1))
    features = [torch.randn(1, EMBED, 4, 6) for _ in range(4)]
    with torch.no_grad():
        sizes = [tuple(block(f).shape[2:]) for block, f in
                 zip(model.decoder.reassemble_blocks, features)]
    assert sizes == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_head_layers():
    model = tiny_dpt(classes=5)
    conv, norm, relu, dropout, classifier = model.segmentation_head.head
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.bias) == (
        16, 16, (3, 3), None)
    assert isinstance(norm, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
    assert isinstance(dropout, nn.Dropout) and dropout.p == 0.1
    assert (classifier.in_channels, classifier.out_channels, classifier.kernel_size) == (
        16, 5, (1, 1))
    assert model.segmentation_head.upsampling_factor == 2


# -- decoder math against a hand-written reference ----------------------------------------
def _batch_norm(x, norm):
    return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                        training=False, eps=norm.eps)


def _residual(x, unit: ResidualConvBlock):
    out = _batch_norm(F.conv2d(x.clamp(min=0), unit.conv_1.weight, padding=1), unit.batch_norm_1)
    out = _batch_norm(F.conv2d(out.clamp(min=0), unit.conv_2.weight, padding=1),
                      unit.batch_norm_2)
    return x + out


def test_fusion_block_matches_reference_formula():
    block = FusionBlock(8).eval()
    testing.randomise_weights(block)
    feature, previous = torch.randn(2, 8, 5, 7), torch.randn(2, 8, 5, 7)
    with torch.no_grad():
        actual = block(feature, previous)
        x = _residual(feature, block.residual_conv_block1) + previous
        x = _residual(x, block.residual_conv_block2)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        expected = F.conv2d(x, block.project.weight, block.project.bias)
    assert actual.shape == (2, 8, 10, 14)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_readout_blocks_match_reference_formulas():
    torch.manual_seed(0)
    features = torch.randn(2, 6, 3, 4)
    prefix = torch.randn(2, 3, 6)  # a class token and two register tokens
    cat = ReadoutConcatBlock(6, has_prefix_tokens=True)
    with torch.no_grad():
        tokens = features.flatten(2).transpose(1, 2)  # (2, 12, 6)
        joined = torch.cat([tokens, prefix[:, :1].expand(-1, 12, -1)], dim=2)
        projected = F.gelu(joined @ cat.project[0].weight.T + cat.project[0].bias)
        expected = projected.transpose(1, 2).reshape(2, 6, 3, 4)
        torch.testing.assert_close(cat(features, prefix), expected)
        add = ReadoutAddBlock()(features, prefix)
        torch.testing.assert_close(add, features + prefix.mean(1)[:, :, None, None])
        assert ReadoutIgnoreBlock()(features, prefix) is features
    assert cat.project[0].in_features == 12
    assert ReadoutConcatBlock(6, has_prefix_tokens=False).project[0].in_features == 6


def test_decoder_fuses_from_the_coarsest_map():
    decoder = DPTDecoder((8, 8, 8), (16, 16, 16), True, "ignore", (4, 4, 4), 8).eval()
    testing.randomise_weights(decoder)
    features = [torch.randn(1, 8, 4, 4) for _ in range(3)]
    with torch.no_grad():
        maps = [block(f) for block, f in zip(decoder.reassemble_blocks, features)]
        assert [m.shape[-1] for m in maps] == [16, 8, 4]
        fused = decoder.fusion_blocks[0](maps[2])
        fused = decoder.fusion_blocks[1](maps[1], fused)
        expected = decoder.fusion_blocks[2](maps[0], fused)
        torch.testing.assert_close(decoder(features, [None] * 3), expected)
    assert expected.shape == (1, 8, 32, 32)  # reduction 2 of a 64x64 input
    assert decoder.input_divisor == 16


# -- the effect of each option -------------------------------------------------------------
@pytest.mark.parametrize(
    ("readout", "block", "params"),
    [("cat", ReadoutConcatBlock, 2 * EMBED * EMBED + EMBED), ("add", ReadoutAddBlock, 0),
     ("ignore", ReadoutIgnoreBlock, 0)],
)
def test_readout_chooses_the_projection_blocks(readout, block, params):
    model = tiny_dpt(decoder_readout=readout)
    assert all(type(b) is block for b in model.decoder.projection_blocks)
    assert sum(p.numel() for p in model.decoder.projection_blocks.parameters()) == 4 * params
    assert model.config["decoder_readout"] == readout


def test_readout_add_and_ignore_differ_by_the_prefix_tokens_only():
    add = tiny_dpt(decoder_readout="add").eval()
    ignore = tiny_dpt(decoder_readout="ignore").eval()
    ignore.load_state_dict(add.state_dict())  # same parameters: the readout has none
    testing.randomise_weights(add.decoder)
    ignore.decoder.load_state_dict(add.decoder.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(add(x), ignore(x))
        features, tokens = add.encoder(x)
        shifted = [f + t.mean(1)[:, :, None, None] for f, t in zip(features, tokens)]
        torch.testing.assert_close(add.decoder(features, tokens),
                                   ignore.decoder(shifted, [None] * 4))


def test_intermediate_channels_change_the_reassembly_layers():
    model = tiny_dpt(decoder_intermediate_channels=(4, 12, 20, 28))
    blocks = model.decoder.reassemble_blocks
    assert [b.project_to_out_channel.out_channels for b in blocks] == [4, 12, 20, 28]
    assert [b.project_to_feature_dim.in_channels for b in blocks] == [4, 12, 20, 28]
    assert [b.upsample.out_channels for b in blocks if not isinstance(b.upsample,
                                                                       nn.Identity)] == [4, 12, 28]
    assert {b.project_to_feature_dim.out_channels for b in blocks} == {16}
    assert model.config["decoder_intermediate_channels"] == [4, 12, 20, 28]


def test_fusion_channels_change_fusion_and_head():
    model = tiny_dpt(decoder_fusion_channels=24)
    convs = [m for m in model.decoder.fusion_blocks.modules() if isinstance(m, nn.Conv2d)]
    assert {(c.in_channels, c.out_channels) for c in convs} == {(24, 24)}
    assert {b.project_to_feature_dim.out_channels for b in model.decoder.reassemble_blocks} == {
        24}
    assert model.segmentation_head.head[0].in_channels == 24
    with torch.no_grad():
        assert model.decoder(*model.encoder(torch.randn(1, 3, 64, 64))).shape == (1, 24, 32, 32)


def test_output_indices_choose_the_blocks_read():
    default = tiny_dpt(encoder_depth=2)
    first = tiny_dpt(encoder_depth=2, encoder_output_indices=[0, 1])
    negative = tiny_dpt(encoder_depth=2, encoder_output_indices=(-4, -3))
    assert default.encoder.output_indices == (1, 3)
    assert first.encoder.output_indices == negative.encoder.output_indices == (0, 1)
    assert first.config["encoder_output_indices"] == [0, 1]
    x = torch.randn(1, 3, 64, 64)
    vit = first.encoder.model.eval()
    with torch.no_grad():
        features, _ = first.encoder(x)
        blocks = vit.forward_intermediates(x, indices=[0, 1, 2, 3], intermediates_only=True)
        torch.testing.assert_close(features, [blocks[0], blocks[1]])
        features, _ = default.encoder.eval()(x)
        torch.testing.assert_close(features, [blocks[1], blocks[3]])


def test_kwargs_go_to_timm():
    model = tiny_dpt(drop_path_rate=0.1, qkv_bias=False)
    assert model.encoder.model.blocks[0].attn.qkv.bias is None
    assert model.encoder.model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)
    assert model.config["encoder_params"] == {**VIT_OPTIONS, "drop_path_rate": 0.1,
                                              "qkv_bias": False}


def test_encoder_without_prefix_tokens_warns_unless_readout_is_ignore():
    no_tokens = {"class_token": False, "global_pool": "avg"}
    with pytest.warns(ConfigurationWarning, match=r"no prefix tokens.*decoder_readout='ignore'"):
        model = tiny_dpt(**no_tokens)
    assert not model.encoder.has_prefix_tokens
    assert model.decoder.projection_blocks[0].project[0].in_features == EMBED
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = tiny_dpt(decoder_readout="ignore", **no_tokens).eval()
    with torch.no_grad():
        _, tokens = model.encoder(torch.randn(1, 3, 64, 64))
        assert tokens == [None] * 4
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_register_tokens_are_prefix_tokens():
    model = tiny_dpt(reg_tokens=2, decoder_readout="add")
    assert model.encoder.num_prefix_tokens == 3
    with torch.no_grad():
        _, tokens = model.encoder(torch.randn(1, 3, 64, 64))
    assert tokens[0].shape == (1, 3, EMBED)


def test_a_timm_cnn_works_with_its_own_strides():
    # SMP accepts any timm model with forward_intermediates; a CNN has no prefix tokens
    model = DPT("tu-resnet18", encoder_weights=None, decoder_readout="ignore", **SMALL).eval()
    assert model.encoder.output_indices == (0, 1, 2, 4)
    assert model.encoder.output_strides == (2, 4, 8, 32)
    assert model.input_divisor() == 32
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 1, 64, 96)


# -- input sizes -----------------------------------------------------------------------------
def test_sizes_are_padded_to_multiples_of_32_with_a_dynamic_vit():
    model = tiny_dpt().eval()
    assert model.input_divisor() == 32  # SMP checks 16 (the patch) but 48 fails its decoder
    with torch.no_grad():
        for size in [(48, 48), (70, 50), (16, 100), (64, 64)]:
            assert model(torch.randn(1, 3, *size)).shape == (1, 1, *size)
    model.pad_inputs = False
    with pytest.raises(InputShapeError, match=r"divisible by 32, got 48x48.*64x64"):
        model(torch.randn(1, 3, 48, 48))


def test_padding_leaves_multiples_untouched():
    model = tiny_dpt().eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        padded = model(x)
        model.pad_inputs = False
        torch.testing.assert_close(model(x), padded)


def test_fixed_size_vit_pads_smaller_inputs_and_refuses_larger_ones():
    model = tiny_dpt(dynamic_img_size=False).eval()
    assert model.encoder.fixed_input_size == (64, 64)
    assert model.encoder.is_fixed_input_size and model.encoder.input_size == (3, 64, 64)
    assert tiny_dpt().encoder.fixed_input_size is None
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)
        assert model(torch.randn(1, 3, 40, 64)).shape == (1, 1, 40, 64)
    with pytest.raises(InputShapeError, match=r"built for 64x64.*at most.*got 96x64.*"
                                              r"dynamic_img_size=True"):
        model(torch.randn(1, 3, 96, 64))
    model.pad_inputs = False
    with pytest.raises(InputShapeError, match=r"takes only that size, got 32x32"):
        model(torch.randn(1, 3, 32, 32))


def test_fixed_size_that_the_decoder_cannot_take_is_refused():
    with pytest.raises(InvalidOptionError, match=r"only 48x48 inputs.*multiples of 32"):
        tiny_dpt(img_size=48, dynamic_img_size=False)
    model = tiny_dpt(img_size=48, dynamic_img_size=False, encoder_depth=3)  # divisor 16
    assert model.input_divisor() == 16


def test_patch_size_that_is_not_a_power_of_two_is_refused():
    with pytest.raises(EncoderCapabilityError, match=r"reduction 14 cannot become reduction 4"):
        tiny_dpt(patch_size=14, img_size=56)


# -- options and config --------------------------------------------------------------------
def test_options_are_validated_and_stored_in_config():
    model = tiny_dpt(decoder_readout="add", encoder_output_indices=[0, 1, 2, 3],
                     decoder_fusion_channels=8)
    testing.check_stored_options(model, "dpt", DPTOptions, {
        "encoder_depth": 4, "encoder_output_indices": [0, 1, 2, 3], "decoder_readout": "add",
        "decoder_intermediate_channels": [8, 16, 32, 32], "decoder_fusion_channels": 8},
        every_option=True)


# -- errors --------------------------------------------------------------------------------
def test_unknown_decoder_option_suggests_the_right_name():
    testing.check_unknown_options("dpt", "decoder_readot", "decoder_readout", encoder=VIT,
                                  **VIT_OPTIONS, **SMALL)


def test_unknown_timm_option_is_refused_by_name():
    with pytest.raises(UnknownOptionError, match=r"does not take option\(s\) 'colour_mode'"):
        tiny_dpt(colour_mode="rgb")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("decoder_readout", "concat", r"decoder_readout must be one of 'ignore', 'add', 'cat'"),
        ("decoder_readout", None, r"decoder_readout must be one of"),
        ("decoder_intermediate_channels", (8, 16, 32),
         r"one value per encoder stage: encoder_depth=4 needs 4, got 3.*\(8, 16, 32, 32\)"),
        ("decoder_intermediate_channels", (8, 0, 32, 32), r"sequence of ints >= 1"),
        ("decoder_intermediate_channels", 32, r"sequence of ints >= 1"),
        ("decoder_fusion_channels", 0, r"decoder_fusion_channels must be a positive int"),
        ("decoder_fusion_channels", 16.0, r"decoder_fusion_channels must be a positive int"),
        ("encoder_output_indices", (0, 1), r"one block per encoder stage.*needs 4 indices"),
        ("encoder_output_indices", (0, 1, 2, 4), r"\[4\] out of range.*-4 to 3"),
        ("encoder_output_indices", (0, 2, 1, 3), r"increasing order.*\(0, 1, 2, 3\)"),
        ("encoder_output_indices", (0, 1, 1, 3), r"different blocks in increasing order"),
        ("encoder_output_indices", "0123", r"None or a sequence of block indices"),
        ("encoder_output_indices", (0, 1, 2, True), r"None or a sequence of block indices"),
        ("in_channels", 0, r"in_channels must be a positive int"),
        ("classes", 0, r"classes must be a positive int"),
        ("activation", "softmx", r"unknown activation 'softmx'.*'softmax'"),
        ("aux_params", {"classes": 2, "pooling": "mean"}, r"'avg' or 'max'"),
    ],
)
def test_bad_option_values_name_the_valid_ones(option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_dpt(**{option: value})


@pytest.mark.parametrize(
    ("depth", "message"),
    [
        (0, r"encoder_depth=0 is too small: the dpt decoder needs at least 1"),
        (5, r"encoder_depth=5 is too large: encoder 'tu-vit_tiny_patch16_224' has 4 blocks.*"
            r"1 to 4"),
        (2.0, r"encoder_depth must be an int"),
    ],
)
def test_encoder_depth_out_of_range(depth, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_dpt(encoder_depth=depth, decoder_intermediate_channels=(8,) * 5)


@pytest.mark.parametrize("encoder", [testing.TINY_ENCODER, "resnet34", "mit_b0"])
def test_non_timm_encoders_are_refused(encoder):
    with pytest.raises(EncoderCapabilityError, match=r"'tu-<timm model>'.*tu-vit_"):
        DPT(encoder, encoder_weights=None)


def test_unknown_timm_model_suggests_close_names():
    with pytest.raises(UnknownNameError, match=r"no model 'vit_tiny_patch16_24'.*"
                                              r"'tu-vit_tiny_patch16_224'"):
        DPT("tu-vit_tiny_patch16_24", encoder_weights=None)


@pytest.mark.parametrize(
    ("option", "error", "message"),
    [
        ("in_chans", InvalidOptionError, r"'in_chans'.*use in_channels"),
        ("pretrained", InvalidOptionError, r"'pretrained'.*use encoder_weights"),
        ("output_stride", InvalidOptionError, r"does not dilate"),
        ("checkpoint_path", UnknownOptionError, r"read a file or fetch weights"),
        ("pretrained_cfg_overlay", UnknownOptionError, r"read a file or fetch weights"),
    ],
)
def test_reserved_and_unsafe_timm_options_are_refused(option, error, message):
    with pytest.raises(error, match=message):
        tiny_dpt(**{option: 1})


def test_unknown_weights_tag_is_refused():
    with pytest.raises(UnknownWeightsError, match=r"None, True, 'imagenet'.*'tu-<model>.<tag>'"):
        DPT(VIT, encoder_weights="augreg_in21k", **VIT_OPTIONS, **SMALL)


@pytest.mark.parametrize("weights", ["imagenet", True])
def test_pretrained_weights_are_asked_from_timm(monkeypatch, weights):
    import timm

    calls = []
    create = timm.create_model

    def spy(name, **kwargs):
        calls.append((name, kwargs["pretrained"]))
        return create(name, **{**kwargs, "pretrained": False})

    monkeypatch.setattr(timm, "create_model", spy)
    DPT(VIT + ".augreg_in21k", encoder_weights=weights, **VIT_OPTIONS, **SMALL)
    assert calls == [("vit_tiny_patch16_224.augreg_in21k", True)]


def test_offline_pretrained_weights_give_a_weights_error(monkeypatch):
    import timm

    def offline(name, **kwargs):
        raise OSError("no connection to huggingface.co")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(segcore.WeightsError, match=r"could not get its pretrained weights.*"
                                                   r"encoder_weights=None"):
        DPT(VIT, **VIT_OPTIONS, **SMALL)  # the class keeps SMP's default "imagenet"


@pytest.mark.parametrize("layout", ["encoder", "timm"])
@pytest.mark.parametrize("in_channels", [3, 1])
def test_encoder_weights_from_a_file(tmp_path, layout, in_channels):
    from safetensors.torch import save_file

    source = tiny_dpt()
    state = source.encoder.state_dict() if layout == "encoder" else \
        source.encoder.model.state_dict()
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    torch.manual_seed(5)
    model = DPT(VIT, encoder_weights=path, in_channels=in_channels, **VIT_OPTIONS, **SMALL)
    loaded, original = model.encoder.model.state_dict(), source.encoder.model.state_dict()
    for key in original:
        if key == "patch_embed.proj.weight" and in_channels == 1:
            torch.testing.assert_close(loaded[key], original[key].sum(1, keepdim=True))
        else:
            torch.testing.assert_close(loaded[key], original[key], msg=key)
    assert model.encoder.in_channels == in_channels
    with torch.no_grad():
        assert model.eval()(torch.randn(1, in_channels, 64, 64)).shape == (1, 1, 64, 64)


def test_weights_file_of_another_model_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"model.cls_token": torch.zeros(1, 1, 8)}, str(path))
    with pytest.raises(segcore.WeightsError, match=r"do not fit this model"):
        DPT(VIT, encoder_weights=path, **VIT_OPTIONS, **SMALL)


# -- public API ----------------------------------------------------------------------------
def test_segcore_dpt_resolves_to_the_plugin_class():
    assert segcore.DPT is segcore_dpt.DPT
    assert "dpt" in segcore.list_architectures()
    model = segcore.build("dpt", encoder=VIT, **VIT_OPTIONS, **SMALL)
    assert isinstance(model, DPT)
    assert model.encoder.depth == 4  # build leaves DPT's own default depth


def test_documented_signature():
    testing.check_documented_signature(
        DPT,
        ["encoder_name", "encoder_depth", "encoder_weights", "encoder_output_indices",
         "decoder_readout", "decoder_intermediate_channels", "decoder_fusion_channels",
         "in_channels", "classes", "activation", "aux_params"],
        {"encoder_name": "tu-vit_base_patch16_224.augreg_in21k", "encoder_depth": 4,
         "encoder_output_indices": None, "decoder_readout": "cat",
         "decoder_intermediate_channels": (256, 512, 1024, 1024),
         "decoder_fusion_channels": 256},
        options_class=DPTOptions,
    )


def test_positional_arguments_follow_the_documented_order():
    model = DPT(VIT, 2, None, [1, 3], "add", (8, 8), 12, 1, 3, "sigmoid",
                {"classes": 2}, **VIT_OPTIONS).eval()
    assert model.encoder.output_indices == (1, 3)
    assert isinstance(model.decoder.projection_blocks[0], ReadoutAddBlock)
    assert model.decoder.reassemble_blocks[1].project_to_out_channel.out_channels == 8
    assert model.segmentation_head.head[0].in_channels == 12
    testing.check_sigmoid_outputs(model, 1, 3, aux_classes=2)


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
def test_save_pretrained_round_trip(tmp_path):
    model = tiny_dpt(classes=2, encoder_depth=3, encoder_output_indices=[0, 2, 3],
                     decoder_readout="add", decoder_intermediate_channels=[4, 8, 12],
                     decoder_fusion_channels=8, drop_path_rate=0.1,
                     aux_params={"classes": 3, "dropout": 0.2})
    saved = {"_architecture": "dpt",  # segcore's key; SMP reads "_model_class"
             "encoder_name": VIT, "encoder_output_indices": [0, 2, 3],
             "decoder_intermediate_channels": [4, 8, 12],
             **VIT_OPTIONS, "drop_path_rate": 0.1}  # the encoder's at the top level, as SMP's
    x = torch.randn(1, 3, 64, 48)
    loaded = testing.check_save_load(model, x, tmp_path / "dpt", config=saved)
    assert loaded.config["encoder_params"] == {**VIT_OPTIONS, "drop_path_rate": 0.1}
    assert loaded.encoder.output_indices == (0, 2, 3)


def test_from_config_rebuilds_the_same_layout():
    model = tiny_dpt(decoder_readout="ignore", in_channels=1, classes=4)
    rebuilt = segcore.from_config(model.config)
    assert type(rebuilt) is DPT
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}


def test_gradients_reach_decoder_heads_and_the_blocks_read():
    model = tiny_dpt(aux_params={"classes": 2}).train()
    mask, labels = model(torch.randn(2, 3, 64, 64))
    (mask.mean() + labels.mean()).backward()
    for name, parameter in model.named_parameters():
        # as in SMP the whole timm model is kept (its checkpoints have every key), but the
        # final norm and the classifier of the ViT are not used
        if name.startswith(("encoder.model.norm.", "encoder.model.head.", "encoder.model.fc_norm")):
            continue
        assert parameter.grad is not None, name


def test_batch_of_one_trains():
    model = tiny_dpt().train()
    model(torch.randn(1, 3, 64, 64)).mean().backward()


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_dpt(aux_params={"classes": 3}), torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_dpt(classes=3), torch.randn(1, 3, 64, 64))


def test_input_type_errors_come_from_the_core():
    model = tiny_dpt().eval()
    with pytest.raises(segcore.errors.InputTypeError, match=r"x\.float\(\)"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.float64))
    with pytest.raises(segcore.errors.InputShapeError, match=r"x\.unsqueeze\(0\)"):
        model(torch.zeros(3, 64, 64))


def test_model_is_a_segmentation_model():
    model = tiny_dpt()
    assert isinstance(model, segcore.SegmentationModel)
    assert model.name == f"dpt-{VIT}"
    assert isinstance(model.segmentation_head.activation.activation, nn.Identity)


def test_discovery_imports_no_model_code_and_no_timm():
    testing.check_lazy_discovery("dpt", "segcore_dpt")  # not segcore_dpt.encoder (timm)
