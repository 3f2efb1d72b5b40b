"""UPerNet: shapes, module tree, decoder math, the effect of each option, errors (tiny
encoder)."""

from __future__ import annotations

import inspect

import pytest
import segcore_upernet
import torch
import torch.nn.functional as F
from segcore_upernet import UPerNet, UPerNetOptions
from segcore_upernet.decoder import FPNLateralBlock, PSPModule, UPerNetDecoder
from torch import nn

import segcore
from segcore import testing
from segcore.errors import (
    InputShapeError,
    InvalidOptionError,
)
from segcore.nn import LayerNorm2d

TINY = testing.TINY_ENCODER
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)  # the test encoder's out_channels at depth 5
SMALL = {"decoder_channels": 16}


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_upernet(**kwargs) -> UPerNet:
    torch.manual_seed(0)
    return UPerNet(TINY, encoder_weights=None, **{**SMALL, **kwargs})


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    # the decoder output is at 1/4 of the input at every depth, so the default upsampling (4)
    # gives masks of the input size at depths 3, 4 and 5
    testing.check_architecture("upernet", TINY)


@pytest.mark.parametrize(
    "options",
    [
        {"decoder_channels": 24},
        {"decoder_use_norm": False},
        {"decoder_use_norm": "identity"},
        {"decoder_use_norm": "layernorm"},
        {"decoder_use_norm": {"type": "batchnorm", "eps": 1e-3, "momentum": 0.3}},
    ],
    ids=["channels-24", "no-norm", "identity", "layernorm", "norm-dict"],
)
def test_conformance_kit_with_options(options):
    testing.check_architecture("upernet", TINY, depths=(3, 5), classes=(2,), in_channels=(3,),
                               **{**SMALL, **options})


@pytest.mark.parametrize(("depth", "in_channels", "classes"),
                         [(3, 1, 5), (4, 4, 1), (5, 3, 2), (5, 1, 3)])
def test_mask_shape_at_each_depth(depth, in_channels, classes):
    model = tiny_upernet(encoder_depth=depth, in_channels=in_channels, classes=classes).eval()
    x = torch.randn(2, in_channels, 64, 96)
    with torch.no_grad():
        decoded = model.decoder(model.encoder(x))
        mask = model(x)
    assert decoded.shape == (2, 16, 16, 24)  # 1/4 of the input at every depth
    assert mask.shape == (2, classes, 64, 96)


