"""PSPNet: conformance, module tree, decoder math, options and errors (tiny test encoder only)."""

from __future__ import annotations

import pytest
import segcore_pspnet
import torch
import torch.nn.functional as F
from segcore_pspnet import PSPNet, PSPNetOptions
from segcore_pspnet.decoder import POOL_SIZES, PSPBlock, PSPDecoder, PSPModule
from torch import nn

import segcore
import segcore.factory
from segcore import testing
from segcore.errors import (
    InputShapeError,
    InvalidOptionError,
)
from segcore.testing import reference_conv_norm_relu as conv_norm_relu

TINY = testing.TINY_ENCODER
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)  # the test encoder's out_channels at depth 5
SMALL = {"psp_out_channels": 16}  # small decoder keeps the tests fast


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_pspnet(**kwargs) -> PSPNet:
    torch.manual_seed(0)
    return PSPNet(TINY, encoder_weights=None, **{**SMALL, **kwargs})


@pytest.fixture
def build_depth(monkeypatch):
    """Make ``segcore.build`` default to a given ``encoder_depth`` (the kit builds with it).

    ``segcore.build`` passes ``encoder_depth=5`` when none is given, whereas PSPNet's own
    default is 3 (and its ``upsampling=8`` matches depth 3 only). Until the core's ``build``
    leaves the depth to the class, the conformance kit's aux-head, gradient and config checks
    (which call ``build`` without a depth) are pointed at the depth under test.
    """

    def patch(depth: int) -> None:
        original = segcore.factory.build

        def build(architecture, *args, **kwargs):
            kwargs.setdefault("encoder_depth", depth)
            return original(architecture, *args, **kwargs)

        monkeypatch.setattr(segcore.factory, "build", build)

    return patch


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options(build_depth):
    build_depth(3)  # the class's default depth, which goes with the default upsampling=8
    testing.check_architecture("pspnet", TINY, depths=(3,))


@pytest.mark.parametrize(
    ("depth", "options"),
    [
        (3, {"psp_out_channels": 16}),
        (3, {"psp_use_batchnorm": False, "psp_dropout": 0.0}),
        (3, {"psp_dropout": 0.5}),
        (3, {"upsampling": 8, "decoder_use_norm": "layernorm"}),
        (3, {"decoder_use_norm": {"type": "instancenorm", "affine": True}}),
        (3, {"decoder_use_norm": "identity", "psp_use_batchnorm": True}),
        (4, {"upsampling": 16, "psp_out_channels": 24}),
        (5, {"upsampling": 32, "psp_use_batchnorm": False}),
    ],
    ids=["out-channels", "no-norm-no-dropout", "dropout", "layernorm", "instancenorm",
         "identity", "depth-4", "depth-5"],
)
def test_conformance_kit_with_options(build_depth, depth, options):
    build_depth(depth)
    testing.check_architecture("pspnet", TINY, depths=(depth,), classes=(2,), in_channels=(3,),
                               **options)


@pytest.mark.parametrize(("depth", "upsampling"), [(3, 8), (4, 16), (5, 32)])
@pytest.mark.parametrize(("in_channels", "classes"), [(1, 5), (4, 1), (3, 2)])
def test_upsampling_of_two_to_the_depth_gives_masks_of_the_input_size(
    depth, upsampling, in_channels, classes
):
    model = tiny_pspnet(encoder_depth=depth, upsampling=upsampling, in_channels=in_channels,
                        classes=classes).eval()
    with torch.no_grad():
        mask = model(torch.randn(2, in_channels, 64, 64))
    assert mask.shape == (2, classes, 64, 64)


@pytest.mark.parametrize(("depth", "size"), [(4, 32), (5, 16)])
def test_default_upsampling_at_deeper_depths_gives_smaller_masks_as_smp(depth, size):
    model = tiny_pspnet(encoder_depth=depth).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, size, size)


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_in_channels(in_channels):
    model = tiny_pspnet(in_channels=in_channels).eval()
    assert model.encoder.stages[0][0].in_channels == in_channels
    with torch.no_grad():
        assert model(torch.randn(1, in_channels, 32, 48)).shape == (1, 1, 32, 48)
    with pytest.raises(InputShapeError, match=f"in_channels={in_channels}"):
        model(torch.randn(1, in_channels + 1, 32, 32))


