"""SegmentationModel behaviour, the registry and the shared layers, with core only.

A small architecture defined here (one conv on the deepest features) and the conformance kit's
tiny encoder stand in for real plugins.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import attrs
import pytest
import torch
from torch import nn

import segcore
from segcore import nn as segnn
from segcore import options as opt
from segcore import testing
from segcore.errors import (
    EncoderCapabilityError,
    InputShapeError,
    InvalidOptionError,
    MissingDependencyError,
    UnknownNameError,
    UnknownOptionError,
)
from segcore.model import SegmentationModel
from segcore.options import ArchitectureOptions
from segcore.specs import ArchitectureSpec


@attrs.frozen
class ProbeOptions(ArchitectureOptions):
    decoder_channels: int = attrs.field(default=8, validator=opt.positive_int)
    encoder_output_stride: int = attrs.field(default=32, validator=opt.one_of(8, 16, 32))


class ProbeNet(SegmentationModel):
    architecture = "probenet"
    options_class = ProbeOptions

    def __init__(self, encoder_name=testing.TINY_ENCODER, encoder_depth=5, encoder_weights=None,
                 decoder_channels=8, encoder_output_stride=32, in_channels=3, classes=1,
                 activation=None, aux_params=None, **kwargs):
        super().__init__(encoder_name=encoder_name, encoder_depth=encoder_depth,
                         encoder_weights=encoder_weights, in_channels=in_channels, classes=classes,
                         activation=activation, aux_params=aux_params, encoder_params=kwargs,
                         decoder_channels=decoder_channels,
                         encoder_output_stride=encoder_output_stride)

    def encoder_output_stride(self, options):
        return options.encoder_output_stride

    def build_decoder(self, encoder_channels, options):
        return _LastFeatureConv(encoder_channels[-1], options.decoder_channels)

    def segmentation_head_options(self, options):
        return {"in_channels": options.decoder_channels, "kernel_size": 1,
                "upsampling": self.encoder.output_stride}


class _LastFeatureConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = segnn.Conv2dReLU(in_channels, out_channels, 3, padding=1)

    def forward(self, features):
        return self.conv(features[-1])


PROBE_SPEC = ArchitectureSpec(name="probenet", model=ProbeNet, description="test architecture")


@pytest.fixture
def installed(core_only):
    with testing.specs_installed(encoders=[testing.TINY_ENCODER_SPEC],
                                 architectures=[PROBE_SPEC]):
        yield


def test_build_and_lazy_class_access(installed):
    assert segcore.list_architectures() == ["probenet"]
    assert segcore.ProbeNet is ProbeNet
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER, classes=4)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 4, 64, 64)


def test_conformance_kit_accepts_a_conforming_architecture(installed):
    testing.check_architecture("probenet", depths=(3, 5), in_channels=(1, 3))


def test_aux_head(installed):
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER, classes=2,
                          aux_params={"classes": 3, "pooling": "max", "activation": "softmax"})
    mask, labels = model.eval()(torch.randn(2, 3, 64, 64))
    assert mask.shape == (2, 2, 64, 64) and labels.shape == (2, 3)
    torch.testing.assert_close(labels.sum(1), torch.ones(2))


@pytest.mark.parametrize(
    ("aux_params", "message"),
    [
        ({"pooling": "avg"}, "needs 'classes'"),
        ({"classes": 2, "pooling": "mean"}, "'avg' or 'max'"),
        ({"classes": 2, "dropout": 1.5}, r"\[0, 1\)"),
        ({"classes": 2, "activaton": "sigmoid"}, "unknown aux_params key"),
        ({"classes": 2, "activation": "softplus"}, "unknown activation"),
        ([2], "must be a dict"),
    ],
)
def test_bad_aux_params(installed, aux_params, message):
    with pytest.raises(InvalidOptionError, match=message):
        segcore.build("probenet", encoder=testing.TINY_ENCODER, aux_params=aux_params)


def test_input_shape_errors_name_the_fix(installed):
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER, in_channels=4)
    with pytest.raises(InputShapeError, match="in_channels=3"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(InputShapeError, match="4D tensor"):
        model(torch.randn(4, 64, 64))
    # by default any size works: padded to 96x128, the mask cropped back to 70x100
    assert model.eval()(torch.randn(1, 4, 70, 100)).shape == (1, 1, 70, 100)
    model.pad_inputs = False  # SMP's strict behaviour
    with pytest.raises(InputShapeError) as error:
        model(torch.randn(1, 4, 70, 100))
    message = str(error.value)
    assert "divisible by 32" in message and "70x100" in message
    assert "nearest valid size is 64x96" in message and "pad the images to 96x128" in message
    assert "pad_inputs = True" in message


def test_padding_leaves_divisible_sizes_untouched_and_crops_the_rest(installed):
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER).eval()
    x = torch.randn(1, 3, 64, 96)
    padded = torch.nn.functional.pad(x[..., :50, :70], (0, 26, 0, 14))
    with torch.no_grad():
        assert model(x).shape == (1, 1, 64, 96)
        torch.testing.assert_close(model(x[..., :50, :70]), model(padded)[..., :50, :70])
        model.pad_inputs = False
        torch.testing.assert_close(model(x), model(x))


def test_output_stride_and_dilation(installed):
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER, encoder_output_stride=8)
    assert model.encoder.output_stride == 8
    assert model(torch.randn(1, 3, 40, 48)).shape == (1, 1, 40, 48)
    rigid = attrs.evolve(testing.TINY_ENCODER_SPEC, name="rigid", supports_dilation=False)
    with testing.specs_installed(encoders=[rigid]):
        with pytest.raises(EncoderCapabilityError, match="cannot be dilated"):
            segcore.build("probenet", encoder="rigid", encoder_output_stride=16)
        # At depth 3 the last stage has reduction 8: no dilation is needed for stride 16.
        segcore.build("probenet", encoder="rigid", encoder_depth=3, encoder_output_stride=16)


def test_option_errors(installed):
    with pytest.raises(UnknownOptionError, match="Did you mean 'decoder_channels'"):
        segcore.build("probenet", encoder=testing.TINY_ENCODER, decoder_chanels=4)
    with pytest.raises(InvalidOptionError, match="decoder_channels must be a positive int"):
        segcore.build("probenet", encoder=testing.TINY_ENCODER, decoder_channels=0)
    with pytest.raises(InvalidOptionError, match=r"encoder_depth=6 is too large.*at most 5"):
        segcore.build("probenet", encoder=testing.TINY_ENCODER, encoder_depth=6)
    too_small = r"encoder_depth=2 is too small: the probenet decoder needs at least 3 .*3 to 5"
    with pytest.raises(InvalidOptionError, match=too_small):
        segcore.build("probenet", encoder=testing.TINY_ENCODER, encoder_depth=2)
    with pytest.raises(InvalidOptionError, match="classes must be a positive int"):
        segcore.build("probenet", encoder=testing.TINY_ENCODER, classes=0)
    with pytest.raises(InvalidOptionError, match="unknown activation"):
        segcore.build("probenet", encoder=testing.TINY_ENCODER, activation="relu6")


def test_unknown_names_get_suggestions_and_install_hints(installed):
    with pytest.raises(UnknownNameError, match="Did you mean 'probenet'"):
        segcore.build("probnet")
    # core_only blocks the first-party plugins: installed ones are "blocked", others missing
    for build, name, package in ((segcore.build, "deeplabv3plus", "segcore_deeplab"),
                                 (segcore.get_encoder, "tu-resnest50d", "segcore_timm")):
        hint = ("blocked by SEGCORE_DISABLE_PLUGINS" if importlib.util.find_spec(package)
                else f"pip install {package.replace('_', '-')}")
        with pytest.raises(UnknownNameError, match=hint):
            build(name)
    with pytest.raises(UnknownNameError, match="Did you mean 'segcore-testing-tiny'"):
        segcore.get_encoder("segcore-testing-tinny")
    with pytest.raises(AttributeError, match="segcore-unet"):
        segcore.Unet  # noqa: B018


def test_listing_with_patterns(installed):
    assert segcore.list_encoders("segcore-*") == [testing.TINY_ENCODER]
    assert segcore.list_encoders("res*") == []
    assert segcore.list_heads() == ["classification", "segmentation"]


def test_predict_uses_eval_and_inference_mode(installed):
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER).train()
    output = model.predict(torch.randn(1, 3, 32, 32))
    assert not model.training and output.is_inference()


def test_freeze_encoder_keeps_norm_statistics(installed):
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER).train()
    model.freeze_encoder()
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())
    model.train()
    bn = model.encoder.stages[0][1]
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(bn.running_mean, before)
    assert model.decoder.training and not bn.training
    model.unfreeze_encoder()
    assert bn.training and all(p.requires_grad for p in model.encoder.parameters())
    model(torch.randn(2, 3, 64, 64))
    assert not torch.equal(bn.running_mean, before)


def test_config_rebuilds_the_model_and_save_load_round_trip(installed, tmp_path):
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER, classes=3, in_channels=2,
                          decoder_channels=6, aux_params={"classes": 2})
    assert model.config["architecture"] == "probenet"
    assert model.config["decoder_channels"] == 6
    model.save_pretrained(tmp_path / "saved")
    loaded = segcore.from_pretrained(tmp_path / "saved").eval()
    x = torch.randn(1, 2, 64, 64)
    for a, b in zip(model.eval()(x), loaded(x)):
        torch.testing.assert_close(a, b)


def test_compile_and_export(installed):
    model = segcore.build("probenet", encoder=testing.TINY_ENCODER).eval()
    x = torch.randn(1, 3, 64, 64)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), model(x))
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


def test_listing_imports_no_implementation_module():
    script = (
        "import sys, segcore; segcore.list_architectures(); segcore.list_encoders(); "
        "segcore.list_losses(); segcore.list_metrics(); "
        "print(sorted(m for m in sys.modules if m == 'timm' or m.startswith('timm.') or "
        "m == 'torchvision' or (m.startswith('segcore_') and not m.endswith('.plugin') "
        "and '.' in m)))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- shared layers -------------------------------------------------------------------------
def test_activations():
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(segnn.Activation("sigmoid")(x), torch.sigmoid(x))
    torch.testing.assert_close(segnn.Activation("softmax")(x), torch.softmax(x, 1))
    torch.testing.assert_close(segnn.Activation("logsoftmax")(x), torch.log_softmax(x, 1))
    torch.testing.assert_close(segnn.Activation("tanh")(x), torch.tanh(x))
    torch.testing.assert_close(segnn.Activation("identity")(x), x)
    torch.testing.assert_close(segnn.Activation(None)(x), x)
    torch.testing.assert_close(segnn.Activation(nn.ReLU)(x), torch.relu(x))
    with pytest.raises(InvalidOptionError, match="'sigmoid'"):
        segnn.Activation("swish")


def test_norms_and_conv_block():
    assert isinstance(segnn.Conv2dReLU(3, 4, 3, use_norm=True)[1], nn.BatchNorm2d)
    block = segnn.Conv2dReLU(3, 4, 3, use_norm=False)
    assert isinstance(block[1], nn.Identity) and block[0].bias is not None
    assert isinstance(segnn.make_norm("instancenorm", 4), nn.InstanceNorm2d)
    layer_norm = segnn.make_norm({"type": "layernorm", "eps": 1e-3}, 4)
    assert layer_norm.eps == 1e-3 and layer_norm(torch.randn(1, 4, 2, 2)).shape == (1, 4, 2, 2)
    with pytest.raises(InvalidOptionError, match="unknown normalisation"):
        segnn.make_norm("groupnorm", 4)


def test_inplace_norm_without_inplace_abn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "inplace_abn", None)
    with pytest.raises(MissingDependencyError, match="pip install inplace-abn"):
        segnn.Conv2dReLU(3, 4, 3, use_norm="inplace")


def test_scse_attention():
    module = segnn.Attention("scse", in_channels=32)
    x = torch.randn(2, 32, 8, 8)
    assert module(x).shape == x.shape
    with pytest.raises(InvalidOptionError, match="'scse'"):
        segnn.Attention("cbam", in_channels=32)


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 7), (6, 6), (7, 10), (13, 4)])
def test_slice_pooling_is_adaptive_average_pooling(bins, size):
    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(segnn.adaptive_avg_pool_by_slices(x, bins),
                               torch.nn.functional.adaptive_avg_pool2d(x, bins))


def test_exportable_pool_takes_the_slice_path_only_in_onnx_export(monkeypatch):
    pool = segnn.ExportableAdaptiveAvgPool2d(3)
    x = torch.randn(1, 2, 7, 10)  # bins that do not divide the map
    expected = torch.nn.functional.adaptive_avg_pool2d(x, 3)
    torch.testing.assert_close(torch.jit.script(pool)(x), expected)
    calls = []
    original = segnn.adaptive_avg_pool_by_slices
    monkeypatch.setattr(segnn, "adaptive_avg_pool_by_slices",
                        lambda *args: calls.append(args) or original(*args))
    torch.testing.assert_close(pool(x), expected)
    assert not calls
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    torch.testing.assert_close(pool(x), expected)
    assert len(calls) == 1


def test_layer_norm_2d_normalises_channels_and_scripts():
    norm = segnn.LayerNorm2d(4, eps=1e-3)
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(2, 4, 3, 5)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (4,), norm.weight,
                                              norm.bias, 1e-3).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected)
    torch.testing.assert_close(torch.jit.script(norm)(x), expected)


# -- testing.check_encoder_in_architecture ---------------------------------------------------
def test_check_encoder_in_architecture_builds_and_runs_the_model(installed) -> None:
    model = testing.check_encoder_in_architecture("probenet", testing.TINY_ENCODER,
                                                  in_channels=1, size=(64, 96), classes=3)
    assert isinstance(model, ProbeNet) and not model.training
    assert model.encoder.in_channels == 1


@pytest.mark.parametrize("masks, message", [
    (torch.zeros(1, 3, 32, 48), r"masks of shape \(1, 3, 32, 48\), expected \(1, 3, 64, 96\)"),
    (torch.full((1, 3, 64, 96), float("nan")), "not finite"),
])
def test_check_encoder_in_architecture_fails_on_wrong_masks(installed, monkeypatch, masks,
                                                            message) -> None:
    monkeypatch.setattr(ProbeNet, "forward", lambda self, x: masks)
    with pytest.raises(AssertionError, match=message):
        testing.check_encoder_in_architecture("probenet", testing.TINY_ENCODER, size=(64, 96),
                                              classes=3)
