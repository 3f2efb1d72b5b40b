"""MAnet: shapes, module tree, decoder math, the effect of each option, errors, public API.

Only the core and this plugin are needed: the models use the conformance kit's tiny encoder.
"""

from __future__ import annotations

import inspect
import re

import pytest
import segcore_manet
import torch
import torch.nn.functional as F
from segcore_manet import MAnet, MAnetOptions
from segcore_manet.decoder import MAnetDecoder, MAnetDecoderBlock, MFABBlock, PABBlock
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


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_manet(**kwargs) -> MAnet:
    kwargs.setdefault("decoder_channels", SMALL[: kwargs.get("encoder_depth", 5)])
    torch.manual_seed(0)
    return MAnet(TINY, encoder_weights=None, **kwargs)


def _decoder_norms(model: MAnet) -> list[nn.Module]:
    """The normalisation layer (child 1) of every conv-norm-ReLU of the decoder."""
    return [m[1] for m in model.decoder.modules()
            if isinstance(m, nn.Sequential) and len(m) == 3 and isinstance(m[0], nn.Conv2d)]


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    # decoder_channels is given so the kit can trim it to depths 3 and 4 (one value per stage,
    # as in SMP; the default alone only fits encoder_depth=5)
    testing.check_architecture("manet", TINY, decoder_channels=(256, 128, 64, 32, 16))


@pytest.mark.parametrize(
    "options",
    [
        {"decoder_pab_channels": 8},
        {"decoder_use_norm": "layernorm", "decoder_interpolation": "bilinear"},
        {"decoder_use_batchnorm": False},
        {"decoder_use_norm": {"type": "instancenorm", "affine": True},
         "decoder_interpolation": "nearest-exact"},
        {"decoder_interpolation": "bicubic"},
        {"decoder_interpolation": "area"},
    ],
    ids=["pab-8", "layernorm-bilinear", "no-norm", "instancenorm-nearest-exact", "bicubic",
         "area"],
)
def test_conformance_kit_with_options(options):
    testing.check_architecture("manet", TINY, depths=(3, 5), classes=(2,), in_channels=(3,),
                               decoder_channels=SMALL, **options)


@pytest.mark.parametrize(("depth", "in_channels", "classes"),
                         [(3, 1, 5), (4, 4, 1), (5, 3, 5), (5, 1, 2)])
def test_mask_shape(depth, in_channels, classes):
    model = tiny_manet(encoder_depth=depth, in_channels=in_channels, classes=classes).eval()
    with torch.no_grad():
        mask = model(torch.randn(2, in_channels, 64, 64))
    assert mask.shape == (2, classes, 64, 64)
    assert model.encoder.stages[0][0].in_channels == in_channels
    assert model.segmentation_head[0].out_channels == classes


@pytest.mark.parametrize("activation", ["sigmoid", "softmax", "logsoftmax", "tanh", "identity",
                                        None, torch.nn.ReLU])
def test_activation_is_applied_to_the_mask(activation):
    model = tiny_manet(classes=3, activation=activation).eval()
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        mask = model(x)
        logits = model.segmentation_head[0](model.decoder(model.encoder(x)))
    expected = {
        "sigmoid": torch.sigmoid(logits), "softmax": logits.softmax(1),
        "logsoftmax": logits.log_softmax(1), "tanh": torch.tanh(logits), "identity": logits,
        None: logits, torch.nn.ReLU: logits.clamp(min=0),
    }[activation]
    torch.testing.assert_close(mask, expected)


@pytest.mark.parametrize(("depth", "stride"), [(5, 32), (4, 16), (3, 8)])
def test_other_sizes_are_padded_or_refused_on_request(depth, stride):
    model = tiny_manet(encoder_depth=depth).eval()
    assert model.requires_divisible_input_shape
    assert model.encoder.output_stride == stride
    with torch.no_grad():
        assert model(torch.randn(1, 3, 2 * stride, 3 * stride)).shape == (1, 1, 2 * stride,
                                                                          3 * stride)
        odd = (2 * stride + 4, 3 * stride)
        assert model(torch.randn(1, 3, *odd)).shape == (1, 1, *odd)  # padded and cropped
        model.pad_inputs = False  # SMP's strict behaviour
        with pytest.raises(InputShapeError, match=rf"divisible by {stride}.*pad the images"):
            model(torch.randn(1, 3, *odd))