def test_aux_head_reads_the_unnormalised_deepest_encoder_feature():
    model = tiny_upernet(aux_params={"classes": 2}).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _, labels = model(x)
        expected = model.classification_head(model.encoder(x)[-1])
    torch.testing.assert_close(labels, expected)


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_in_channels(in_channels):
    model = tiny_upernet(in_channels=in_channels, aux_params={"classes": 2}).eval()
    with torch.no_grad():
        mask, labels = model(torch.randn(2, in_channels, 64, 64))
    assert mask.shape == (2, 1, 64, 64) and labels.shape == (2, 2)
    first_conv = next(m for m in model.encoder.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == in_channels
    with pytest.raises(InputShapeError, match=f"in_channels={in_channels}"):
        model(torch.randn(1, in_channels + 1, 64, 64))


# -- module tree ---------------------------------------------------------------------------
def _conv_norm_keys(prefix: str, norm: bool = True) -> list[str]:
    if not norm:
        return [f"{prefix}.0.weight", f"{prefix}.0.bias"]
    return [f"{prefix}.0.weight"] + [
        f"{prefix}.1.{name}" for name in
        ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    ]


def _expected_decoder_keys(levels: int, norm: bool = True) -> list[str]:
    keys = [f"decoder.feature_norms.{i}.{p}" for i in range(levels) for p in ("weight", "bias")]
    for block in range(4):
        keys += _conv_norm_keys(f"decoder.psp.blocks.{block}.1", norm)
    keys += _conv_norm_keys("decoder.psp.out_conv")  # always BatchNorm, as SMP
    for i in range(levels - 1):
        keys += _conv_norm_keys(f"decoder.fpn_lateral_blocks.{i}.conv_norm_relu", norm)
    for i in range(levels - 1):
        keys += _conv_norm_keys(f"decoder.fpn_conv_blocks.{i}", norm)
    keys += _conv_norm_keys("decoder.fusion_block", norm)
    return keys


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_state_dict_keys_follow_smp_layout(depth):
    model = tiny_upernet(encoder_depth=depth)
    keys = [k for k in model.state_dict() if not k.startswith("encoder.")]
    assert keys == [*_expected_decoder_keys(depth - 1), "segmentation_head.0.weight",
                    "segmentation_head.0.bias"]
    model = tiny_upernet(aux_params={"classes": 2}, decoder_use_norm=False)
    keys = [k for k in model.state_dict() if not k.startswith("encoder.")]
    assert keys == [*_expected_decoder_keys(4, norm=False), "segmentation_head.0.weight",
                    "segmentation_head.0.bias", "classification_head.3.weight",
                    "classification_head.3.bias"]


def test_module_tree_and_channels():
    model = tiny_upernet(decoder_channels=24)
    decoder = model.decoder
    assert isinstance(decoder, UPerNetDecoder)
    assert [name for name, _ in decoder.named_children()] == [
        "feature_norms", "psp", "fpn_lateral_blocks", "fpn_conv_blocks", "fusion_block"]
    # layer norms over the channels of reductions 4, 8, 16, 32
    assert all(isinstance(n, LayerNorm2d) for n in decoder.feature_norms)
    assert [n.normalized_shape for n in decoder.feature_norms] == [(16,), (24,), (32,), (40,)]
    assert {n.eps for n in decoder.feature_norms} == {1e-6}
    # pyramid pooling on the deepest features
    psp = decoder.psp
    assert isinstance(psp, PSPModule)
    assert [name for name, _ in psp.named_children()] == ["blocks", "out_conv"]
    assert [b[0].output_size for b in psp.blocks] == [1, 2, 3, 6]
    for block in psp.blocks:
        conv, norm, relu = block[1]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (40, 24, (1, 1))
        assert conv.bias is None and isinstance(norm, nn.BatchNorm2d)
        assert isinstance(relu, nn.ReLU)
    out_conv = psp.out_conv[0]
    assert (out_conv.in_channels, out_conv.out_channels, out_conv.kernel_size,
            out_conv.padding) == (40 + 4 * 24, 24, (3, 3), (1, 1))
    # top-down pathway: reductions 16, 8, 4
    assert all(isinstance(b, FPNLateralBlock) for b in decoder.fpn_lateral_blocks)
    assert [b.conv_norm_relu[0].in_channels for b in decoder.fpn_lateral_blocks] == [32, 24, 16]
    assert {b.conv_norm_relu[0].kernel_size for b in decoder.fpn_lateral_blocks} == {(1, 1)}
    assert [(c[0].in_channels, c[0].out_channels, c[0].kernel_size) for c in
            decoder.fpn_conv_blocks] == [(24, 24, (3, 3))] * 3
    fusion = decoder.fusion_block[0]
    assert (fusion.in_channels, fusion.out_channels, fusion.kernel_size) == (4 * 24, 24, (3, 3))
    assert decoder.out_channels == 24
    head = model.segmentation_head
    assert (head[0].in_channels, head[0].out_channels, head[0].kernel_size) == (24, 1, (1, 1))
    assert isinstance(head[1], nn.Upsample) and head[1].scale_factor == 4
    assert head[1].mode == "bilinear" and head[1].align_corners


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_encoder_depth_chooses_the_levels_from_reduction_4(depth):
    model = tiny_upernet(encoder_depth=depth)
    decoder = model.decoder
    assert model.encoder.output_stride == 2**depth
    assert [n.normalized_shape[0] for n in decoder.feature_norms] == list(
        TINY_CHANNELS[2: depth + 1])
    assert decoder.psp.blocks[0][1][0].in_channels == TINY_CHANNELS[depth]
    assert [b.conv_norm_relu[0].in_channels for b in decoder.fpn_lateral_blocks] == list(
        TINY_CHANNELS[2:depth][::-1])
    assert decoder.fusion_block[0].in_channels == (depth - 1) * 16


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_an_encoder_without_reduction_2_features_works_at_every_depth(depth):
    spec = testing.tiny_encoder_spec("tiny-no-stride-2", transformer_like=True)
    with testing.specs_installed(encoders=[spec]):
        model = UPerNet("tiny-no-stride-2", encoder_weights=None, encoder_depth=depth,
                        **SMALL).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)
    assert model.decoder.feature_norms[0].normalized_shape == (16,)


