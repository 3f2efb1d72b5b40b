"""UnetPlusPlus: shapes, module tree, decoder math, options and errors (tiny test encoder only)."""

from __future__ import annotations

import inspect

import pytest
import segcore_unetplusplus
import torch
import torch.nn.functional as F
from segcore_unetplusplus import UnetPlusPlus, UnetPlusPlusOptions
from segcore_unetplusplus.decoder import (
    UnetPlusPlusCenterBlock,
    UnetPlusPlusDecoder,
    UnetPlusPlusDecoderBlock,
)
from torch import nn

import segcore
from segcore import testing
from segcore.errors import (
    InputShapeError,
    InvalidOptionError,
)
from segcore.testing import reference_conv_norm_relu as conv_norm_relu

TINY = testing.TINY_ENCODER
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)  # the test encoder's out_channels at depth 5
SMALL = (32, 24, 16, 12, 8)  # small decoder channels keep the tests fast
DEFAULT = (256, 128, 64, 32, 16)
# SMP's node order at depth 5: column by column (deepest first), rows top-down, then the last
NODES_DEPTH5 = ["x_0_0", "x_0_1", "x_1_1", "x_0_2", "x_1_2", "x_2_2",
                "x_0_3", "x_1_3", "x_2_3", "x_3_3", "x_0_4"]


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_model(**kwargs) -> UnetPlusPlus:
    kwargs.setdefault("decoder_channels", SMALL[: kwargs.get("encoder_depth", 5)])
    torch.manual_seed(0)
    return UnetPlusPlus(TINY, encoder_weights=None, **kwargs)


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    # decoder_channels is given so the kit can trim it to depths 3 and 4 (one value per stage,
    # as in SMP; the default alone only fits encoder_depth=5)
    testing.check_architecture("unetplusplus", TINY, decoder_channels=DEFAULT)


@pytest.mark.parametrize(
    "options",
    [
        {"decoder_attention_type": "scse"},
        {"decoder_use_batchnorm": False},
        {"decoder_use_norm": "layernorm"},
        {"decoder_use_norm": {"type": "instancenorm", "affine": True}},
        {"decoder_interpolation": "bilinear"},
        {"decoder_interpolation": "area"},
        {"decoder_channels": (48, 40, 24, 16, 4)},
    ],
    ids=["scse", "no-batchnorm", "layernorm", "instancenorm", "bilinear", "area", "channels"],
)
def test_conformance_kit_with_options(options):
    options = {"decoder_channels": SMALL, **options}
    testing.check_architecture("unetplusplus", TINY, depths=(3, 5), classes=(2,),
                               in_channels=(3,), **options)


@pytest.mark.parametrize(("depth", "in_channels", "classes"),
                         [(3, 1, 5), (4, 4, 1), (5, 3, 5), (5, 1, 2)])
def test_mask_shape(depth, in_channels, classes):
    model = tiny_model(encoder_depth=depth, in_channels=in_channels, classes=classes).eval()
    with torch.no_grad():
        mask = model(torch.randn(2, in_channels, 64, 64))
    assert mask.shape == (2, classes, 64, 64)
    # a triangle of depth * (depth - 1) / 2 nodes with skips, plus the last one
    assert len(model.decoder.blocks) == depth * (depth - 1) // 2 + 1
    assert model.encoder.in_channels == in_channels


@pytest.mark.parametrize("size", [(63, 64), (64, 80), (48, 64), (33, 47)])
def test_other_sizes_are_padded_to_the_output_stride_and_cropped(size):
    model = tiny_model(classes=2).eval()
    x = torch.randn(1, 3, *size)
    padded = F.pad(x, (0, -size[1] % 32, 0, -size[0] % 32))  # zeros, bottom and right
    assert padded.shape[2] % 32 == 0 and padded.shape[3] % 32 == 0
    with torch.no_grad():
        mask = model(x)
        expected = model(padded)[..., : size[0], : size[1]]
    assert mask.shape == (1, 2, *size)
    torch.testing.assert_close(mask, expected)


