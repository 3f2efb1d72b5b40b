"""Parity of segcore-densenet with SMP 0.6.0: SMP state dicts load strictly, same features.

Also: torchvision's classifier files, with the old ``norm.1``-style keys SMP's
``load_state_dict`` renames, load through ``remap_state_dict``; whole Unet checkpoints give the
same masks.
"""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_densenet")

from segcore.errors import EncoderCapabilityError  # noqa: E402

NAMES = ["densenet121", "densenet169", "densenet201", "densenet161"]
SIZES = [(64, 64), (64, 96)]


@pytest.fixture(scope="module")
def smp_encoders() -> dict[str, torch.nn.Module]:
    """SMP's encoders (3 input channels), built once per name."""
    return {}


def _smp_encoder(cache: dict[str, torch.nn.Module], name: str,
                 in_channels: int) -> torch.nn.Module:
    if name not in cache:
        torch.manual_seed(0)
        cache[name] = smp.encoders.get_encoder(name, weights=None).eval()
    if in_channels == 3:
        return cache[name]
    # What smp.encoders.get_encoder(name, in_channels=c, weights=None) does after building.
    reference = copy.deepcopy(cache[name])
    reference.set_in_channels(in_channels, pretrained=False)
    return reference


def _assert_same_features(actual, expected, name: str) -> None:
    assert len(actual) == len(expected)
    for level, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"feature {level}: {tuple(a.shape)} vs {tuple(b.shape)}"
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                   msg=lambda m, level=level: f"{name} feature {level}: {m}")


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(smp_encoders, name: str,
                                                     in_channels: int) -> None:
    reference = _smp_encoder(smp_encoders, name, in_channels)
    ours = segcore.get_encoder(name, in_channels=in_channels).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == reference.output_stride == 32
    torch.manual_seed(1)
    sizes = SIZES if name == "densenet121" or in_channels == 3 else SIZES[1:]
    for size in sizes:
        x = torch.randn(1, in_channels, *size)
        with torch.no_grad():
            _assert_same_features(ours(x), reference(x), name)


@pytest.mark.parametrize("depth", [2, 4])
def test_shallow_encoders_agree(depth: int) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder("densenet121", depth=depth, weights=None).eval()
    ours = segcore.get_encoder("densenet121", depth=depth).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        _assert_same_features(ours(x), reference(x), "densenet121")


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_and_keys_equal_smp(name: str) -> None:
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, weights=None)
        ours = segcore.get_encoder(name)
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in reference.parameters())
    assert list(ours.state_dict()) == list(reference.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_dilation_is_refused_like_smp(smp_encoders, name: str) -> None:
    reference = copy.deepcopy(_smp_encoder(smp_encoders, name, 3))
    with pytest.raises(ValueError, match="dilated"):
        reference.make_dilated(16)  # what smp.encoders.get_encoder(output_stride=16) calls
    with pytest.raises(EncoderCapabilityError):
        segcore.get_encoder(name, output_stride=16)


def test_torchvision_file_with_old_key_names_loads_like_smp() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    classifier = torchvision.models.densenet121(weights=None)
    for module in classifier.modules():  # non-trivial statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    # Files of that time have no BatchNorm ``num_batches_tracked`` (loading fills it in).
    old = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
           for k, v in classifier.state_dict().items() if "num_batches_tracked" not in k}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old and "classifier.bias" in old
    reference = smp.encoders.get_encoder("densenet121", weights=None).eval()
    reference.load_state_dict(dict(old))  # SMP renames in place and drops the classifier
    ours = segcore.get_encoder("densenet121").eval()
    ours.load_state_dict(ours.remap_state_dict(dict(old)), strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        _assert_same_features(ours(x), reference(x), "densenet121")
        # SMP's deepest feature is torchvision's features() output.
        torch.testing.assert_close(ours(x)[-1], classifier.eval().features(x),
                                   atol=1e-5, rtol=1e-5)


def test_smp_unet_checkpoint_gives_the_same_masks() -> None:
    pytest.importorskip("segcore_unet")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = smp.Unet("densenet121", encoder_weights=None, classes=3,
                             in_channels=1).eval()
    model = segcore.build("unet", encoder="densenet121", encoder_weights=None, classes=3,
                          in_channels=1).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["densenet169", "densenet161"])
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smp.Unet(name, encoder_weights=None, classes=2, decoder_channels=(16,) * 5)
    prefix = "encoder."
    encoder_state = {k[len(prefix):]: v for k, v in model.state_dict().items()
                     if k.startswith(prefix)}
    segcore.get_encoder(name).load_state_dict(encoder_state, strict=True)