# -- decoder math against a hand-written reference ----------------------------------------
def _randomise(module):
    torch.manual_seed(1)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.3 + (1 if name.endswith("weight")
                                                               else 0))


def _conv_norm_relu(x, layer, padding=0):
    conv, norm, _ = layer
    x = F.conv2d(x, conv.weight, conv.bias, padding=padding)
    if isinstance(norm, nn.BatchNorm2d):
        x = (x - norm.running_mean[:, None, None]) / torch.sqrt(
            norm.running_var[:, None, None] + norm.eps)
        x = x * norm.weight[:, None, None] + norm.bias[:, None, None]
    return torch.clamp(x, min=0)


def _layer_norm_channels(x, norm):
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    x = (x - mean) / torch.sqrt(var + norm.eps)
    return x * norm.weight[:, None, None] + norm.bias[:, None, None]


def _resize(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _reference_decoder(decoder, features):
    levels = [_layer_norm_channels(f, n) for f, n in zip(features[2:], decoder.feature_norms)]
    deepest = levels[-1]
    pooled = [_resize(_conv_norm_relu(F.adaptive_avg_pool2d(deepest, block[0].output_size),
                                      block[1]), deepest.shape[-2:])
              for block in decoder.psp.blocks]
    state = _conv_norm_relu(torch.cat([deepest, *pooled], 1), decoder.psp.out_conv, padding=1)
    pyramid = [state]
    for i, lateral in enumerate(reversed(levels[:-1])):
        projected = _conv_norm_relu(lateral, decoder.fpn_lateral_blocks[i].conv_norm_relu)
        state = _resize(state, projected.shape[-2:]) + projected
        pyramid.append(_conv_norm_relu(state, decoder.fpn_conv_blocks[i], padding=1))
    size = pyramid[-1].shape[-2:]
    stacked = torch.cat([_resize(level, size) for level in reversed(pyramid)], 1)
    return _conv_norm_relu(stacked, decoder.fusion_block, padding=1)


@pytest.mark.parametrize("use_norm", ["batchnorm", False])
@pytest.mark.parametrize("depth", [3, 5])
def test_decoder_matches_reference_formula(use_norm, depth):
    channels = TINY_CHANNELS[: depth + 1]
    decoder = UPerNetDecoder(channels, depth, decoder_channels=12, use_norm=use_norm).eval()
    _randomise(decoder)
    features = [torch.randn(2, c, 64 // 2**i, 96 // 2**i) for i, c in enumerate(channels)]
    with torch.no_grad():
        actual = decoder(features)
        expected = _reference_decoder(decoder, features)
    assert actual.shape == (2, 12, 16, 24)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_decoder_leaves_the_encoder_features_untouched():
    decoder = UPerNetDecoder(TINY_CHANNELS, 5, decoder_channels=8).eval()
    features = [torch.randn(1, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate(TINY_CHANNELS)]
    copies = [f.clone() for f in features]
    with torch.no_grad():
        decoder(features)
    assert all(torch.equal(a, b) for a, b in zip(features, copies))


def test_decoder_refuses_a_depth_below_3():
    with pytest.raises(ValueError, match="encoder_depth >= 3"):
        UPerNetDecoder(TINY_CHANNELS[:3], 2)


# -- the effect of each option -------------------------------------------------------------
@pytest.mark.parametrize("upsampling", [1, 2, 8])
def test_upsampling_changes_the_head_and_the_mask_size(upsampling):
    testing.check_head_upsampling(tiny_upernet(upsampling=upsampling), upsampling,
                                  torch.randn(1, 3, 64, 96))


@pytest.mark.parametrize("channels", [8, 20, 64])
def test_decoder_channels_change_every_decoder_layer_and_the_head(channels):
    model = tiny_upernet(decoder_channels=channels)
    convs = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)]
    assert {c.out_channels for c in convs} == {channels}
    assert model.decoder.psp.out_conv[0].in_channels == 40 + 4 * channels
    assert model.decoder.fusion_block[0].in_channels == 4 * channels
    assert model.segmentation_head[0].in_channels == channels


def test_default_norm_is_batchnorm_without_conv_bias():
    model = tiny_upernet()
    layers = [m for m in model.decoder.modules() if isinstance(m, nn.Sequential) and
              len(m) == 3 and isinstance(m[0], nn.Conv2d)]
    assert len(layers) == 4 + 1 + 3 + 3 + 1
    assert all(isinstance(layer[1], nn.BatchNorm2d) and layer[0].bias is None
               for layer in layers)


@pytest.mark.parametrize("use_norm", [False, "identity"])
def test_no_norm_adds_conv_biases_but_keeps_the_psp_fusion_batchnorm(use_norm):
    model = tiny_upernet(decoder_use_norm=use_norm)
    decoder = model.decoder
    layers = [*(b[1] for b in decoder.psp.blocks),
              *(b.conv_norm_relu for b in decoder.fpn_lateral_blocks),
              *decoder.fpn_conv_blocks, decoder.fusion_block]
    assert all(isinstance(layer[1], nn.Identity) and layer[0].bias is not None
               for layer in layers)
    # as in SMP, the fusion inside the pyramid pooling module always uses BatchNorm
    assert isinstance(decoder.psp.out_conv[1], nn.BatchNorm2d)
    assert decoder.psp.out_conv[0].bias is None
    # the encoder-feature layer norms are part of the architecture, not of decoder_use_norm
    assert all(isinstance(n, LayerNorm2d) for n in decoder.feature_norms)


@pytest.mark.parametrize(
    ("use_norm", "norm_type"),
    [(True, nn.BatchNorm2d), ("batchnorm", nn.BatchNorm2d), ("layernorm", LayerNorm2d),
     ({"type": "layernorm", "eps": 1e-2}, LayerNorm2d)],
)
def test_decoder_use_norm_values(use_norm, norm_type):
    model = tiny_upernet(decoder_use_norm=use_norm)
    assert isinstance(model.decoder.fusion_block[1], norm_type)
    assert isinstance(model.decoder.fpn_conv_blocks[0][1], norm_type)
    assert isinstance(model.decoder.psp.blocks[0][1][1], norm_type)
    assert isinstance(model.decoder.psp.out_conv[1], nn.BatchNorm2d)


def test_layernorm_normalises_over_channels():
    model = tiny_upernet(decoder_use_norm="layernorm").eval()
    norm = model.decoder.fusion_block[1]
    x = torch.randn(2, 16, 5, 7)
    with torch.no_grad():
        y = norm(x)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 5, 7), atol=1e-5, rtol=0)
    with torch.no_grad():  # also on the 1x1 pooling level, where SMP's nn.LayerNorm fails
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_decoder_use_norm_dict_passes_keyword_arguments():
    model = tiny_upernet(decoder_use_norm={"type": "batchnorm", "eps": 1e-3, "momentum": 0.3})
    norm = model.decoder.fusion_block[1]
    assert (norm.eps, norm.momentum) == (1e-3, 0.3)
    assert model.decoder.psp.out_conv[1].eps == 1e-5  # always plain BatchNorm, as SMP