@pytest.mark.parametrize("size", [(63, 64), (64, 80), (33, 47)])
def test_without_padding_other_sizes_are_refused(size):
    model = tiny_model().eval()
    model.pad_inputs = False  # SMP's strict behaviour
    with pytest.raises(InputShapeError, match=r"divisible by 32.*nearest valid size"):
        model(torch.randn(1, 3, *size))


def test_the_divisor_is_the_output_stride_of_the_shallower_encoder():
    model = tiny_model(encoder_depth=4).eval()  # deepest features at 1/16
    assert model.input_divisor() == 16
    with torch.no_grad():
        assert model(torch.randn(1, 3, 48, 80)).shape == (1, 1, 48, 80)
    model.pad_inputs = False
    with torch.no_grad():
        assert model(torch.randn(1, 3, 48, 80)).shape == (1, 1, 48, 80)
    with pytest.raises(InputShapeError, match="divisible by 16"):
        model(torch.randn(1, 3, 40, 80))


# -- module tree ---------------------------------------------------------------------------
def test_nodes_are_named_and_ordered_like_smp():
    model = UnetPlusPlus(TINY, encoder_weights=None)  # documented default decoder channels
    assert list(model.decoder.blocks) == NODES_DEPTH5
    assert list(tiny_model(encoder_depth=3).decoder.blocks) == ["x_0_0", "x_0_1", "x_1_1",
                                                               "x_0_2"]
    assert list(model.state_dict())[-2:] == ["segmentation_head.0.weight",
                                             "segmentation_head.0.bias"]


def test_node_channels_follow_the_nested_wiring():
    model = UnetPlusPlus(TINY, encoder_weights=None)  # decoder (256, 128, 64, 32, 16)
    blocks = model.decoder.blocks
    # (conv1 in, conv1 out): the upsampled map plus all skips of the node
    expected = {
        "x_0_0": (40 + 32, 256),
        "x_0_1": (256 + 24 * 2, 128), "x_1_1": (32 + 24, 24),
        "x_0_2": (128 + 16 * 3, 64), "x_1_2": (24 + 16 * 2, 16), "x_2_2": (24 + 16, 16),
        "x_0_3": (64 + 8 * 4, 32), "x_1_3": (16 + 8 * 3, 8), "x_2_3": (16 + 8 * 2, 8),
        "x_3_3": (16 + 8, 8),
        "x_0_4": (32, 16),  # the last node has no skip
    }
    actual = {name: (b.conv1[0].in_channels, b.conv1[0].out_channels)
              for name, b in blocks.items()}
    assert actual == expected
    assert all(b.conv2[0].in_channels == b.conv2[0].out_channels for b in blocks.values())
    assert isinstance(model.decoder.center, nn.Identity)
    assert model.segmentation_head[0].in_channels == 16
    assert model.segmentation_head[0].kernel_size == (3, 3)
    assert isinstance(model.segmentation_head[1], nn.Identity)  # no upsampling in the head


def test_state_dict_keys_follow_smp_layout():
    keys = set(tiny_model(decoder_attention_type="scse").state_dict())
    for key in [
        "decoder.blocks.x_0_0.conv1.0.weight",
        "decoder.blocks.x_0_0.conv1.1.running_mean",
        "decoder.blocks.x_3_3.conv2.1.num_batches_tracked",
        "decoder.blocks.x_1_2.attention1.attention.cSE.1.weight",
        "decoder.blocks.x_2_3.attention1.attention.sSE.0.bias",
        "decoder.blocks.x_0_4.attention2.attention.cSE.3.weight",
        "segmentation_head.0.weight",
        "segmentation_head.0.bias",
    ]:
        assert key in keys, key
    assert not any(k.startswith("decoder.center") for k in keys)
    assert "decoder.blocks.x_0_0.conv1.0.bias" not in keys  # batchnorm: conv has no bias
    assert not any(k.startswith("decoder.blocks.x_4") for k in keys)