# -- module tree ---------------------------------------------------------------------------
def test_state_dict_keys_follow_smp_layout():
    keys = [k for k in tiny_pspnet().state_dict() if not k.startswith("encoder.")]
    expected = ["decoder.psp.blocks.0.pool.1.0.weight", "decoder.psp.blocks.0.pool.1.0.bias"]
    for index in (1, 2, 3):  # 2x2, 3x3, 6x6 levels: conv without bias, then batch norm
        expected += [f"decoder.psp.blocks.{index}.pool.1.0.weight"] + [
            f"decoder.psp.blocks.{index}.pool.1.1.{name}"
            for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        ]
    expected += ["decoder.conv.0.weight"] + [
        f"decoder.conv.1.{name}"
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    ]
    expected += ["segmentation_head.0.weight", "segmentation_head.0.bias"]
    assert keys == expected


def test_module_tree_and_channels():
    model = tiny_pspnet(psp_out_channels=20, classes=3)
    names = [name for name, _ in model.named_modules() if not name.startswith("encoder")]
    expected = ["", "decoder", "decoder.psp", "decoder.psp.blocks"]
    for index in range(4):
        block = f"decoder.psp.blocks.{index}"
        expected += [block, f"{block}.pool", f"{block}.pool.0", f"{block}.pool.1",
                     f"{block}.pool.1.0", f"{block}.pool.1.1", f"{block}.pool.1.2"]
    expected += ["decoder.conv", "decoder.conv.0", "decoder.conv.1", "decoder.conv.2",
                 "decoder.dropout", "segmentation_head", "segmentation_head.0",
                 "segmentation_head.1", "segmentation_head.2", "segmentation_head.2.activation"]
    assert names == expected
    decoder = model.decoder
    assert isinstance(decoder, PSPDecoder) and isinstance(decoder.psp, PSPModule)
    assert [block.pool_size for block in decoder.psp.blocks] == list(POOL_SIZES)
    for block, size in zip(decoder.psp.blocks, POOL_SIZES):
        assert isinstance(block, PSPBlock)
        assert block.pool[0].output_size == (size, size)
        conv = block.pool[1][0]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (24, 6, (1, 1))
    # the pyramid (4 x 24 // 4) plus the feature itself: twice the deepest channels
    assert decoder.conv[0].in_channels == 48 and decoder.conv[0].out_channels == 20
    assert isinstance(decoder.dropout, nn.Dropout2d) and decoder.dropout.p == 0.2
    head = model.segmentation_head
    assert (head[0].in_channels, head[0].out_channels, head[0].kernel_size) == (20, 3, (3, 3))
    assert isinstance(head[1], nn.Upsample) and head[1].scale_factor == 8
    assert head[1].mode == "bilinear" and head[1].align_corners


def test_the_one_bin_level_is_never_normalised():
    model = tiny_pspnet()
    first = model.decoder.psp.blocks[0].pool[1]
    assert isinstance(first[1], nn.Identity) and first[0].bias is not None
    assert isinstance(first[2], nn.ReLU)
    for block in model.decoder.psp.blocks[1:]:
        assert isinstance(block.pool[1][1], nn.BatchNorm2d) and block.pool[1][0].bias is None


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_encoder_depth_chooses_the_deepest_features(depth):
    model = tiny_pspnet(encoder_depth=depth, upsampling=2**depth)
    channels = TINY_CHANNELS[depth]
    assert model.encoder.depth == depth
    assert model.decoder.psp.blocks[0].pool[1][0].in_channels == channels
    assert model.decoder.psp.blocks[0].pool[1][0].out_channels == channels // 4
    assert model.decoder.conv[0].in_channels == 2 * channels


def test_channels_not_divisible_by_four_still_fit():
    # SMP sizes the fusion as 2 * channels; the pyramid's own count is the same when the
    # channels are divisible by 4 and also works when they are not
    module = PSPModule(10)
    assert module.out_channels == 10 + 4 * 2
    decoder = PSPDecoder((3, 10), out_channels=8).eval()
    assert decoder.conv[0].in_channels == 18
    with torch.no_grad():
        assert decoder([torch.randn(1, 3, 8, 8), torch.randn(1, 10, 4, 4)]).shape == (1, 8, 4, 4)


