"""Parity of segcore-timm-families with SMP 0.6.0 for every documented ``timm-`` name it serves.

SMP 0.6.0 builds ``timm-resnest*``, ``timm-res2ne*``, ``timm-regnet*``, ``timm-gernet*`` as
``tu-<name>`` and ``timm-mobilenetv3_*`` as ``tu-tf_mobilenetv3_*``. For every name: SMP's
encoder state dict loads strictly into ours and every feature map agrees (64x64 and 64x96,
in_channels 3 and 1, output_stride 32 and 16); the encoder part of an SMP ``Unet`` loads; and
the state dict layout of SMP 0.2-0.4 maps onto SMP 0.6.0's (SMP 0.6.0 accepts it too).

Speed: SMP's encoder is built (randomly initialised) once per name; every other module is
built on the meta device and receives those tensors (``load_state_dict(strict=True,
assign=True)``), so no time goes into initialising the 141M parameters of RegNetY-32GF twice.
"""

from __future__ import annotations

import functools
import warnings

import pytest
import torch
from torch import nn

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
plugin = pytest.importorskip("segcore_timm_families.plugin")
timm = pytest.importorskip("timm")

import smp_pairs  # noqa: E402

NAMES = [spec.name for spec in plugin.segcore_encoders()]


def _smp(name: str, **options) -> nn.Module:
    with warnings.catch_warnings():  # SMP 0.6.0 deprecates the timm- names
        warnings.simplefilter("ignore", DeprecationWarning)
        return smp.encoders.get_encoder(name, weights=None, **options)


@functools.cache
def _smp_state(name: str) -> dict[str, torch.Tensor]:
    """The state dict of SMP's randomly initialised encoder (in_channels 3), built once."""
    torch.manual_seed(0)
    return dict(_smp(name).state_dict())


def _completed(state: dict[str, torch.Tensor], reference: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` for a (meta) module whose parameters differ: random values where they do.

    That is the first convolution for in_channels 1, and for GERNet-M/L at output_stride 16
    the shortcut timm adds to the first block of the last stage once it is dilated.
    """
    generator = torch.Generator().manual_seed(1)
    result = {}
    for key, value in reference.state_dict().items():
        if key in state and state[key].shape == value.shape:
            result[key] = state[key]
        elif value.is_floating_point():
            base = 1.0 if key.endswith("running_var") else 0.0
            result[key] = base + 0.5 * torch.rand(value.shape, generator=generator)
        else:
            result[key] = torch.zeros(value.shape, dtype=value.dtype)
    return result


def _pair(name: str, in_channels: int, output_stride: int) -> tuple[nn.Module, nn.Module]:
    """SMP's encoder and ours with the same tensors, in eval mode."""
    with torch.device("meta"):
        reference = _smp(name, in_channels=in_channels, output_stride=output_stride)
        ours = segcore.get_encoder(name, in_channels=in_channels, output_stride=output_stride)
    state = _smp_state(name)
    if in_channels == 3 and output_stride == 32:  # nothing to complete: SMP's own layout
        assert set(reference.state_dict()) == set(state)
    reference.load_state_dict(_completed(state, reference), strict=True, assign=True)
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    return reference.eval(), ours.eval()


@pytest.mark.parametrize("name", NAMES)
def test_smp_state_dict_loads_strictly_and_features_agree(name: str) -> None:
    for in_channels in (3, 1):
        reference, ours = _pair(name, in_channels, 32)
        assert ours.encoder_name == name
        smp_pairs.assert_features_agree_at_sizes(reference, ours, in_channels, name, seed=2,
                                                 levels=6)


@pytest.mark.parametrize("name", NAMES)
def test_dilated_features_agree(name: str) -> None:
    assert segcore.factory.get_encoder_spec(name).supports_dilation
    reference, ours = _pair(name, 3, 16)
    smp_pairs.assert_features_agree_at_sizes(reference, ours, 3, f"{name} output stride 16",
                                             sizes=[(64, 96)], seed=3, levels=6)


@pytest.mark.parametrize("name", NAMES)
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = smp.Unet(name, encoder_weights=None, classes=2)
        ours = segcore.get_encoder(name)
    state = smp_pairs.smp_encoder_state(model)
    assert state and all(k.startswith("model.") for k in state)
    ours.load_state_dict(state, strict=True, assign=True)


def _timm_model(name: str) -> str:
    model = name.removeprefix("timm-")
    return "tf_" + model if model.startswith("mobilenetv3") else model


@pytest.mark.parametrize("name", NAMES)
def test_documentation_era_layout_maps_onto_smp_0_6(name: str) -> None:
    # SMP 0.2-0.4: MobileNetV3Encoder kept timm's feature extractor in `model`; the other
    # encoders were timm's network itself with the classifier deleted (no prefix).
    timm_model = _timm_model(name)
    with torch.device("meta"):
        if timm_model.startswith("tf_mobilenetv3"):
            features = timm.create_model(timm_model, features_only=True)
            era = {"model." + k: v for k, v in features.state_dict().items()}
        else:
            network = timm.create_model(timm_model)
            era = {k: v for k, v in network.state_dict().items()
                   if not k.startswith(("fc.", "head."))}
        reference = _smp(name)
        ours = segcore.get_encoder(name)
    remapped = ours.remap_state_dict(dict(era))
    assert set(remapped) == set(reference.state_dict())
    ours.load_state_dict(remapped, strict=True, assign=True)
    reference.load_state_dict(dict(era), strict=True, assign=True)  # SMP's own legacy path


def test_real_build_matches_smp_and_full_unet_agrees() -> None:
    # Without the meta-device shortcut: a randomly initialised SMP Unet, loaded whole.
    name = "timm-regnetx_002"
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = smp.Unet(name, encoder_weights=None, in_channels=1, classes=3).eval()
    ours = segcore.Unet(name, encoder_weights=None, in_channels=1, classes=3).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)