def test_vgg_encoders_get_smp_s_unused_center_block():
    vgg_spec = testing.tiny_encoder_spec("vgg_tiny_test", deepest_feature_pooled=True)
    with testing.specs_installed(encoders=[vgg_spec]):
        torch.manual_seed(0)
        model = UnetPlusPlus("vgg_tiny_test", encoder_weights=None, decoder_channels=SMALL,
                             decoder_use_batchnorm=False).eval()
    center = model.decoder.center
    assert isinstance(center, UnetPlusPlusCenterBlock)
    assert [(c[0].in_channels, c[0].out_channels) for c in center] == [(40, 40), (40, 40)]
    assert center[0][0].bias is not None  # follows the decoder norm (none here)
    assert "decoder.center.1.0.weight" in model.state_dict()
    # as in SMP, the center block is not applied: changing it changes nothing; it is frozen
    assert not any(p.requires_grad for p in center.parameters())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        for parameter in center.parameters():
            parameter.add_(1.0)
        torch.testing.assert_close(model(x), before)


# -- decoder math against a hand-written reference ----------------------------------------
def _node(block, x, skips, mode):
    x = F.interpolate(x, scale_factor=2.0, mode=mode)
    if block.is_empty:
        return x[:, :0]
    if skips:
        x = testing.reference_scse(torch.cat([x, *skips], 1), block.attention1.attention)
    x = conv_norm_relu(conv_norm_relu(x, block.conv1), block.conv2)
    return testing.reference_scse(x, block.attention2.attention)


def reference_unetplusplus(decoder, features, mode="nearest"):
    """The paper's recursion X[i, j] = H(U(X[i+1, j-1]), X[i, j-1], ..., X[i, 0]).

    ``i`` is the level (0: 1/2 of the input), ``j`` the node along the level's skip path
    (``X[i, 0]`` is the encoder feature). SMP names X[i, j] ``x_{row}_{column}`` with
    ``column = levels - 2 - i`` and ``row = column - j + 1``, and concatenates the skips from
    the latest node back to the encoder feature.
    """
    encoder = list(features[1:])
    levels = len(encoder)
    grid = {(i, 0): encoder[i] for i in range(levels)}
    for j in range(1, levels):
        for i in range(levels - j):
            column = levels - 2 - i
            block = decoder.blocks[f"x_{column - j + 1}_{column}"]
            skips = [grid[(i, k)] for k in range(j - 1, -1, -1)]
            grid[(i, j)] = _node(block, grid[(i + 1, j - 1)], skips, mode)
    return _node(decoder.blocks[f"x_0_{levels - 1}"], grid[(0, levels - 1)], [], mode)


@pytest.mark.parametrize("depth", [3, 4, 5])
@pytest.mark.parametrize("attention", [None, "scse"])
def test_decoder_matches_the_paper_recursion(depth, attention):
    model = tiny_model(encoder_depth=depth, decoder_attention_type=attention).eval()
    testing.randomise_weights(model.decoder)
    with torch.no_grad():
        features = model.encoder(torch.randn(2, 3, 64, 96))
        expected = reference_unetplusplus(model.decoder, features)
        actual = model.decoder(features)
    assert actual.shape == (2, SMALL[depth - 1], 64, 96)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "nearest-exact"])
