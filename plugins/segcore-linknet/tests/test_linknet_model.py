"""Linknet: shapes, module tree, decoder math, options, errors and the documented API.

Only core and this plugin are needed: every model uses the kit's tiny encoder.
"""

from __future__ import annotations

import inspect
import re

import attrs
import pytest
import segcore_linknet
import torch
import torch.nn.functional as F
from segcore_linknet import Linknet, LinknetOptions
from segcore_linknet.decoder import LinknetDecoder, LinknetDecoderBlock, TransposeX2
from torch import nn

import segcore
from segcore import testing
from segcore.errors import (
    EncoderCapabilityError,
    InputShapeError,
    InvalidOptionError,
    UnknownOptionError,
)

TINY = testing.TINY_ENCODER
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)  # the test encoder's out_channels at depth 5
# Linknet block i: channels[i] -> channels[i] // 4 -> channels[i + 1], deepest first, the last
# block ending at 32 channels (the segmentation head's input)
BLOCK_CHANNELS = [(40, 10, 32), (32, 8, 24), (24, 6, 16), (16, 4, 8), (8, 2, 32)]


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_linknet(**kwargs) -> Linknet:
    torch.manual_seed(0)
    return Linknet(TINY, encoder_weights=None, **kwargs)


def _block_layers(model):
    """The 3 layers (conv-norm-ReLU, transposed conv-norm-ReLU, conv-norm-ReLU) of each block."""
    return [layer for block in model.decoder.blocks for layer in block.block]


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    testing.check_architecture("linknet", TINY)


@pytest.mark.parametrize(
    "options",
    [
        {"decoder_use_batchnorm": False},
        {"decoder_use_norm": "layernorm"},
        {"decoder_use_norm": "instancenorm"},
        {"decoder_use_norm": {"type": "batchnorm", "momentum": 0.5}},
    ],
    ids=["no-norm", "layernorm", "instancenorm", "batchnorm-dict"],
)
def test_conformance_kit_with_options(options):
    testing.check_architecture("linknet", TINY, depths=(3, 5), classes=(2,), in_channels=(3,),
                               **options)


@pytest.mark.parametrize(("depth", "in_channels", "classes"), [(3, 1, 5), (4, 4, 1), (5, 3, 2)])
def test_mask_shape(depth, in_channels, classes):
    model = tiny_linknet(encoder_depth=depth, in_channels=in_channels, classes=classes).eval()
    with torch.no_grad():
        mask = model(torch.randn(2, in_channels, 64, 64))
    assert mask.shape == (2, classes, 64, 64)
    assert len(model.decoder.blocks) == depth


def test_each_block_doubles_the_size_up_to_the_input():
    model = tiny_linknet().eval()
    sizes = []
    for block in model.decoder.blocks:
        block.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 96))
    assert sizes == [(32, 4, 6), (24, 8, 12), (16, 16, 24), (8, 32, 48), (32, 64, 96)]


