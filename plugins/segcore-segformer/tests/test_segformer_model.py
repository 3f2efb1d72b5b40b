"""Segformer: shapes, module tree, decoder math, the effect of each option, errors (tiny
encoder)."""

from __future__ import annotations

import inspect

import pytest
import segcore_segformer
import torch
import torch.nn.functional as F
from segcore_segformer import MLP, Segformer, SegformerDecoder, SegformerOptions
from torch import nn

import segcore
from segcore import testing
from segcore.errors import InvalidOptionError, UnknownOptionError

TINY = testing.TINY_ENCODER
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)  # the test encoder's out_channels at depth 5
SMALL = {"decoder_segmentation_channels": 16}


tiny_encoder = testing.tiny_encoder_fixture()


def tiny_segformer(**kwargs) -> Segformer:
    torch.manual_seed(0)
    return Segformer(TINY, encoder_weights=None, **{**SMALL, **kwargs})


TRANSFORMER_LIKE = testing.tiny_encoder_spec("tiny-no-stride-2", transformer_like=True)


# -- conformance and shapes ---------------------------------------------------------------
def test_conformance_kit_default_options():
    # the decoder works at 1/4 of the input at every depth, so the default upsampling (4)
    # gives masks of the input size at depths 3, 4 and 5
    testing.check_architecture("segformer", TINY)


@pytest.mark.parametrize("channels", [8, 64])
def test_conformance_kit_with_other_segmentation_channels(channels):
    testing.check_architecture("segformer", TINY, classes=(2,), in_channels=(3,),
                               decoder_segmentation_channels=channels)
    # `upsampling` is the only other option: it changes the mask's scale, which the kit does
    # not allow (it expects masks of the input size); see test_upsampling_* below.


def test_conformance_kit_with_a_transformer_like_encoder():
    with testing.specs_installed(encoders=[TRANSFORMER_LIKE]):
        testing.check_architecture("segformer", "tiny-no-stride-2", classes=(3,),
                                   in_channels=(1, 3), **SMALL)