# -- decoder math against a hand-written reference ----------------------------------------
def _reference_decoder(decoder, feature):
    height, width = feature.shape[2:]
    levels = []
    for block in decoder.psp.blocks:
        pooled = F.adaptive_avg_pool2d(feature, block.pool_size)
        pooled = conv_norm_relu(pooled, block.pool[1])
        levels.append(F.interpolate(pooled, size=(height, width), mode="bilinear",
                                    align_corners=True))
    return conv_norm_relu(torch.cat([*levels, feature], dim=1), decoder.conv)


@pytest.mark.parametrize("use_norm", [True, False])
@pytest.mark.parametrize("size", [(8, 8), (5, 7), (4, 4), (12, 2)])
def test_decoder_matches_reference_formula(use_norm, size):
    decoder = PSPDecoder((3, 8, 16, 24), use_norm=use_norm, out_channels=12).eval()
    testing.randomise_weights(decoder)
    feature = torch.randn(2, 24, *size)
    with torch.no_grad():
        actual = decoder([torch.randn(2, 3, 1, 1), feature])
        expected = _reference_decoder(decoder, feature)
    assert actual.shape == (2, 12, *size)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_whole_model_matches_reference_chain():
    model = tiny_pspnet(classes=2).eval()
    testing.randomise_weights(model.decoder)
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        feature = model.encoder(x)[-1]  # 6x8 at depth 3
        head = model.segmentation_head
        logits = F.conv2d(_reference_decoder(model.decoder, feature), head[0].weight,
                          head[0].bias, padding=1)
        expected = F.interpolate(logits, scale_factor=8, mode="bilinear", align_corners=True)
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_onnx_export_path_computes_the_same_bins(monkeypatch):
    block = PSPBlock(8, 4, pool_size=3).eval()
    testing.randomise_weights(block)
    x = torch.randn(1, 8, 7, 10)  # bins that do not divide the map
    with torch.no_grad():
        expected = block(x)
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
        actual = block(x)
    torch.testing.assert_close(actual, expected)


# -- options and their effects --------------------------------------------------------------
def _normalised_layers(model):
    return [block.pool[1][1] for block in model.decoder.psp.blocks[1:]] + [model.decoder.conv[1]]


@pytest.mark.parametrize("upsampling", [1, 2, 4, 8, 16])
def test_upsampling_changes_the_head_and_the_mask_size(upsampling):
    model = tiny_pspnet(upsampling=upsampling).eval()
    head = model.segmentation_head
    if upsampling == 1:
        assert isinstance(head[1], nn.Identity)
    else:
        assert isinstance(head[1], nn.Upsample) and head[1].scale_factor == upsampling
    with torch.no_grad():
        mask = model(torch.randn(1, 3, 64, 32))
    assert mask.shape == (1, 1, 8 * upsampling, 4 * upsampling)
    assert model.config["upsampling"] == upsampling


def test_psp_out_channels_change_the_fusion_and_the_head():
    model = tiny_pspnet(psp_out_channels=40)
    assert model.decoder.conv[0].out_channels == 40
    assert model.decoder.conv[1].num_features == 40
    assert model.decoder.out_channels == 40
    assert model.segmentation_head[0].in_channels == 40
    # the pyramid branches do not depend on it
    assert {b.pool[1][0].out_channels for b in model.decoder.psp.blocks} == {6}


def test_default_psp_out_channels_is_512():
    model = PSPNet(TINY, encoder_weights=None)
    assert model.decoder.conv[0].out_channels == 512
    assert model.segmentation_head[0].in_channels == 512


def test_default_norm_is_batchnorm_without_conv_bias():
    model = tiny_pspnet()
    assert all(isinstance(n, nn.BatchNorm2d) for n in _normalised_layers(model))
    convs = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.bias is None for c in convs] == [False, True, True, True, True]
    assert model.config["decoder_use_norm"] is True


def test_psp_use_batchnorm_false_removes_batchnorm_and_adds_bias():
    model = tiny_pspnet(psp_use_batchnorm=False)
    testing.check_decoder_without_batchnorm(model)  # every decoder conv with a bias