@pytest.mark.parametrize(
    ("depth", "good", "bad"),
    [(5, (64, 96), (65, 63)), (4, (48, 80), (48, 72)), (3, (40, 24), (40, 28))],
)
def test_input_sizes_and_the_output_stride(depth, good, bad):
    model = tiny_linknet(encoder_depth=depth).eval()
    assert model.requires_divisible_input_shape
    assert model.encoder.output_stride == 2**depth
    with torch.no_grad():
        assert model(torch.randn(1, 3, *good)).shape == (1, 1, *good)
        try:
            mask = model(torch.randn(1, 3, *bad))
        except InputShapeError as error:  # the core refuses the size, naming the fix
            stride = 2**depth
            padded = [-(-side // stride) * stride for side in bad]
            assert f"divisible by {stride}, got {bad[0]}x{bad[1]}" in str(error)
            assert f"pad the images to {padded[0]}x{padded[1]}" in str(error)
        else:  # the core pads the input and crops the mask back
            assert mask.shape == (1, 1, *bad)


def test_aux_head_reads_the_deepest_features_at_every_depth():
    model = tiny_linknet(encoder_depth=3, aux_params={"classes": 2}).eval()
    assert model.classification_head[3].in_features == TINY_CHANNELS[3]
    assert isinstance(model.classification_head[0], nn.AdaptiveAvgPool2d)  # default pooling


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_in_channels_adapt_the_first_convolution(in_channels):
    model = tiny_linknet(in_channels=in_channels, classes=2).eval()
    first = next(m for m in model.encoder.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == in_channels
    with torch.no_grad():
        assert model(torch.randn(2, in_channels, 64, 64)).shape == (2, 2, 64, 64)
    with pytest.raises(InputShapeError, match=f"takes {in_channels} input channel"):
        model(torch.randn(2, in_channels + 1, 64, 64))


# -- activation ----------------------------------------------------------------------------
# the values of every activation are checked by the conformance kit; here SMP's layout
@pytest.mark.parametrize(("activation", "layer"), [(None, nn.Identity), ("sigmoid", nn.Sigmoid)])
def test_activation_is_the_third_layer_of_the_head(activation, layer):
    model = tiny_linknet(classes=2, activation=activation)
    assert isinstance(model.segmentation_head[2].activation, layer)


def test_callable_activation_and_the_logits_it_is_applied_to():
    torch.manual_seed(0)
    plain = tiny_linknet(classes=2).eval()
    tanh = tiny_linknet(classes=2, activation=nn.Tanh).eval()
    tanh.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tanh(x), torch.tanh(plain(x)))
    assert tanh.config["activation"] is None  # a callable is not stored


# -- module tree ---------------------------------------------------------------------------
def test_block_channels_follow_the_linknet_wiring():
    model = tiny_linknet()
    blocks = model.decoder.blocks
    assert len(blocks) == 5
    for block, (in_channels, reduced, out_channels) in zip(blocks, BLOCK_CHANNELS):
        reduce, upsample, expand = block.block
        assert (reduce[0].in_channels, reduce[0].out_channels) == (in_channels, reduced)
        assert reduce[0].kernel_size == (1, 1)
        assert isinstance(upsample, TransposeX2)
        assert isinstance(upsample[0], nn.ConvTranspose2d)
        assert (upsample[0].in_channels, upsample[0].out_channels) == (reduced, reduced)
        assert (upsample[0].kernel_size, upsample[0].stride, upsample[0].padding) == (
            (4, 4), (2, 2), (1, 1))
        assert (expand[0].in_channels, expand[0].out_channels) == (reduced, out_channels)
        assert expand[0].kernel_size == (1, 1)
    assert model.decoder._adds_skip == (True, True, True, True, False)


def test_segmentation_head_is_a_1x1_convolution_without_upsampling():
    head = tiny_linknet(classes=4).segmentation_head
    assert (head[0].in_channels, head[0].out_channels) == (32, 4)
    assert head[0].kernel_size == (1, 1)
    assert isinstance(head[1], nn.Identity)


def test_module_names_follow_smp_layout():
    names = {name for name, _ in tiny_linknet(aux_params={"classes": 2}).named_modules()}
    for name in [
        "decoder", "decoder.blocks", "decoder.blocks.0", "decoder.blocks.0.block",
        "decoder.blocks.0.block.0", "decoder.blocks.0.block.0.0", "decoder.blocks.0.block.0.1",
        "decoder.blocks.0.block.0.2", "decoder.blocks.0.block.1", "decoder.blocks.0.block.1.0",
        "decoder.blocks.4.block.2.2", "segmentation_head", "segmentation_head.0",
        "segmentation_head.2.activation", "classification_head.3",
    ]:
        assert name in names, name
    assert not any(name.startswith("decoder.blocks.5") for name in names)


def test_state_dict_keys_follow_smp_layout():
    keys = list(tiny_linknet().state_dict())
    decoder_keys = [k for k in keys if k.startswith("decoder.blocks.0.")]
    assert decoder_keys == [
        "decoder.blocks.0.block.0.0.weight",
        *[f"decoder.blocks.0.block.0.1.{n}" for n in
          ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")],
        "decoder.blocks.0.block.1.0.weight",
        "decoder.blocks.0.block.1.0.bias",  # the transposed convolution always has a bias
        *[f"decoder.blocks.0.block.1.1.{n}" for n in
          ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")],
        "decoder.blocks.0.block.2.0.weight",
        *[f"decoder.blocks.0.block.2.1.{n}" for n in
          ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")],
    ]
    assert keys[-2:] == ["segmentation_head.0.weight", "segmentation_head.0.bias"]
    state = tiny_linknet().state_dict()
    assert state["decoder.blocks.0.block.1.0.weight"].shape == (10, 10, 4, 4)
    assert state["decoder.blocks.4.block.2.0.weight"].shape == (32, 2, 1, 1)


def test_a_zero_channel_placeholder_level_is_not_added():
    spec = testing.tiny_encoder_spec("placeholder_tiny_test", transformer_like=True)
    with testing.specs_installed(encoders=[spec]):
        model = Linknet("placeholder_tiny_test", encoder_weights=None, classes=2).eval()
        with torch.no_grad():
            mask = model(torch.randn(1, 3, 64, 64))
    assert mask.shape == (1, 2, 64, 64)
    assert model.decoder._adds_skip == (True, True, True, False, False)
    # the block before the placeholder keeps its width (16), as SMP does
    widths = [(b.block[0][0].in_channels, b.block[2][0].out_channels)
              for b in model.decoder.blocks]
    assert widths == [(40, 32), (32, 24), (24, 16), (16, 16), (16, 32)]


def test_too_narrow_encoder_stages_are_refused():
    with pytest.raises(EncoderCapabilityError, match=r"at least 4 channels.*\[2\]"):
        LinknetDecoder((3, 2, 16, 24))


# -- decoder math against a hand-written reference ----------------------------------------
def _reference_norm_relu(x, norm):
    if isinstance(norm, nn.BatchNorm2d):
        x = (x - norm.running_mean[None, :, None, None]) / torch.sqrt(
            norm.running_var[None, :, None, None] + norm.eps
        ) * norm.weight[None, :, None, None] + norm.bias[None, :, None, None]
    return torch.clamp(x, min=0)


def _reference_block(x, block):
    reduce, upsample, expand = block.block
    x = _reference_norm_relu(F.conv2d(x, reduce[0].weight, reduce[0].bias), reduce[1])
    x = F.conv_transpose2d(x, upsample[0].weight, upsample[0].bias, stride=2, padding=1)
    x = _reference_norm_relu(x, upsample[1])
    return _reference_norm_relu(F.conv2d(x, expand[0].weight, expand[0].bias), expand[1])


@pytest.mark.parametrize("use_norm", [True, False])
def test_block_matches_reference_formula(use_norm):
    block = LinknetDecoderBlock(12, 7, use_norm=use_norm).eval()
    testing.randomise_weights(block)
    x, skip = torch.randn(2, 12, 5, 6), torch.randn(2, 7, 10, 12)
    with torch.no_grad():
        actual = block(x, skip)
        expected = _reference_block(x, block) + skip
        without_skip = block(x)
    assert actual.shape == (2, 7, 10, 12)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(without_skip, expected - skip, rtol=1e-4, atol=1e-5)


def test_whole_decoder_matches_reference_chain():
    model = tiny_linknet(encoder_depth=3).eval()
    testing.randomise_weights(model.decoder)
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        features = model.encoder(x)  # 32x40, 16x20, 8x10, 4x5
        out = features[3]
        for block, skip in zip(model.decoder.blocks, [features[2], features[1], None]):
            out = _reference_block(out, block)
            if skip is not None:
                out = out + skip
        torch.testing.assert_close(model.decoder(features), out, rtol=1e-4, atol=1e-5)


# -- options -------------------------------------------------------------------------------
def _decoder_norms(model):
    return [layer[1] for layer in _block_layers(model)]


def _conv_1x1(model):
    return [m for m in model.decoder.modules() if type(m) is nn.Conv2d]


def test_default_norm_is_batchnorm_without_1x1_conv_bias():
    model = tiny_linknet()
    assert len(_decoder_norms(model)) == 15
    assert all(type(n) is nn.BatchNorm2d for n in _decoder_norms(model))
    assert all(c.bias is None for c in _conv_1x1(model))
    assert all(m.bias is not None for m in model.decoder.modules()
               if isinstance(m, nn.ConvTranspose2d))
    assert model.options == LinknetOptions(decoder_use_norm=True)
    assert model.config["decoder_use_norm"] is True


def test_decoder_use_batchnorm_false_removes_batchnorm_and_adds_bias():
    model = tiny_linknet(decoder_use_batchnorm=False)
    testing.check_decoder_without_batchnorm(model, _conv_1x1(model))
    assert all(type(n) is nn.Identity for n in _decoder_norms(model))


def test_decoder_use_batchnorm_changes_the_output():
    torch.manual_seed(0)
    with_norm = tiny_linknet().train()
    torch.manual_seed(0)
    without_norm = tiny_linknet(decoder_use_batchnorm=False).train()
    x = torch.randn(2, 3, 64, 64)
    assert not torch.allclose(with_norm(x), without_norm(x))


def test_decoder_use_norm_values():
    testing.check_decoder_norm_option("linknet", _decoder_norms)


def test_layernorm_normalises_over_channels():
    model = tiny_linknet(decoder_use_norm="layernorm").eval()
    norm = model.decoder.blocks[0].block[1][1]  # after the transposed convolution
    x = torch.randn(2, norm.normalized_shape[0], 5, 7) * 3 + 2
    with torch.no_grad():
        y = norm(x)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 5, 7), atol=1e-5, rtol=0)


def test_options_class_and_config():
    model = tiny_linknet(decoder_use_norm={"type": "instancenorm", "affine": True})
    assert isinstance(model.options, LinknetOptions)
    assert LinknetOptions.names() == ["decoder_use_norm"]
    config = model.config
    assert config["architecture"] == "linknet"
    assert config["encoder_name"] == TINY
    assert config["decoder_use_norm"] == {"type": "instancenorm", "affine": True}


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("linknet")


# -- errors --------------------------------------------------------------------------------
def test_decoder_typo_suggests_the_right_name():
    testing.check_unknown_options("linknet", "decoder_use_batchnor", "decoder_use_batchnorm")
    testing.check_unknown_options("linknet", "decoder_use_nrom", "decoder_use_norm")


def test_options_of_other_architectures_are_refused_with_the_valid_ones():
    with pytest.raises(UnknownOptionError) as info:
        tiny_linknet(decoder_channels=(256, 128, 64, 32, 16))  # a Unet option
    message = str(info.value)
    assert "'decoder_channels'" in message and "linknet" in message
    assert "decoder_use_batchnorm, decoder_use_norm" in message


@pytest.mark.parametrize("depth", [2, 1, 6, 0])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("linknet", depth)


def test_encoder_depth_too_small_names_the_linknet_decoder():
    with pytest.raises(InvalidOptionError, match=r"the linknet decoder needs at least 3"):
        tiny_linknet(encoder_depth=2)


def test_bad_norm_options_name_the_valid_ones():
    testing.check_decoder_norm_errors("linknet")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"classes": 0}, "classes must be a positive int"),
     ({"in_channels": 2.0}, "in_channels must be a positive int"),
     ({"activation": "sigmoide"}, "did you mean 'sigmoid'"),
     ({"aux_params": {"classes": 2, "pooling": "sum"}}, "'avg' or 'max'"),
     ({"aux_params": {"pooling": "avg"}}, "aux_params needs 'classes'")],
)
def test_bad_core_arguments(kwargs, words):
    with pytest.raises(InvalidOptionError) as info:
        tiny_linknet(**kwargs)
    assert words.lower() in str(info.value).lower()