@pytest.mark.parametrize("depth", [3, 4, 5])
@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_every_depth_gives_masks_of_the_input_size(depth, in_channels):
    model = tiny_segformer(encoder_depth=depth, in_channels=in_channels, classes=5,
                           aux_params={"classes": 2}).eval()
    x = torch.randn(2, in_channels, 64, 96)
    with torch.no_grad():
        decoded = model.decoder(model.encoder(x))
        mask, labels = model(x)
    assert decoded.shape == (2, 16, 16, 24)  # 1/4 of the input whatever the depth
    assert mask.shape == (2, 5, 64, 96)
    assert labels.shape == (2, 2)
    assert model.classification_head[3].in_features == TINY_CHANNELS[depth]
    assert model.encoder.output_stride == 2**depth


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_in_channels(in_channels):
    model = tiny_segformer(in_channels=in_channels).eval()
    with torch.no_grad():
        assert model(torch.randn(1, in_channels, 64, 64)).shape == (1, 1, 64, 64)
    first_conv = next(m for m in model.encoder.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == in_channels
    # the input itself is never projected: the first projection reads reduction 2
    assert model.decoder.mlp_stage[-1].linear.in_features == TINY_CHANNELS[1]


# -- module tree ---------------------------------------------------------------------------
def _decoder_keys(stages: int) -> list[str]:
    keys = [f"decoder.mlp_stage.{i}.linear.{p}" for i in range(stages)
            for p in ("weight", "bias")]
    keys += ["decoder.fuse_stage.0.weight"]
    keys += [f"decoder.fuse_stage.1.{p}" for p in
             ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    return keys


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_state_dict_keys_follow_smp_layout(depth):
    model = tiny_segformer(encoder_depth=depth)
    keys = [k for k in model.state_dict() if not k.startswith("encoder.")]
    assert keys == [*_decoder_keys(depth), "segmentation_head.0.weight",
                    "segmentation_head.0.bias"]
    model = tiny_segformer(aux_params={"classes": 2})
    assert [k for k in model.state_dict() if k.startswith("classification_head")] == [
        "classification_head.3.weight", "classification_head.3.bias"]


def test_module_tree_and_channels():
    model = tiny_segformer(decoder_segmentation_channels=24)
    decoder = model.decoder
    assert [name for name, _ in decoder.named_children()] == ["mlp_stage", "fuse_stage"]
    assert all(isinstance(m, MLP) for m in decoder.mlp_stage)
    assert [name for name, _ in decoder.mlp_stage[0].named_children()] == ["linear"]
    # deepest stage first: reductions 32, 16, 8, 4, 2
    assert [m.linear.in_features for m in decoder.mlp_stage] == [40, 32, 24, 16, 8]
    assert {m.linear.out_features for m in decoder.mlp_stage} == {24}
    conv, norm, relu = decoder.fuse_stage
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (5 * 24, 24, (1, 1))
    assert conv.bias is None
    assert isinstance(norm, nn.BatchNorm2d) and norm.num_features == 24
    assert isinstance(relu, nn.ReLU)
    head = model.segmentation_head
    assert (head[0].in_channels, head[0].out_channels, head[0].kernel_size) == (24, 1, (1, 1))
    assert isinstance(head[1], nn.Upsample) and head[1].scale_factor == 4
    assert head[1].mode == "bilinear" and head[1].align_corners


# -- decoder math against a hand-written reference ----------------------------------------
def test_mlp_is_a_per_pixel_linear_layer():
    mlp = MLP(6, 5)
    x = torch.randn(2, 6, 7, 9)
    expected = F.conv2d(x, mlp.linear.weight[:, :, None, None], mlp.linear.bias)
    torch.testing.assert_close(mlp(x), expected)


@pytest.mark.parametrize("depth", [3, 5])
def test_decoder_matches_reference_formula(depth):
    channels = TINY_CHANNELS[: depth + 1]
    decoder = SegformerDecoder(channels, depth, segmentation_channels=12).eval()
    testing.randomise_weights(decoder)
    features = [torch.randn(2, c, 64 // 2**i, 96 // 2**i) for i, c in enumerate(channels)]
    with torch.no_grad():
        actual = decoder(features)
        projected = []
        for mlp, feature in zip(decoder.mlp_stage, features[1:][::-1]):
            p = torch.einsum("nchw,oc->nohw", feature, mlp.linear.weight)
            p = p + mlp.linear.bias[:, None, None]
            projected.append(F.interpolate(p, size=(16, 24), mode="bilinear",
                                           align_corners=False))
        conv, norm, _ = decoder.fuse_stage
        fused = F.conv2d(torch.cat(projected, 1), conv.weight)
        fused = (fused - norm.running_mean[:, None, None]) / torch.sqrt(
            norm.running_var[:, None, None] + norm.eps)
        expected = torch.relu(fused * norm.weight[:, None, None] + norm.bias[:, None, None])
    assert actual.shape == (2, 12, 16, 24)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_decoder_skips_empty_levels_and_refuses_bad_depths():
    decoder = SegformerDecoder((3, 0, 16, 24, 32, 40), 5, segmentation_channels=8)
    assert [m.linear.in_features for m in decoder.mlp_stage] == [40, 32, 24, 16]
    assert decoder.fuse_stage[0].in_channels == 4 * 8
    with pytest.raises(InvalidOptionError, match="encoder_depth >= 3"):
        SegformerDecoder((3, 8, 16), 2)
    with pytest.raises(InvalidOptionError, match=r"encoder_depth \+ 1 = 6 values"):
        SegformerDecoder((3, 8, 16, 24), 5)


# -- the effect of each option -------------------------------------------------------------
@pytest.mark.parametrize("upsampling", [1, 2, 8])
def test_upsampling_changes_the_head_and_the_mask_size(upsampling):
    testing.check_head_upsampling(tiny_segformer(upsampling=upsampling), upsampling,
                                  torch.randn(1, 3, 64, 96))


def test_upsampling_keeps_its_scale_when_inputs_are_padded():
    model = tiny_segformer(upsampling=2).eval()
    with torch.no_grad():  # 70x50 is padded to 96x64, the 48x32 mask cropped to 35x25
        assert model(torch.randn(1, 3, 70, 50)).shape == (1, 1, 35, 25)


@pytest.mark.parametrize("channels", [8, 48])
def test_segmentation_channels_change_every_decoder_layer_and_the_head(channels):
    model = tiny_segformer(decoder_segmentation_channels=channels).eval()
    assert {m.linear.out_features for m in model.decoder.mlp_stage} == {channels}
    assert model.decoder.fuse_stage[0].in_channels == 5 * channels
    assert model.decoder.fuse_stage[0].out_channels == channels
    assert model.decoder.fuse_stage[1].num_features == channels
    assert model.segmentation_head[0].in_channels == channels
    assert model.decoder.out_channels == channels
    with torch.no_grad():
        features = model.encoder(torch.randn(1, 3, 64, 64))
        assert model.decoder(features).shape == (1, channels, 16, 16)
    assert model.config["decoder_segmentation_channels"] == channels


def test_default_segmentation_channels_are_256():
    model = Segformer(TINY, encoder_weights=None)
    assert model.decoder.fuse_stage[0].out_channels == 256
    assert model.segmentation_head[0].in_channels == 256


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_encoder_depth_chooses_the_projected_stages(depth):
    model = tiny_segformer(encoder_depth=depth)
    assert [m.linear.in_features for m in model.decoder.mlp_stage] == list(
        TINY_CHANNELS[1: depth + 1][::-1])
    assert model.decoder.fuse_stage[0].in_channels == depth * 16


@pytest.mark.parametrize(("depth", "stages"), [(3, 2), (4, 3), (5, 4)])
def test_transformer_like_encoder_skips_the_empty_level(depth, stages):
    with testing.specs_installed(encoders=[TRANSFORMER_LIKE]):
        model = Segformer("tiny-no-stride-2", encoder_weights=None, encoder_depth=depth,
                          classes=2, **SMALL).eval()
    assert [m.linear.in_features for m in model.decoder.mlp_stage] == list(
        (16, 24, 32, 40)[: depth - 1][::-1])
    assert len(model.decoder.mlp_stage) == stages
    assert model.decoder.fuse_stage[0].in_channels == stages * 16
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_options_are_validated_and_stored_in_config():
    model = tiny_segformer(decoder_segmentation_channels=24, upsampling=2)
    testing.check_stored_options(model, "segformer", SegformerOptions, {
        "decoder_segmentation_channels": 24, "upsampling": 2}, every_option=True)


def test_encoder_kwargs_are_passed_to_the_encoder():
    testing.check_encoder_kwargs("segformer", **SMALL)


# -- errors --------------------------------------------------------------------------------
def test_unknown_decoder_option_suggests_the_right_name():
    testing.check_unknown_options("segformer", "decoder_segmentation_chanels",
                                  "decoder_segmentation_channels", **SMALL)


def test_options_of_other_architectures_are_refused():
    with pytest.raises(UnknownOptionError, match=r"'decoder_channels'.*Valid decoder options"):
        tiny_segformer(decoder_channels=128)
    with pytest.raises(UnknownOptionError, match="'decoder_dropout'"):
        tiny_segformer(decoder_dropout=0.2)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("decoder_segmentation_channels", 0, r"decoder_segmentation_channels must be a positive"),
        ("decoder_segmentation_channels", -8, r"decoder_segmentation_channels must be a positive"),
        ("decoder_segmentation_channels", 64.0, r"decoder_segmentation_channels must be a posit"),
        ("decoder_segmentation_channels", None, r"decoder_segmentation_channels must be a posit"),
        ("decoder_segmentation_channels", True, r"decoder_segmentation_channels must be a posit"),
        ("upsampling", 0, r"upsampling must be a positive int"),
        ("upsampling", 2.5, r"upsampling must be a positive int"),
        ("upsampling", None, r"upsampling must be a positive int"),
        ("upsampling", "4", r"upsampling must be a positive int"),
    ],
)
def test_bad_option_values_name_the_valid_ones(option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_segformer(**{option: value})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"classes": 0}, r"classes"),
        ({"in_channels": 0}, r"in_channels"),
        ({"activation": "sigmoidd"}, r"unknown activation 'sigmoidd'.*'sigmoid'"),
        ({"aux_params": {"classes": 2, "pooling": "min"}}, r"'avg' or 'max'"),
        ({"aux_params": {"pooling": "avg"}}, r"aux_params needs 'classes'"),
    ],
)
def test_bad_common_arguments(arguments, message):
    with pytest.raises(InvalidOptionError, match=message):
        tiny_segformer(**arguments)