@pytest.mark.parametrize("use_norm", [True, False])
def test_node_matches_the_reference_formula(mode, use_norm):
    block = UnetPlusPlusDecoderBlock(6, 9, 5, use_norm=use_norm, attention_type="scse",
                                     interpolation_mode=mode).eval()
    testing.randomise_weights(block)
    x, skip = torch.randn(2, 6, 5, 7), torch.randn(2, 9, 10, 14)
    with torch.no_grad():
        actual = block(x, skip)
        expected = _node(block, x, [skip], mode)
    assert actual.shape == (2, 5, 10, 14)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_an_encoder_stage_without_channels_gives_empty_nodes():
    spec = testing.tiny_encoder_spec("zero_stage_test", transformer_like=True)
    with testing.specs_installed(encoders=[spec]):
        model = UnetPlusPlus("zero_stage_test", encoder_weights=None, decoder_channels=SMALL,
                             decoder_attention_type="scse")
    blocks = model.decoder.blocks
    # the nodes at 1/2 other than the top row would output that stage's 0 channels
    assert [name for name, b in blocks.items() if b.is_empty] == ["x_1_3", "x_2_3", "x_3_3"]
    assert all(not list(blocks[n].parameters()) for n in ("x_1_3", "x_2_3", "x_3_3"))
    assert blocks["x_0_3"].conv1[0].in_channels == SMALL[2]  # its skips have no channels
    testing.randomise_weights(model.decoder)
    model.eval()
    with torch.no_grad():
        features = model.encoder(torch.randn(1, 3, 64, 64))
        torch.testing.assert_close(model.decoder(features),
                                   reference_unetplusplus(model.decoder, features))
    model.train()
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    trainable = [p for p in model.decoder.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)


def test_decoder_refuses_channels_of_the_wrong_length():
    with pytest.raises(InvalidOptionError, match="decoder_channels has 2 values"):
        UnetPlusPlusDecoder((3, 8, 16, 24), decoder_channels=(8, 8))


# -- options -------------------------------------------------------------------------------
def _decoder_norms(model):
    return [layer[1] for block in model.decoder.blocks.values()
            for layer in (block.conv1, block.conv2)]


def test_default_norm_is_batchnorm_without_conv_bias():
    model = tiny_model()
    testing.check_decoder_batchnorm(model, _decoder_norms(model))  # convs without bias
    assert all(isinstance(b.conv1[2], nn.ReLU) for b in model.decoder.blocks.values())


def test_decoder_use_batchnorm_false_removes_batchnorm_and_adds_bias():
    model = tiny_model(decoder_use_batchnorm=False)
    testing.check_decoder_without_batchnorm(model)  # every decoder conv with a bias


def test_decoder_use_norm_values():
    testing.check_decoder_norm_option("unetplusplus", _decoder_norms, decoder_channels=SMALL)


def test_scse_attention_sits_on_each_fused_input_and_output():
    model = tiny_model(decoder_attention_type="scse")
    blocks = model.decoder.blocks
    for block in blocks.values():
        fused = block.conv1[0].in_channels
        assert block.attention1.attention.cSE[1].in_channels == fused
        assert block.attention2.attention.cSE[1].in_channels == block.conv2[0].out_channels
    assert blocks["x_0_1"].attention1.attention.cSE[1].in_channels == SMALL[0] + 24 * 2
    # channel reduction 16: 80 -> 5 hidden channels
    assert blocks["x_0_1"].attention1.attention.cSE[1].out_channels == 80 // 16
    plain = tiny_model()
    assert all(isinstance(b.attention1.attention, nn.Identity)
               for b in plain.decoder.blocks.values())


def test_scse_changes_the_output():
    torch.manual_seed(0)
    plain = tiny_model().eval()
    scse = tiny_model(decoder_attention_type="scse").eval()
    scse.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(plain(x), scse(x))


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "nearest-exact"])
def test_each_interpolation_mode_is_used(mode, monkeypatch):
    model = tiny_model(decoder_interpolation=mode).eval()
    assert {b.interpolation_mode for b in model.decoder.blocks.values()} == {mode}
    seen = []
    interpolate = F.interpolate

    def spy(*args, **kwargs):
        seen.append((kwargs.get("mode"), kwargs.get("scale_factor")))
        return interpolate(*args, **kwargs)

    monkeypatch.setattr(F, "interpolate", spy)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 1, 64, 96)
    assert seen == [(mode, 2.0)] * len(model.decoder.blocks)