def test_decoder_use_norm_values():
    testing.check_decoder_norm_option("pspnet", _normalised_layers,
                                      batchnorm_option="psp_use_batchnorm", **SMALL)
    for value in (True, "batchnorm", "layernorm", "instancenorm"):  # the 1x1 level: never
        assert isinstance(tiny_pspnet(decoder_use_norm=value).decoder.psp.blocks[0].pool[1][1],
                          nn.Identity)


@pytest.mark.parametrize("dropout", [0.0, 0.2, 0.5])
def test_psp_dropout_drops_whole_channels_in_training_only(dropout):
    model = tiny_pspnet(psp_dropout=dropout, psp_use_batchnorm=False)  # no batch statistics
    assert isinstance(model.decoder.dropout, nn.Dropout2d) and model.decoder.dropout.p == dropout
    testing.check_decoder_channel_dropout(model, dropout, torch.randn(2, 3, 64, 64))


def test_options_are_normalised_and_stored_in_config():
    model = tiny_pspnet(psp_out_channels=24, psp_dropout=0.1, upsampling=4,
                        decoder_use_norm={"type": "batchnorm", "eps": 1e-3})
    assert isinstance(model.options, PSPNetOptions)
    assert model.options == PSPNetOptions(psp_out_channels=24, psp_dropout=0.1, upsampling=4,
                                          decoder_use_norm={"type": "batchnorm", "eps": 1e-3})
    config = model.config
    assert config["architecture"] == "pspnet"
    assert config["encoder_depth"] == 3
    assert (config["psp_out_channels"], config["psp_dropout"], config["upsampling"]) == (
        24, 0.1, 4)
    assert config["decoder_use_norm"] == {"type": "batchnorm", "eps": 1e-3}
    assert "psp_use_batchnorm" not in config  # stored as decoder_use_norm


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("pspnet", **SMALL)


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typo", "right"),
    [("psp_out_channel", "psp_out_channels"), ("psp_use_batchnom", "psp_use_batchnorm"),
     ("decoder_use_nrom", "decoder_use_norm"), ("psp_droput", "psp_dropout")],
)
def test_unknown_option_suggests_the_right_name(typo, right):
    testing.check_unknown_options("pspnet", typo, right, **SMALL)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("psp_out_channels", 0, r"psp_out_channels must be a positive int, got 0"),
        ("psp_out_channels", 16.0, r"psp_out_channels must be a positive int, got 16.0"),
        ("psp_out_channels", True, r"psp_out_channels must be a positive int, got True"),
        ("psp_dropout", 1.0, r"psp_dropout must be a number in \[0, 1\), got 1.0"),
        ("psp_dropout", -0.1, r"psp_dropout must be a number in \[0, 1\)"),
        ("psp_dropout", "0.2", r"psp_dropout must be a number in \[0, 1\)"),
        ("upsampling", 0, r"upsampling must be a positive int, got 0"),
        ("upsampling", 2.5, r"upsampling must be a positive int"),
        ("psp_use_batchnorm", "yes", r"psp_use_batchnorm must be True, False or 'inplace'"),
        ("psp_use_batchnorm", None, r"psp_use_batchnorm must be True, False or 'inplace'"),
        ("psp_use_batchnorm", 2.5, r"psp_use_batchnorm must be True, False or 'inplace'"),
        ("decoder_use_norm", "groupnorm",
         r"decoder_use_norm.*'batchnorm', 'identity', 'layernorm', 'instancenorm', 'inplace'"),
        ("decoder_use_norm", 3, r"decoder_use_norm"),
        ("decoder_use_norm", {"type": "batchnorm2d"}, r"decoder_use_norm.*'type'"),
        ("activation", "softplus", r"unknown activation 'softplus'.*'sigmoid'"),
        ("classes", 0, r"classes must be a positive int"),
        ("in_channels", 0, r"in_channels must be a positive int"),
    ],
)
def test_bad_option_values_name_the_valid_ones(option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_pspnet(**{option: value})


@pytest.mark.parametrize(
    ("aux_params", "message"),
    [({"pooling": "avg"}, "needs 'classes'"), ({"classes": 2, "pooling": "mean"}, "'avg' or 'max'"),
     ({"classes": 2, "dropout": 1.5}, r"\[0, 1\)"), ({"classes": 2, "colour": 1}, "valid keys")],
)
def test_bad_aux_params(aux_params, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_pspnet(aux_params=aux_params)


def test_bad_norm_options_name_the_valid_ones():
    testing.check_decoder_norm_errors("pspnet", batchnorm_option="psp_use_batchnorm",
                                      **SMALL)


@pytest.mark.parametrize("depth", [2, 1, 6])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("pspnet", depth, **SMALL)


def test_other_sizes_are_padded_or_refused_on_request():
    model = tiny_pspnet()  # depth 3: output stride 8, a multiple of 8 is enough (as in SMP)
    testing.check_input_divisor(model, 8, (70, 64))
    testing.check_input_divisor(model, 8, (41, 56))
    testing.check_input_divisor(tiny_pspnet(encoder_depth=5, upsampling=32), 32, (40, 64))


# -- public API ----------------------------------------------------------------------------
def test_segcore_pspnet_resolves_to_the_plugin_class():
    assert segcore.PSPNet is segcore_pspnet.PSPNet
    assert "pspnet" in segcore.list_architectures()
    assert segcore.get_architecture_class("pspnet") is PSPNet
    assert PSPNet.architecture == "pspnet"
    assert PSPNet.requires_divisible_input_shape and not PSPNet.requires_dilation
    assert PSPNet.min_encoder_depth == 3


def test_documented_signature():
    testing.check_documented_signature(
        PSPNet,
        ["encoder_name", "encoder_weights", "encoder_depth", "psp_out_channels",
         "psp_use_batchnorm", "psp_dropout", "in_channels", "classes", "activation",
         "upsampling", "aux_params"],
        # decoder_use_norm=None follows psp_use_batchnorm
        {"encoder_depth": 3, "psp_out_channels": 512, "psp_use_batchnorm": True,
         "psp_dropout": 0.2, "upsampling": 8, "decoder_use_norm": None},
        keyword_only=["decoder_use_norm"],
    )


def test_positional_arguments_follow_the_documented_order():
    model = PSPNet(TINY, None, 4, 12, False, 0.1, 2, 3, "sigmoid", 16)
    assert model.encoder.depth == 4
    assert model.options == PSPNetOptions(psp_out_channels=12, decoder_use_norm=False,
                                          psp_dropout=0.1, upsampling=16)
    testing.check_sigmoid_outputs(model, 2, 3)


def test_build_defaults_to_no_weights():
    testing.check_default_weights("pspnet", **SMALL)


def test_build_uses_the_documented_default_depth():
    model = segcore.build("pspnet", encoder=TINY, **SMALL).eval()
    assert model.encoder.depth == 3
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
@pytest.mark.parametrize(
    "options",
    [
        {"classes": 2, "psp_dropout": 0.3, "upsampling": 16, "encoder_depth": 4,
         "aux_params": {"classes": 3, "dropout": 0.2}},
        {"psp_use_batchnorm": False, "activation": "sigmoid"},
        {"decoder_use_norm": {"type": "layernorm", "eps": 1e-3}, "in_channels": 1},
    ],
    ids=["aux-depth-4", "no-norm", "layernorm-dict"],
)
def test_save_pretrained_round_trip(tmp_path, options):
    model = tiny_pspnet(**options)
    testing.randomise_weights(model.decoder, seed=2)  # so that the comparison means something
    x = torch.randn(1, options.get("in_channels", 3), 64, 48)
    loaded = testing.check_save_load(model, x, tmp_path / "pspnet", config={
        "_architecture": "pspnet",  # segcore's key; SMP reads "_model_class"
        "encoder_depth": options.get("encoder_depth", 3), "psp_out_channels": 16})
    assert loaded.state_dict().keys() == model.state_dict().keys()


def test_training_with_a_batch_of_one():
    # the 1x1 pyramid level has no batch norm, so a single image trains (as in SMP)
    model = tiny_pspnet().train()
    model(torch.randn(1, 3, 64, 64)).mean().backward()


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_pspnet(aux_params={"classes": 3}), torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_pspnet(classes=3), torch.randn(1, 3, 64, 64))


def test_channels_last_gives_the_same_output():
    model = tiny_pspnet(classes=2)
    testing.randomise_weights(model.decoder, seed=2)
    testing.check_channels_last(model, torch.randn(2, 3, 64, 64))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("pspnet", "segcore_pspnet")