@pytest.mark.parametrize("depth", [2, 1, 6])
def test_encoder_depth_out_of_range(depth):
    testing.check_encoder_depth_refused("segformer", depth, **SMALL)


def test_other_sizes_are_padded_or_refused_on_request():
    testing.check_input_divisor(tiny_segformer(), 32, (70, 61))
    testing.check_input_divisor(tiny_segformer(encoder_depth=3), 8, (41, 56))


def test_padding_leaves_sizes_smp_accepts_untouched():
    model = tiny_segformer().eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model.segmentation_head(model.decoder(model.encoder(x)))
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


# -- public API ----------------------------------------------------------------------------
def test_segcore_segformer_resolves_to_the_plugin_class():
    assert segcore.Segformer is segcore_segformer.Segformer
    assert "segformer" in segcore.list_architectures()
    assert isinstance(segcore.build("segformer", encoder=TINY, **SMALL), Segformer)
    assert Segformer.architecture == "segformer"
    assert Segformer.options_class is SegformerOptions
    assert not Segformer.requires_dilation and Segformer.requires_divisible_input_shape


def test_documented_signature():
    testing.check_documented_signature(
        Segformer,
        ["encoder_name", "encoder_depth", "encoder_weights", "decoder_segmentation_channels",
         "in_channels", "classes", "activation", "upsampling", "aux_params"],
        {"encoder_depth": 5, "decoder_segmentation_channels": 256, "upsampling": 4},
        options_class=SegformerOptions,
    )


