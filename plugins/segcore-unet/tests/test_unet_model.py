"""Unet: shapes, module tree, decoder math, options and errors (tiny test encoder only)."""

from __future__ import annotations

import pytest
import segcore_unet
import torch
import torch.nn.functional as F
from segcore_unet import Unet, UnetOptions
from segcore_unet.decoder import UnetCenterBlock, UnetDecoderBlock
from torch import nn

import segcore
from segcore import testing
from segcore.errors import InvalidOptionError
from segcore.testing import reference_conv_norm_relu as conv_norm_relu

TINY = testing.TINY_ENCODER
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)  # the test encoder's out_channels at depth 5
SMALL = (32, 24, 16, 12, 8)  # small decoder channels keep the tests fast


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_unet(**kwargs) -> Unet:
    kwargs.setdefault("decoder_channels", SMALL[: kwargs.get("encoder_depth", 5)])
    torch.manual_seed(0)
    return Unet(TINY, encoder_weights=None, **kwargs)


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    # decoder_channels is given so the kit can trim it to depths 3 and 4 (one value per stage,
    # as in SMP; the default alone only fits encoder_depth=5)
    testing.check_architecture("unet", TINY, decoder_channels=(256, 128, 64, 32, 16))


@pytest.mark.parametrize(
    "options",
    [
        {"decoder_attention_type": "scse"},
        {"decoder_use_norm": "layernorm", "decoder_interpolation": "bilinear"},
        {"decoder_use_batchnorm": False},
    ],
    ids=["scse", "layernorm-bilinear", "no-norm"],
)
def test_conformance_kit_with_options(options):
    testing.check_architecture("unet", TINY, depths=(3, 5), classes=(2,), in_channels=(3,),
                               decoder_channels=SMALL, **options)


@pytest.mark.parametrize(("depth", "in_channels", "classes"), [(3, 1, 5), (4, 4, 1), (5, 3, 5)])
def test_mask_shape(depth, in_channels, classes):
    # the conformance kit above covers the full grid; this names a few cases directly
    model = tiny_unet(encoder_depth=depth, in_channels=in_channels, classes=classes).eval()
    with torch.no_grad():
        mask = model(torch.randn(2, in_channels, 64, 64))
    assert mask.shape == (2, classes, 64, 64)
    assert len(model.decoder.blocks) == depth


@pytest.mark.parametrize("size", [(63, 65), (33, 47), (17, 100), (64, 31)])
def test_any_input_size_gives_a_mask_of_that_size(size):
    model = tiny_unet(classes=2).eval()
    block_sizes = []
    for block in model.decoder.blocks:
        block.register_forward_hook(lambda m, i, o: block_sizes.append(tuple(o.shape[2:])))
    with torch.no_grad():
        features = model.encoder(torch.randn(1, 3, *size))
        mask = model(torch.randn(1, 3, *size))
    assert mask.shape == (1, 2, *size)
    # each block ends at the size of the next shallower encoder map (skips fit exactly)
    assert block_sizes == [tuple(f.shape[2:]) for f in features[:-1]][::-1]


# -- module tree ---------------------------------------------------------------------------
def test_block_channels_follow_the_unet_wiring():
    model = Unet(TINY, encoder_weights=None)  # documented default decoder channels
    blocks = model.decoder.blocks
    assert isinstance(model.decoder.center, nn.Identity)
    assert len(blocks) == 5
    # conv1 takes the upsampled deeper map plus the skip: 40+32, 256+24, 128+16, 64+8, 32+0
    assert [b.conv1[0].in_channels for b in blocks] == [72, 280, 144, 72, 32]
    assert [b.conv1[0].out_channels for b in blocks] == [256, 128, 64, 32, 16]
    assert [b.conv2[0].in_channels for b in blocks] == [256, 128, 64, 32, 16]
    assert model.segmentation_head[0].in_channels == 16
    assert model.segmentation_head[0].kernel_size == (3, 3)
    assert isinstance(model.segmentation_head[1], nn.Identity)  # no upsampling in the head


def test_state_dict_keys_follow_smp_layout():
    keys = set(tiny_unet(decoder_attention_type="scse").state_dict())
    for key in [
        "decoder.blocks.0.conv1.0.weight",
        "decoder.blocks.0.conv1.1.running_mean",
        "decoder.blocks.4.conv2.1.num_batches_tracked",
        "decoder.blocks.0.attention1.attention.cSE.1.weight",
        "decoder.blocks.0.attention1.attention.sSE.0.bias",
        "decoder.blocks.4.attention2.attention.cSE.3.weight",
        "segmentation_head.0.weight",
        "segmentation_head.0.bias",
    ]:
        assert key in keys, key
    assert not any(k.startswith("decoder.center") for k in keys)
    assert "decoder.blocks.0.conv1.0.bias" not in keys  # batchnorm: conv has no bias