def test_interpolation_modes_change_the_output():
    testing.check_option_changes_output("unetplusplus", "decoder_interpolation", "nearest",
                                        "bilinear", decoder_channels=SMALL)


def test_decoder_channels_set_the_top_row_and_the_head():
    model = tiny_model(decoder_channels=(20, 18, 14, 10, 6))
    blocks = model.decoder.blocks
    assert [blocks[f"x_0_{c}"].conv2[0].out_channels for c in range(5)] == [20, 18, 14, 10, 6]
    # inner nodes keep the channels of the encoder stage at their resolution
    assert [blocks[n].conv2[0].out_channels for n in ("x_1_1", "x_1_2", "x_3_3")] == [24, 16, 8]
    assert model.segmentation_head[0].in_channels == 6


def test_options_are_normalised_and_stored_in_config():
    model = tiny_model(decoder_channels=[20, 18, 16, 14, 12], decoder_attention_type="scse",
                       decoder_interpolation="bicubic")
    assert model.options.decoder_channels == (20, 18, 16, 14, 12)
    testing.check_stored_options(model, "unetplusplus", UnetPlusPlusOptions, {
        "decoder_channels": [20, 18, 16, 14, 12], "decoder_attention_type": "scse",
        "decoder_interpolation": "bicubic", "decoder_use_norm": True})
    assert model.name == f"unetplusplus-{TINY}"


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("unetplusplus", decoder_channels=SMALL)


def test_options_class_documents_every_field():
    doc = UnetPlusPlusOptions.__doc__
    assert "Attributes:" in doc
    for name in UnetPlusPlusOptions.names():
        assert f"        {name}: " in doc, name


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(("typo", "right"), [("decoder_chanels", "decoder_channels"),
                                             ("decoder_interpolaton", "decoder_interpolation"),
                                             ("decoder_attention", "decoder_attention_type")])
def test_unknown_option_suggests_the_right_name(typo, right):
    # decoder typos are refused before the encoder sees them
    testing.check_unknown_options("unetplusplus", typo, right, decoder_channels=SMALL)


def test_decoder_channels_of_the_wrong_length():
    testing.check_decoder_channels_errors("unetplusplus")


@pytest.mark.parametrize("depth", [2, 6, 0, 1])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("unetplusplus", depth,
                                        decoder_channels=(8,) * max(depth, 1))


def test_too_shallow_names_the_architecture_and_the_minimum():
    with pytest.raises(InvalidOptionError, match=r"unetplusplus decoder needs at least 3.*3 to 5"):
        UnetPlusPlus(TINY, encoder_weights=None, encoder_depth=2, decoder_channels=(8, 8))


def test_bad_attention_type():
    with pytest.raises(InvalidOptionError, match=r"decoder_attention_type.*'scse'.*'cbam'"):
        tiny_model(decoder_attention_type="cbam")


def test_bad_interpolation():
    with pytest.raises(InvalidOptionError, match=r"decoder_interpolation.*'nearest'.*'bilinear'"):
        tiny_model(decoder_interpolation="linear")


def test_bad_norm_options_name_the_valid_ones():
    testing.check_decoder_norm_errors("unetplusplus", decoder_channels=SMALL)


@pytest.mark.parametrize(("argument", "value"),
                         [("in_channels", 0), ("classes", 0), ("activation", "relu6"),
                          ("aux_params", {"classes": 2, "pooling": "sum"})])
def test_bad_common_arguments(argument, value):
    with pytest.raises(InvalidOptionError, match=argument.split("_")[0]):
        tiny_model(**{argument: value})


# -- public API ----------------------------------------------------------------------------
def test_segcore_unetplusplus_resolves_to_the_plugin_class():
    assert segcore.UnetPlusPlus is segcore_unetplusplus.UnetPlusPlus
    assert "unetplusplus" in segcore.list_architectures()
    assert isinstance(segcore.build("unetplusplus", encoder=TINY, decoder_channels=SMALL),
                      UnetPlusPlus)


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("unetplusplus", "segcore_unetplusplus")