def test_norm_changes_the_output():
    x = torch.randn(2, 3, 64, 64)
    outputs = []
    for use_norm in ("batchnorm", False, "layernorm"):
        model = tiny_upernet(decoder_use_norm=use_norm).train()
        with torch.no_grad():
            outputs.append(model(x))
    assert not torch.allclose(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


def test_options_are_validated_and_stored_in_config():
    model = tiny_upernet(decoder_channels=24, decoder_use_norm={"type": "layernorm"},
                         upsampling=2)
    testing.check_stored_options(model, "upernet", UPerNetOptions, {
        "decoder_channels": 24, "decoder_use_norm": {"type": "layernorm"}, "upsampling": 2},
        every_option=True)


def test_norm_dict_is_copied():
    norm = {"type": "batchnorm", "eps": 1e-3}
    model = tiny_upernet(decoder_use_norm=norm)
    norm["eps"] = 0.5
    assert model.options.decoder_use_norm == {"type": "batchnorm", "eps": 1e-3}


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("upernet", **SMALL)


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typo", "right"),
    [
        ("decoder_chanels", "decoder_channels"),
        # the names SMP's docstring still gives, from an older UPerNet
        ("decoder_pyramid_channels", "decoder_channels"),
        ("decoder_segmentation_channels", "decoder_channels"),
        ("decoder_use_batchnorm", "decoder_use_norm"),
    ],
)
def test_unknown_decoder_option_suggests_the_right_name(typo, right):
    testing.check_unknown_options("upernet", typo, right)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("decoder_channels", 0, r"decoder_channels must be a positive int, got 0"),
        ("decoder_channels", 64.0, r"decoder_channels must be a positive int"),
        ("decoder_channels", (64, 32), r"decoder_channels must be a positive int"),
        ("decoder_channels", True, r"decoder_channels must be a positive int"),
        ("upsampling", 0, r"upsampling must be a positive int"),
        ("upsampling", 2.5, r"upsampling must be a positive int"),
        ("upsampling", None, r"upsampling must be a positive int"),
        ("decoder_use_norm", "groupnorm", r"decoder_use_norm.*'batchnorm'.*'layernorm'"),
        ("decoder_use_norm", 3, r"decoder_use_norm.*bool"),
        ("decoder_use_norm", {"eps": 1e-3}, r"decoder_use_norm.*'type'"),
        ("decoder_use_norm", "instancenorm", r"decoder_use_norm.*instance normalisation"),
        ("decoder_use_norm", {"type": "instancenorm", "affine": True},
         r"1x1 value per channel.*'batchnorm'"),
    ],
)
def test_bad_option_values_name_the_valid_ones(option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_upernet(**{option: value})


def test_bad_norm_options_name_the_valid_ones():
    testing.check_decoder_norm_errors("upernet", batchnorm_option=None, **SMALL)


@pytest.mark.parametrize("depth", [2, 1, 0, 6])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("upernet", depth, **SMALL)


def test_other_sizes_are_padded_or_refused_on_request():
    testing.check_input_divisor(tiny_upernet(), 32, (70, 64))
    testing.check_input_divisor(tiny_upernet(encoder_depth=3), 8, (41, 56))


def test_padding_keeps_the_mask_scale_with_other_upsampling():
    model = tiny_upernet(upsampling=2).eval()
    with torch.no_grad():  # padded to 96x96, mask at half the size, cropped to 35x40
        assert model(torch.randn(1, 3, 70, 80)).shape == (1, 1, 35, 40)


# -- public API ----------------------------------------------------------------------------
def test_segcore_upernet_resolves_to_the_plugin_class():
    assert segcore.UPerNet is segcore_upernet.UPerNet
    assert "upernet" in segcore.list_architectures()
    assert isinstance(segcore.build("upernet", encoder=TINY, **SMALL), UPerNet)


def test_documented_signature():
    testing.check_documented_signature(
        UPerNet,
        ["encoder_name", "encoder_depth", "encoder_weights", "decoder_channels",
         "decoder_use_norm", "in_channels", "classes", "activation", "upsampling",
         "aux_params"],
        {"encoder_depth": 5, "decoder_channels": 256, "decoder_use_norm": "batchnorm",
         "upsampling": 4},
        options_class=UPerNetOptions,
    )


def test_positional_arguments_follow_the_documented_order():
    model = UPerNet(TINY, 4, None, 12, False, 2, 3, "sigmoid", 2).eval()
    assert model.encoder.depth == 4
    assert model.decoder.out_channels == 12
    assert model.options.decoder_use_norm is False
    assert model.segmentation_head[1].scale_factor == 2
    testing.check_sigmoid_outputs(model, 2, 3, mask_size=(16, 16))


def test_build_defaults_to_no_weights():
    testing.check_default_weights("upernet", **SMALL)


def test_docstring_has_the_sections_the_docs_generator_reads():
    doc = inspect.getdoc(UPerNet)
    first, lead = doc.split("\n\n")[:2]
    assert "https://arxiv.org/abs/1807.10221" in first
    lead = " ".join(lead.split())
    assert lead.count(". ") + lead.endswith(".") == 3  # three sentences
    for section in ("Args:", "Shapes:", "Example::"):
        assert f"\n{section}\n" in doc
    arguments = doc.split("Args:")[1].split("Shapes:")[0]
    for name in inspect.signature(UPerNet).parameters:
        assert f"    {'**' if name == 'kwargs' else ''}{name}:" in arguments, name


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
@pytest.mark.parametrize(
    "options",
    [
        {"decoder_use_norm": {"type": "layernorm", "eps": 1e-3}, "upsampling": 2,
         "encoder_depth": 4},
        {"decoder_use_norm": False, "decoder_channels": 24, "encoder_depth": 3,
         "in_channels": 1},
    ],
    ids=["layernorm-dict-depth-4", "no-norm-depth-3-gray"],
)
def test_save_pretrained_round_trip(tmp_path, options):
    model = tiny_upernet(classes=2, aux_params={"classes": 3, "dropout": 0.2}, **options)
    testing.randomise_weights(model.decoder)  # so that the comparison means something
    x = torch.randn(1, options.get("in_channels", 3), 64, 48)
    options = model.options.as_dict()
    testing.check_save_load(model, x, tmp_path / "upernet", config={
        "_architecture": "upernet",  # segcore's key; SMP reads "_model_class"
        **{key: options[key] for key in ("decoder_use_norm", "decoder_channels", "upsampling")}})


def test_training_needs_two_images_with_batchnorm_as_in_smp():
    # the 1x1 pyramid pooling level is batch-normalised (SMP's layout): one image leaves a
    # single value per channel there; the core explains it
    model = tiny_upernet().train()
    with pytest.raises(InputShapeError, match=r"at least 2 images per batch"):
        model(torch.randn(1, 3, 64, 64))
    # with another normalisation a single image trains (psp.out_conv keeps its BatchNorm, but
    # it sees the whole 2x2 deepest map)
    model = tiny_upernet(decoder_use_norm="layernorm").train()
    model(torch.randn(1, 3, 64, 64)).mean().backward()


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_upernet(aux_params={"classes": 3}), torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_upernet(classes=3), torch.randn(1, 3, 64, 64))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_upernet(classes=2), torch.randn(2, 3, 64, 64))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("upernet", "segcore_upernet")


def _layer_norm_2d(self, x: torch.Tensor) -> torch.Tensor:
    x = x.permute(0, 2, 3, 1)
    x = torch.nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                                       self.eps)
    return x.permute(0, 3, 1, 2)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("depth", [3, 5])
def test_decoder_compiles_with_torchscript(monkeypatch, depth):
    # segcore.nn.LayerNorm2d calls super().forward(), which TorchScript cannot compile; the
    # same math through F.layer_norm stands in for it until the core's layer does that
    from segcore_upernet.decoder import UPerNetDecoder

    from segcore.nn import LayerNorm2d

    monkeypatch.setattr(LayerNorm2d, "forward", _layer_norm_2d)
    channels = (3, 8, 16, 24, 32, 40)[: depth + 1]
    decoder = UPerNetDecoder(channels, depth, decoder_channels=8).eval()
    scripted = torch.jit.script(decoder)
    features = [torch.randn(1, c, 64 // 2**i, 96 // 2**i) for i, c in enumerate(channels)]
    with torch.no_grad():
        torch.testing.assert_close(scripted(features), decoder(features))