# -- module tree ---------------------------------------------------------------------------
def test_block_types_and_channels_follow_the_manet_wiring():
    model = MAnet(TINY, encoder_weights=None)  # documented default decoder channels
    decoder = model.decoder
    assert isinstance(decoder.center, PABBlock)
    assert decoder.center.top_conv.in_channels == 40
    assert decoder.center.top_conv.out_channels == 64  # decoder_pab_channels default
    blocks = decoder.blocks
    assert [type(b) for b in blocks] == [MFABBlock] * 4 + [MAnetDecoderBlock]
    mfabs = blocks[:4]
    # hl_conv brings the deeper map to the skip's channels: 40->32, 256->24, 128->16, 64->8
    assert [b.hl_conv[0][0].in_channels for b in mfabs] == [40, 256, 128, 64]
    assert [b.hl_conv[1][0].out_channels for b in mfabs] == [32, 24, 16, 8]
    assert [b.hl_conv[1][0].kernel_size for b in mfabs] == [(1, 1)] * 4
    # conv1 takes the gated map and the skip: twice the skip's channels
    assert [b.conv1[0].in_channels for b in mfabs] == [64, 48, 32, 16]
    # squeeze-and-excitation: reduction 16, at least one hidden channel
    assert [b.SE_hl[1].out_channels for b in mfabs] == [2, 1, 1, 1]
    assert [b.SE_ll[3].out_channels for b in mfabs] == [32, 24, 16, 8]
    assert blocks[4].conv1[0].in_channels == 32  # no skip at the input's size
    assert [b.conv2[0].out_channels for b in blocks] == [256, 128, 64, 32, 16]
    assert model.segmentation_head[0].in_channels == 16
    assert model.segmentation_head[0].kernel_size == (3, 3)
    assert isinstance(model.segmentation_head[1], nn.Identity)  # no upsampling in the head


def test_state_dict_keys_follow_smp_layout():
    keys = set(tiny_manet().state_dict())
    for key in [
        "decoder.center.top_conv.weight",
        "decoder.center.top_conv.bias",
        "decoder.center.center_conv.weight",
        "decoder.center.bottom_conv.weight",
        "decoder.center.out_conv.bias",
        "decoder.blocks.0.hl_conv.0.0.weight",
        "decoder.blocks.0.hl_conv.0.1.running_var",
        "decoder.blocks.0.hl_conv.1.0.weight",
        "decoder.blocks.0.SE_ll.1.weight",
        "decoder.blocks.0.SE_ll.3.bias",
        "decoder.blocks.3.SE_hl.1.bias",
        "decoder.blocks.3.SE_hl.3.weight",
        "decoder.blocks.0.conv1.0.weight",
        "decoder.blocks.0.conv1.1.num_batches_tracked",
        "decoder.blocks.4.conv2.1.weight",
        "segmentation_head.0.weight",
        "segmentation_head.0.bias",
    ]:
        assert key in keys, key
    assert "decoder.blocks.0.conv1.0.bias" not in keys  # batchnorm: conv has no bias
    assert not any(k.startswith("decoder.blocks.4.SE") for k in keys)
    names = dict(tiny_manet().decoder.center.named_children())
    assert list(names) == ["top_conv", "center_conv", "bottom_conv", "map_softmax", "out_conv"]
    assert isinstance(names["map_softmax"], nn.Softmax) and names["map_softmax"].dim == 1


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_encoder_depth_sets_the_blocks_and_the_attention_input(depth):
    model = tiny_manet(encoder_depth=depth)
    assert len(model.decoder.blocks) == depth
    assert sum(isinstance(b, MFABBlock) for b in model.decoder.blocks) == depth - 1
    assert model.decoder.center.top_conv.in_channels == TINY_CHANNELS[depth]
    seen = []
    model.decoder.center.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, 64, 64))
    side = 64 // 2**depth
    assert seen == [(1, TINY_CHANNELS[depth], side, side)]


def test_zero_channel_skip_gets_a_plain_block():
    # encoders such as mit_b* have no features at 1/2 (0 channels): SMP uses a plain block there
    decoder = MAnetDecoder((3, 0, 16, 24), decoder_channels=(16, 12, 8), pab_channels=4).eval()
    assert [type(b) for b in decoder.blocks] == [MFABBlock, MAnetDecoderBlock, MAnetDecoderBlock]
    assert decoder.blocks[1].conv1[0].in_channels == 16  # 16 + 0 skip channels
    features = [torch.randn(1, 3, 64, 64), torch.randn(1, 0, 32, 32),
                torch.randn(1, 16, 16, 16), torch.randn(1, 24, 8, 8)]
    with torch.no_grad():
        assert decoder(features).shape == (1, 8, 64, 64)