# -- public API ----------------------------------------------------------------------------
def test_segcore_linknet_resolves_to_the_plugin_class():
    assert segcore.Linknet is segcore_linknet.Linknet
    assert "linknet" in segcore.list_architectures()
    assert segcore.get_architecture_class("linknet") is Linknet
    model = segcore.build("linknet", encoder=TINY, classes=2)
    assert type(model) is Linknet and model.name == f"linknet-{TINY}"


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("linknet", "segcore_linknet")


def test_documented_signature():
    testing.check_documented_signature(
        Linknet,
        ["encoder_name", "encoder_depth", "encoder_weights", "decoder_use_batchnorm",
         "in_channels", "classes", "activation", "aux_params"],
        {"encoder_depth": 5, "decoder_use_batchnorm": True, "decoder_use_norm": None},
        keyword_only=["decoder_use_norm"],
    )


def test_positional_arguments_follow_the_documented_order():
    model = Linknet(TINY, 4, None, False, 2, 3, "sigmoid", {"classes": 2})
    assert model.encoder.depth == 4
    assert model.options.decoder_use_norm is False
    testing.check_sigmoid_outputs(model, 2, 3, aux_classes=2)


def test_build_defaults_to_no_weights():
    testing.check_default_weights("linknet")


def test_docstrings_the_documentation_generator_reads():
    doc = inspect.getdoc(Linknet)
    lines = doc.splitlines()
    assert "(https://arxiv.org/abs/1707.03718)" in lines[0]
    paragraphs = doc.split("\n\n")
    explanation = " ".join(paragraphs[1].split())
    assert len(re.findall(r"[.!?](?:\s|$)", explanation)) == 3, explanation
    for section in ("Args:", "Shapes:", "Example::"):
        assert section in lines, section
    args = doc.split("Args:")[1].split("Shapes:")[0]
    for name in inspect.signature(Linknet).parameters:
        label = "**kwargs" if name == "kwargs" else name
        assert re.search(rf"^    {re.escape(label)}:", args, re.MULTILINE), name
    options_doc = inspect.getdoc(LinknetOptions).split("Attributes:")[1]
    for field in attrs.fields(LinknetOptions):
        assert f"    {field.name}:" in options_doc, field.name


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
def test_save_pretrained_round_trip(tmp_path):
    model = tiny_linknet(classes=2, decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                         aux_params={"classes": 3, "dropout": 0.2})
    testing.check_save_load(model, torch.randn(1, 3, 64, 96), tmp_path / "linknet", config={
        "_architecture": "linknet",  # segcore's key; SMP reads "_model_class"
        "decoder_use_norm": {"type": "layernorm", "eps": 1e-3}})
    # config.json is model.saved_config() (checked above), where the older option is folded in
    assert "decoder_use_batchnorm" not in model.saved_config()


def test_round_trip_of_decoder_use_batchnorm_false_and_depth(tmp_path):
    model = tiny_linknet(decoder_use_batchnorm=False, encoder_depth=3, in_channels=4,
                         classes=3, activation="softmax")
    loaded = testing.check_save_load(model, torch.randn(1, 4, 40, 24), tmp_path)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.decoder.modules())
    assert len(loaded.decoder.blocks) == 3


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_linknet(classes=2), torch.randn(2, 3, 64, 64))


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_linknet(classes=2, aux_params={"classes": 3}),
                          torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_linknet(classes=3), torch.randn(1, 3, 64, 64))