def test_documented_signature():
    testing.check_documented_signature(
        UnetPlusPlus,
        ["encoder_name", "encoder_depth", "encoder_weights", "decoder_use_batchnorm",
         "decoder_channels", "decoder_attention_type", "in_channels", "classes", "activation",
         "aux_params"],
        {"encoder_depth": 5, "decoder_use_batchnorm": True,
         "decoder_channels": (256, 128, 64, 32, 16), "decoder_attention_type": None,
         "decoder_use_norm": None, "decoder_interpolation": "nearest"},
        keyword_only=["decoder_use_norm", "decoder_interpolation"],
    )


def test_class_docstring_has_the_documented_sections():
    doc = inspect.getdoc(UnetPlusPlus)
    first, summary = doc.split("\n\n")[:2]
    assert "https://arxiv.org/abs/1807.10165" in first
    assert summary.count(". ") + summary.endswith(".") == 3
    for section in ("Args:", "Shapes:", "Example::"):
        assert section in doc
    for name in inspect.signature(UnetPlusPlus).parameters:
        assert f"    {'**' if name == 'kwargs' else ''}{name}:" in doc, name


def test_build_defaults_to_no_weights():
    testing.check_default_weights("unetplusplus", decoder_channels=SMALL)


def test_positional_arguments_follow_the_documented_order():
    model = UnetPlusPlus(TINY, 4, None, False, (16, 12, 10, 8), "scse", 2, 3, "sigmoid")
    assert model.encoder.depth == 4
    assert model.options.decoder_use_norm is False
    assert model.options.decoder_attention_type == "scse"
    testing.check_sigmoid_outputs(model, 2, 3)


def test_unused_attention_of_the_last_node_is_frozen():
    model = tiny_model(decoder_attention_type="scse")
    testing.check_unused_parameters_frozen(model, model.decoder.blocks["x_0_4"].attention1,
                                           torch.randn(2, 3, 64, 64))


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
def test_compile_fullgraph():
    model = tiny_model(classes=2, encoder_depth=4, decoder_attention_type="scse",
                       aux_params={"classes": 3})
    testing.check_compile(model, torch.randn(1, 3, 64, 96))


def test_torch_export():
    model = tiny_model(classes=3, decoder_interpolation="bilinear", encoder_depth=4)
    testing.check_export(model, torch.randn(1, 3, 64, 48))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_model(classes=2), torch.randn(2, 3, 64, 64))


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_model(classes=2, decoder_attention_type="scse", decoder_interpolation="bilinear",
                       decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                       aux_params={"classes": 3, "dropout": 0.2})
    testing.check_save_load(model, torch.randn(1, 3, 64, 96), tmp_path / "upp", config={
        "_architecture": "unetplusplus",  # segcore's key; SMP reads "_model_class"
        "decoder_use_norm": {"type": "layernorm", "eps": 1e-3},
        "decoder_channels": list(SMALL)})


def test_round_trip_of_a_shallower_model_without_batchnorm(tmp_path):
    model = tiny_model(encoder_depth=3, decoder_use_batchnorm=False, in_channels=4)
    loaded = testing.check_save_load(model, torch.randn(1, 4, 64, 64), tmp_path)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.decoder.modules())
    assert list(loaded.decoder.blocks) == ["x_0_0", "x_0_1", "x_1_1", "x_0_2"]


def test_a_training_step_changes_the_decoder_and_the_head():
    model = tiny_model(classes=2).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = torch.randint(0, 2, (2, 64, 64))
    loss = nn.functional.cross_entropy(model(torch.randn(2, 3, 64, 64)), target)
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    for key in ("decoder.blocks.x_3_3.conv1.0.weight", "decoder.blocks.x_0_4.conv2.0.weight",
                "segmentation_head.0.weight", "encoder.stages.0.0.weight"):
        assert not torch.equal(before[key], after[key]), key