def test_vgg_like_encoders_need_no_center_block():
    # Unlike Unet, MAnet always has its attention block on the deepest features (as SMP)
    vgg_spec = testing.tiny_encoder_spec("vgg_tiny_test", deepest_feature_pooled=True)
    with testing.specs_installed(encoders=[vgg_spec]):
        model = MAnet("vgg_tiny_test", encoder_weights=None, decoder_channels=SMALL)
    assert isinstance(model.decoder.center, PABBlock)


# -- decoder math against hand-written references -----------------------------------------
def _conv(x, conv):
    return F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)


def _reference_pab(x, block):
    n, c, h, w = x.shape
    queries = _conv(x, block.center_conv).reshape(n, -1, h * w)  # (N, P, HW)
    keys = _conv(x, block.top_conv).reshape(n, -1, h * w)
    values = _conv(x, block.bottom_conv).reshape(n, c, h * w)
    scores = torch.einsum("npi,npj->nij", queries, keys)
    # one softmax over all (HW)^2 pairs of an image
    weights = torch.exp(scores - scores.amax(dim=(1, 2), keepdim=True))
    weights = weights / weights.sum(dim=(1, 2), keepdim=True)
    attended = torch.einsum("nij,ncj->nic", weights, values)  # (N, HW, C)
    # SMP's layout: the (HW, C) rows are read as (C, H, W) memory
    return _conv(x + attended.reshape(n, c, h, w), block.out_conv)


def _se(x, gate):
    pooled = x.mean(dim=(2, 3), keepdim=True)
    hidden = torch.clamp(_conv(pooled, gate[1]), min=0)
    return torch.sigmoid(_conv(hidden, gate[3]))


@pytest.mark.parametrize("size", [(4, 4), (2, 3), (1, 1)])
def test_pab_matches_reference_formula(size):
    block = PABBlock(6, pab_channels=3).eval()
    testing.randomise_weights(block)
    x = torch.randn(2, 6, *size)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _reference_pab(x, block), rtol=1e-4, atol=1e-5)


def test_pab_attends_over_the_whole_image():
    block = PABBlock(4, pab_channels=2).eval()
    testing.randomise_weights(block)
    x = torch.randn(1, 4, 4, 4)
    changed = x.clone()
    changed[..., 0, 0] += 5  # one corner: the attention spreads it further than the 3x3 convs
    with torch.no_grad():
        difference = (block(changed) - block(x)).abs()[0].sum(0)
    assert bool((difference[2:, 2:] > 0).all())  # beyond the receptive field of two 3x3 convs


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "nearest-exact"])
@pytest.mark.parametrize("use_norm", [True, False])
def test_mfab_matches_reference_formula(mode, use_norm):
    block = MFABBlock(6, 4, 5, interpolation_mode=mode, use_norm=use_norm).eval()
    testing.randomise_weights(block)
    x, skip = torch.randn(2, 6, 5, 7), torch.randn(2, 4, 10, 14)
    with torch.no_grad():
        actual = block(x, skip)
        high = conv_norm_relu(conv_norm_relu(x, block.hl_conv[0]), block.hl_conv[1])
        high = F.interpolate(high, size=(10, 14), mode=mode)
        gate = _se(high, block.SE_hl) + _se(skip, block.SE_ll)
        expected = torch.cat([high * gate, skip], dim=1)
        expected = conv_norm_relu(conv_norm_relu(expected, block.conv1), block.conv2)
    assert actual.shape == (2, 5, 10, 14)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_plain_block_matches_reference_formula():
    block = MAnetDecoderBlock(6, 0, 5, interpolation_mode="bilinear").eval()
    testing.randomise_weights(block)
    x = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        expected = F.interpolate(x, scale_factor=2.0, mode="bilinear")
        expected = conv_norm_relu(conv_norm_relu(expected, block.conv1), block.conv2)
        torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_whole_decoder_matches_reference_chain():
    model = tiny_manet(encoder_depth=3, decoder_channels=(12, 10, 6),
                       decoder_pab_channels=5).eval()
    testing.randomise_weights(model.decoder)
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        features = model.encoder(x)
        first, second, last = model.decoder.blocks
        y = _reference_pab(features[3], model.decoder.center)
        for block, skip in ((first, features[2]), (second, features[1])):
            high = conv_norm_relu(conv_norm_relu(y, block.hl_conv[0]), block.hl_conv[1])
            high = F.interpolate(high, scale_factor=2.0, mode="nearest")
            gate = _se(high, block.SE_hl) + _se(skip, block.SE_ll)
            y = torch.cat([high * gate, skip], dim=1)
            y = conv_norm_relu(conv_norm_relu(y, block.conv1), block.conv2)
        y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        y = conv_norm_relu(conv_norm_relu(y, last.conv1), last.conv2)
        torch.testing.assert_close(model.decoder(features), y, rtol=1e-4, atol=1e-5)


