"""The calls users type most, end to end with the first-party plugins."""

from __future__ import annotations

import inspect
import itertools

import pytest
import torch

import segcore

pytest.importorskip("segcore_unet")
pytest.importorskip("segcore_deeplab")
pytest.importorskip("segcore_resnet")
pytest.importorskip("segcore_timm")


def test_deeplabv3plus_with_a_timm_encoder():
    model = segcore.build("deeplabv3plus", encoder="tu-resnest50d", classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5, 64, 64)


def test_documented_unet_constructor():
    model = segcore.Unet(encoder_name="resnet34", encoder_weights=None, in_channels=1, classes=3)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 3, 64, 64)
    assert inspect.signature(segcore.Unet).parameters["encoder_weights"].default == "imagenet"
    assert inspect.signature(segcore.build).parameters["encoder_weights"].default is None


ARCHITECTURES = ["unet", "deeplabv3", "deeplabv3plus"]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_output_shapes(architecture):
    torch.manual_seed(0)
    for in_channels, classes, depth in itertools.product((1, 3, 4), (1, 5), (3, 4, 5)):
        options = {}
        if architecture == "unet":
            options["decoder_channels"] = (64, 32, 16, 8, 4)[:depth]
        model = segcore.build(architecture, encoder="resnet18", in_channels=in_channels,
                              classes=classes, encoder_depth=depth, **options).eval()
        with torch.no_grad():
            mask = model(torch.randn(2, in_channels, 64, 64))
        assert mask.shape == (2, classes, 64, 64), (in_channels, classes, depth)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("encoder", ["resnet18", "tu-resnet18"])
def test_aux_head(architecture, encoder):
    model = segcore.build(architecture, encoder=encoder, classes=2,
                          aux_params={"classes": 4, "pooling": "max", "dropout": 0.3}).eval()
    with torch.no_grad():
        mask, labels = model(torch.randn(2, 3, 64, 64))
    assert mask.shape == (2, 2, 64, 64) and labels.shape == (2, 4)


def test_deeplab_refuses_an_encoder_that_cannot_dilate():
    with pytest.raises(segcore.EncoderCapabilityError, match="dilat"):
        segcore.build("deeplabv3", encoder="tu-test_mambaout")


def test_errors_from_plugins_teach():
    with pytest.raises(segcore.UnknownNameError, match="'resnet34'"):
        segcore.build("unet", encoder="resnet43")
    with pytest.raises(segcore.UnknownOptionError, match="Did you mean 'decoder_channels'"):
        segcore.build("unet", encoder="resnet18", decoder_chanels=(8, 8, 8, 8, 8))
    with pytest.raises(segcore.InvalidOptionError, match="decoder_channels"):
        segcore.build("unet", encoder="resnet18", decoder_channels=(8, 8, 8))
    with pytest.raises(segcore.InvalidOptionError, match="encoder_depth"):
        segcore.build("deeplabv3", encoder="resnet18", encoder_depth=6)
    with pytest.raises(segcore.UnknownWeightsError, match="'imagenet'"):
        segcore.build("unet", encoder="resnet34", encoder_weights="ssl")
    model = segcore.build("deeplabv3plus", encoder="resnet18")
    with pytest.raises(segcore.InputShapeError, match="at least 2 images per batch"):
        model(torch.randn(1, 3, 70, 64))  # training mode, batch of one: the ASPP pooling
    model.eval()
    assert model(torch.randn(1, 3, 70, 64)).shape == (1, 1, 70, 64)  # padded, cropped back
    model.pad_inputs = False
    with pytest.raises(segcore.InputShapeError, match="divisible by 16"):
        model(torch.randn(1, 3, 70, 64))
    with pytest.raises(segcore.InputShapeError, match="in_channels=1"):
        model(torch.randn(1, 1, 64, 64))


def test_cli_lists_and_describes(capsys):
    from segcore.cli import main

    assert main(["list", "encoders", "resnext101*"]) == 0
    listing = capsys.readouterr().out
    assert "resnext101_32x48d" in listing and "instagram" in listing
    assert main(["info", "unet"]) == 0
    info = capsys.readouterr().out
    assert "segcore-unet" in info and "decoder_channels = (256, 128, 64, 32, 16)" in info
    assert main(["info", "resnet50"]) == 0
    assert "sswl" in capsys.readouterr().out
    assert main(["info", "resnet43"]) == 2


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_channels_last_and_autocast(architecture):
    torch.manual_seed(0)
    model = segcore.build(architecture, encoder="resnet18", classes=3).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        torch.testing.assert_close(model_cl(x.to(memory_format=torch.channels_last)), reference,
                                   atol=1e-4, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model_cl(x)
    assert mixed.dtype == torch.bfloat16 and torch.isfinite(mixed).all()
    assert (mixed.float() - reference).abs().mean() < 0.1 * reference.abs().mean() + 1e-3


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_export_and_compile_with_real_encoders(architecture):
    model = segcore.build(architecture, encoder="tu-resnet18", classes=2).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), expected)
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(x), expected)