def test_positional_arguments_follow_the_documented_order():
    model = Segformer(TINY, 4, None, 12, 2, 3, "sigmoid", 2, {"classes": 5}).eval()
    assert model.encoder.depth == 4
    assert model.decoder.fuse_stage[0].out_channels == 12
    assert len(model.decoder.mlp_stage) == 4
    # upsampling=2: half the input size
    testing.check_sigmoid_outputs(model, 2, 3, mask_size=(16, 16), aux_classes=5)


def test_build_defaults_to_no_weights():
    testing.check_default_weights("segformer", **SMALL)


def test_docstring_has_the_sections_the_docs_generator_reads():
    doc = inspect.getdoc(Segformer)
    first, _, rest = doc.partition("\n\n")
    assert "https://arxiv.org/abs/2105.15203" in first
    paragraph = rest.split("\n\n")[0]
    assert paragraph.count(". ") + paragraph.endswith(".") == 3
    for section in ("Args:", "Shapes:", "Example::"):
        assert f"\n{section}" in doc
    for name in inspect.signature(Segformer).parameters:
        shown = "**kwargs" if name == "kwargs" else name
        assert f"    {shown}:" in doc, name


# -- run time (predict, freeze_encoder, gradients, plain save/load: the kit above) --------
def test_save_pretrained_round_trip(tmp_path):
    model = tiny_segformer(classes=2, decoder_segmentation_channels=24, upsampling=2,
                           encoder_depth=4, activation="sigmoid",
                           aux_params={"classes": 3, "dropout": 0.2})
    testing.randomise_weights(model.decoder)  # so that the comparison means something
    saved = {"_architecture": "segformer",  # segcore's key; SMP reads "_model_class"
             "decoder_segmentation_channels": 24, "upsampling": 2, "encoder_depth": 4}
    x = torch.randn(1, 3, 64, 48)
    loaded = testing.check_save_load(model, x, tmp_path / "segformer", config=saved)
    assert len(loaded.decoder.mlp_stage) == 4


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_segformer(aux_params={"classes": 3}), torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_segformer(classes=3), torch.randn(1, 3, 64, 64))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("segformer", "segcore_segformer")