# -- what each option does ------------------------------------------------------------------
def test_decoder_channels_set_block_outputs_and_head_input():
    model = tiny_manet(decoder_channels=[20, 18, 16, 14, 12])
    assert [b.conv2[0].out_channels for b in model.decoder.blocks] == [20, 18, 16, 14, 12]
    assert [b.hl_conv[0][0].in_channels for b in model.decoder.blocks[1:4]] == [20, 18, 16]
    assert model.segmentation_head[0].in_channels == 12
    assert model.options.decoder_channels == (20, 18, 16, 14, 12)  # lists become tuples


@pytest.mark.parametrize("pab_channels", [1, 8, 64])
def test_decoder_pab_channels_set_the_attention_projections(pab_channels):
    model = tiny_manet(decoder_pab_channels=pab_channels).eval()
    center = model.decoder.center
    assert center.top_conv.out_channels == center.center_conv.out_channels == pab_channels
    assert center.bottom_conv.out_channels == center.out_conv.out_channels == 40  # unchanged
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_decoder_use_batchnorm_false_removes_the_norms():
    model = tiny_manet(decoder_use_batchnorm=False)
    norms = _decoder_norms(model)
    assert len(norms) == 4 * 4 + 2  # hl_conv (2), conv1, conv2 per MFAB; conv1, conv2 last
    assert all(isinstance(n, nn.Identity) for n in norms)
    # no norm: the conv has a bias
    testing.check_decoder_without_batchnorm(model, [model.decoder.blocks[0].conv1[0]])


def test_decoder_use_norm_values():
    testing.check_decoder_norm_option("manet", _decoder_norms, decoder_channels=SMALL)


def test_norm_does_not_touch_the_attention_and_gate_convolutions():
    model = tiny_manet(decoder_use_norm="batchnorm")
    center = model.decoder.center
    assert all(conv.bias is not None for conv in (center.top_conv, center.center_conv,
                                                  center.bottom_conv, center.out_conv))
    gate = model.decoder.blocks[0].SE_ll
    assert [type(m) for m in gate] == [nn.AdaptiveAvgPool2d, nn.Conv2d, nn.ReLU, nn.Conv2d,
                                       nn.Sigmoid]


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "nearest-exact"])
def test_each_interpolation_mode_is_used(mode):
    model = tiny_manet(decoder_interpolation=mode).eval()
    assert {b.interpolation_mode for b in model.decoder.blocks} == {mode}
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 1, 64, 96)


def test_interpolation_modes_change_the_output():
    testing.check_option_changes_output("manet", "decoder_interpolation", "nearest", "bilinear",
                                        decoder_channels=SMALL)


def test_options_are_normalised_and_stored_in_config():
    model = tiny_manet(decoder_channels=[20, 18, 16, 14, 12], decoder_pab_channels=16,
                       decoder_interpolation="bicubic")
    # decoder_use_norm=True from decoder_use_batchnorm=True
    testing.check_stored_options(model, "manet", MAnetOptions, {
        "decoder_channels": [20, 18, 16, 14, 12], "decoder_pab_channels": 16,
        "decoder_interpolation": "bicubic", "decoder_use_norm": True})
    assert model.name == f"manet-{TINY}"


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("manet", decoder_channels=SMALL)


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(("typo", "right"), [("decoder_pab_channel", "decoder_pab_channels"),
                                             ("decoder_chanels", "decoder_channels"),
                                             ("decoder_interpolate", "decoder_interpolation")])
def test_unknown_options_are_refused_with_suggestions(typo, right):
    testing.check_unknown_options("manet", typo, right, decoder_channels=SMALL)


def test_decoder_channels_of_the_wrong_length():
    testing.check_decoder_channels_errors("manet")


@pytest.mark.parametrize("value", [0, -4, 2.5, True, "64", None])
def test_decoder_pab_channels_must_be_a_positive_int(value):
    with pytest.raises(InvalidOptionError, match=r"decoder_pab_channels must be a positive int"):
        tiny_manet(decoder_pab_channels=value)


@pytest.mark.parametrize("depth", [2, 6, 0, 1])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("manet", depth, decoder_channels=(8,) * max(depth, 1))