def test_vgg_encoders_get_a_center_block():
    vgg_spec = testing.tiny_encoder_spec("vgg_tiny_test", deepest_feature_pooled=True)
    with testing.specs_installed(encoders=[vgg_spec]):
        model = Unet("vgg_tiny_test", encoder_weights=None, decoder_channels=SMALL,
                     decoder_use_batchnorm=False).eval()
        with torch.no_grad():
            mask = model(torch.randn(1, 3, 63, 65))
    assert mask.shape == (1, 1, 63, 65)
    center = model.decoder.center
    assert isinstance(center, UnetCenterBlock)
    assert [(c[0].in_channels, c[0].out_channels) for c in center] == [(40, 40), (40, 40)]
    assert center[0][0].bias is not None  # follows the decoder norm (none here)
    assert "decoder.center.1.0.weight" in model.state_dict()


# -- decoder math against a hand-written reference ----------------------------------------
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "nearest-exact"])
@pytest.mark.parametrize("attention", [None, "scse"])
@pytest.mark.parametrize("use_norm", [True, False])
def test_block_matches_reference_formula(mode, attention, use_norm):
    block = UnetDecoderBlock(6, 4, 5, use_norm=use_norm, attention_type=attention,
                             interpolation_mode=mode).eval()
    testing.randomise_weights(block)
    x, skip = torch.randn(2, 6, 5, 7), torch.randn(2, 4, 11, 13)
    with torch.no_grad():
        actual = block(x, 11, 13, skip)
        expected = torch.cat([F.interpolate(x, size=(11, 13), mode=mode), skip], dim=1)
        if attention == "scse":
            expected = testing.reference_scse(expected, block.attention1.attention)
        expected = conv_norm_relu(expected, block.conv1)
        expected = conv_norm_relu(expected, block.conv2)
        if attention == "scse":
            expected = testing.reference_scse(expected, block.attention2.attention)
    assert actual.shape == (2, 5, 11, 13)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_whole_decoder_matches_reference_chain():
    model = tiny_unet(encoder_depth=3, decoder_channels=(12, 10, 6)).eval()
    testing.randomise_weights(model.decoder)
    x = torch.randn(1, 3, 29, 35)
    with torch.no_grad():
        features = model.encoder(x)  # sizes 29x35, 15x18, 8x9, 4x5
        out = features[3]
        for block, skip, target in zip(model.decoder.blocks, [features[2], features[1], None],
                                       [features[2], features[1], features[0]]):
            out = F.interpolate(out, size=target.shape[2:], mode="nearest")
            if skip is not None:
                out = torch.cat([out, skip], 1)
            out = conv_norm_relu(conv_norm_relu(out, block.conv1), block.conv2)
        torch.testing.assert_close(model.decoder(features), out, rtol=1e-4, atol=1e-5)


# -- options -------------------------------------------------------------------------------
def _decoder_norms(model):
    return [block.conv1[1] for block in model.decoder.blocks] + [
        block.conv2[1] for block in model.decoder.blocks
    ]


def test_default_norm_is_batchnorm_without_conv_bias():
    model = tiny_unet()
    testing.check_decoder_batchnorm(model, _decoder_norms(model))  # convs without bias


def test_decoder_use_batchnorm_false_removes_batchnorm_and_adds_bias():
    model = tiny_unet(decoder_use_batchnorm=False)
    testing.check_decoder_without_batchnorm(model)  # every decoder conv with a bias


def test_decoder_use_norm_values():
    testing.check_decoder_norm_option("unet", _decoder_norms, decoder_channels=SMALL)


def test_layernorm_normalises_over_channels():
    model = tiny_unet(decoder_use_norm="layernorm").eval()
    norm = model.decoder.blocks[0].conv1[1]
    x = torch.randn(2, norm.normalized_shape[0], 5, 7) * 3 + 2
    with torch.no_grad():
        y = norm(x)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 5, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(2, 5, 7), atol=1e-3, rtol=0)


def test_scse_attention_sits_after_fusion_and_after_conv2():
    model = tiny_unet(decoder_attention_type="scse")
    first, last = model.decoder.blocks[0], model.decoder.blocks[-1]
    assert first.attention1.attention.cSE[1].in_channels == 40 + 32  # deepest + skip
    assert first.attention2.attention.cSE[1].in_channels == SMALL[0]
    assert last.attention1.attention.cSE[1].in_channels == SMALL[3]  # no skip at full size
    # channel reduction 16: 72 -> 4 hidden channels
    assert first.attention1.attention.cSE[1].out_channels == 72 // 16


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "nearest-exact"])
def test_each_interpolation_mode_is_used(mode):
    model = tiny_unet(decoder_interpolation=mode).eval()
    assert {b.interpolation_mode for b in model.decoder.blocks} == {mode}
    with torch.no_grad():
        assert model(torch.randn(1, 3, 63, 65)).shape == (1, 1, 63, 65)


def test_interpolation_modes_change_the_output():
    testing.check_option_changes_output("unet", "decoder_interpolation", "nearest", "bilinear",
                                        decoder_channels=SMALL)


def test_options_are_normalised_and_stored_in_config():
    model = tiny_unet(decoder_channels=[20, 18, 16, 14, 12], decoder_attention_type="scse",
                      decoder_interpolation="bicubic")
    assert model.options.decoder_channels == (20, 18, 16, 14, 12)
    testing.check_stored_options(model, "unet", UnetOptions, {
        "decoder_channels": [20, 18, 16, 14, 12], "decoder_attention_type": "scse",
        "decoder_interpolation": "bicubic", "decoder_use_norm": True})


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("unet", decoder_channels=SMALL)


# -- errors --------------------------------------------------------------------------------
def test_unknown_options_are_refused_with_suggestions():
    testing.check_unknown_options("unet", "decoder_chanels", "decoder_channels",
                                  decoder_channels=SMALL)
    testing.check_unknown_options("unet", "decoder_attention", "decoder_attention_type",
                                  decoder_channels=SMALL)


def test_decoder_channels_of_the_wrong_length():
    testing.check_decoder_channels_errors("unet")
    with pytest.raises(InvalidOptionError) as info:  # the words Unet uses
        Unet(TINY, encoder_weights=None, decoder_channels=(256, 128, 64, 32))
    assert str(info.value).startswith(
        "decoder_channels has 4 values but encoder_depth=5 needs 5: use (256, 128, 64, 32, 16)"
    )


@pytest.mark.parametrize("depth", [2, 6, 0])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("unet", depth, decoder_channels=(8,) * max(depth, 1))


def test_bad_attention_type():
    with pytest.raises(InvalidOptionError, match=r"decoder_attention_type.*'scse'.*'cbam'"):
        tiny_unet(decoder_attention_type="cbam")


def test_bad_interpolation():
    with pytest.raises(InvalidOptionError, match=r"decoder_interpolation.*'nearest'.*'bilinear'"):
        tiny_unet(decoder_interpolation="linear")


def test_bad_norm_options_name_the_valid_ones():
    testing.check_decoder_norm_errors("unet", decoder_channels=SMALL)


# -- public API ----------------------------------------------------------------------------
def test_segcore_unet_resolves_to_the_plugin_class():
    assert segcore.Unet is segcore_unet.Unet
    assert "unet" in segcore.list_architectures()


def test_documented_signature():
    testing.check_documented_signature(
        Unet,
        ["encoder_name", "encoder_depth", "encoder_weights", "decoder_use_batchnorm",
         "decoder_channels", "decoder_attention_type", "in_channels", "classes", "activation",
         "aux_params"],
        {"encoder_depth": 5, "decoder_use_batchnorm": True,
         "decoder_channels": (256, 128, 64, 32, 16), "decoder_attention_type": None,
         "decoder_use_norm": None, "decoder_interpolation": "nearest"},
        keyword_only=["decoder_use_norm", "decoder_interpolation"],
    )


def test_build_defaults_to_no_weights():
    testing.check_default_weights("unet", decoder_channels=SMALL)


def test_positional_arguments_follow_the_documented_order():
    model = Unet(TINY, 4, None, False, (16, 12, 10, 8), "scse", 2, 3, "sigmoid")
    assert model.encoder.depth == 4
    assert model.options.decoder_use_norm is False
    assert model.options.decoder_attention_type == "scse"
    testing.check_sigmoid_outputs(model, 2, 3)


def test_unused_attention_of_the_last_block_is_frozen():
    model = tiny_unet(decoder_attention_type="scse")
    testing.check_unused_parameters_frozen(model, model.decoder.blocks[-1].attention1,
                                           torch.randn(2, 3, 64, 64))


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
def test_compile_fullgraph_on_an_odd_size():
    testing.check_compile(tiny_unet(classes=2, decoder_attention_type="scse"),
                          torch.randn(1, 3, 63, 65))


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_unet(aux_params={"classes": 3}), torch.randn(2, 3, 64, 64))


def test_torch_export():
    testing.check_export(tiny_unet(classes=3, decoder_interpolation="bilinear"),
                         torch.randn(1, 3, 63, 65))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_unet(classes=2), torch.randn(2, 3, 64, 64))


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_unet(classes=2, decoder_attention_type="scse", decoder_interpolation="bilinear",
                      decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                      aux_params={"classes": 3, "dropout": 0.2})
    # "_architecture" is segcore's key; SMP reads "_model_class"
    testing.check_save_load(model, torch.randn(1, 3, 63, 65), tmp_path / "unet", config={
        "_architecture": "unet", "decoder_use_norm": {"type": "layernorm", "eps": 1e-3}})