def test_bad_interpolation():
    with pytest.raises(InvalidOptionError, match=r"decoder_interpolation.*'nearest'.*'bilinear'"):
        tiny_manet(decoder_interpolation="linear")


def test_bad_norm_options_name_the_valid_ones():
    testing.check_decoder_norm_errors("manet", decoder_channels=SMALL)


@pytest.mark.parametrize(("argument", "value", "words"), [
    ("classes", 0, "classes"), ("in_channels", 0, "in_channels"),
    ("activation", "softmax3d", "activation"), ("aux_params", {"pooling": "avg"}, "classes"),
])
def test_bad_common_arguments(argument, value, words):
    with pytest.raises(InvalidOptionError, match=words):
        tiny_manet(**{argument: value})


# -- public API ----------------------------------------------------------------------------
def test_segcore_manet_resolves_to_the_plugin_class():
    assert segcore.MAnet is segcore_manet.MAnet
    assert segcore.get_architecture_class("manet") is MAnet
    assert "manet" in segcore.list_architectures()


def test_documented_signature():
    testing.check_documented_signature(
        MAnet,
        ["encoder_name", "encoder_depth", "encoder_weights", "decoder_use_batchnorm",
         "decoder_channels", "decoder_pab_channels", "in_channels", "classes", "activation",
         "aux_params"],
        {"encoder_depth": 5, "decoder_use_batchnorm": True,
         "decoder_channels": (256, 128, 64, 32, 16), "decoder_pab_channels": 64,
         "decoder_use_norm": None, "decoder_interpolation": "nearest"},
        keyword_only=["decoder_use_norm", "decoder_interpolation"],
    )


def test_docstring_has_the_sections_the_docs_generator_reads():
    doc = inspect.getdoc(MAnet)
    first, paragraph = doc.split("\n\n")[:2]
    assert "https://" in first and "\n" not in first
    assert len(re.findall(r"\.(?:\s|$)", paragraph)) == 3  # three sentences
    for section in ("Args:", "Shapes:", "Example::"):
        assert f"\n{section}" in doc
    args = doc.split("Args:")[1].split("Shapes:")[0]
    for name in inspect.signature(MAnet).parameters:
        assert f"    {'**' if name == 'kwargs' else ''}{name}:" in args, name


def test_build_defaults_to_no_weights():
    testing.check_default_weights("manet", decoder_channels=SMALL)


def test_positional_arguments_follow_the_documented_order():
    model = MAnet(TINY, 4, None, False, (16, 12, 10, 8), 6, 2, 3, "sigmoid")
    assert model.encoder.depth == 4
    assert model.options.decoder_use_norm is False
    assert model.options.decoder_channels == (16, 12, 10, 8)
    assert model.decoder.center.top_conv.out_channels == 6
    testing.check_sigmoid_outputs(model, 2, 3)


def test_discovering_the_plugin_imports_no_model_code():
    testing.check_lazy_discovery("manet", "segcore_manet")


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_manet(classes=2, aux_params={"classes": 3}),
                          torch.randn(2, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_manet(classes=3, decoder_interpolation="bilinear"),
                         torch.randn(1, 3, 64, 64))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_manet(classes=2), torch.randn(2, 3, 64, 64))


def test_batch_items_are_independent_in_eval_mode():
    # the attention softmax runs per image: another image in the batch changes nothing
    model = tiny_manet(classes=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:1], model(x[:1]), rtol=1e-4, atol=1e-5)


def test_training_step_reaches_every_decoder_parameter():
    model = tiny_manet(classes=2, decoder_pab_channels=4).train()
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    for name, parameter in model.decoder.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_manet(encoder_depth=4, classes=2, in_channels=4, decoder_pab_channels=12,
                       decoder_interpolation="bilinear",
                       decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                       aux_params={"classes": 3, "dropout": 0.2})
    saved = {"_architecture": "manet",  # segcore's key; SMP reads "_model_class"
             "decoder_use_norm": {"type": "layernorm", "eps": 1e-3},
             "decoder_pab_channels": 12, "decoder_channels": list(SMALL[:4])}
    testing.check_save_load(model, torch.randn(1, 4, 64, 48), tmp_path / "manet", config=saved)


def test_from_config_rebuilds_the_same_architecture():
    model = tiny_manet(encoder_depth=3, decoder_pab_channels=5, activation="sigmoid")
    rebuilt = segcore.from_config(model.config)
    assert type(rebuilt) is MAnet
    assert rebuilt.options == model.options
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}
