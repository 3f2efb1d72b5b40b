"""The VGG encoders follow the segcore encoder contract, torchvision's layout and SMP's taps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import segcore
from segcore import testing
from segcore.errors import InvalidOptionError

OTHERS = ["vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


def test_vgg11_follows_the_contract() -> None:
    testing.check_encoder("vgg11", depths=(1, 3, 4, 5), in_channels=(1, 3, 4), size=32,
                          compile_backend="eager")


@pytest.mark.parametrize("name", OTHERS)
def test_every_vgg_follows_the_contract(name: str) -> None:
    # Same code as vgg11 with other configurations: one depth, no second graph capture.
    testing.check_encoder(name, depths=(5,), in_channels=(3,), size=32, batch=1, compile=False)


def test_module_names_are_torchvision_names() -> None:
    keys = set(segcore.get_encoder("vgg11").state_dict())
    assert keys == {f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13, 16, 18)
                    for p in ("weight", "bias")}
    keys = set(segcore.get_encoder("vgg11_bn").state_dict())
    assert {"features.0.weight", "features.1.running_var", "features.1.num_batches_tracked",
            "features.25.weight", "features.26.bias"} <= keys
    assert not any(k.startswith(("classifier", "avgpool")) for k in keys)


def test_features_match_a_hand_computation() -> None:
    torch.manual_seed(0)
    encoder = segcore.get_encoder("vgg11").eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        features = encoder(x)
        convs = [m for m in encoder.features if isinstance(m, nn.Conv2d)]

        def conv(t: torch.Tensor, i: int) -> torch.Tensor:
            return F.relu(F.conv2d(t, convs[i].weight, convs[i].bias, padding=1))

        s1 = conv(x, 0)                                          # 1/1, not returned
        s2 = conv(F.max_pool2d(s1, 2), 1)                        # 1/2
        s4 = conv(conv(F.max_pool2d(s2, 2), 2), 3)               # 1/4
        s8 = conv(conv(F.max_pool2d(s4, 2), 4), 5)               # 1/8
        s16 = conv(conv(F.max_pool2d(s8, 2), 6), 7)              # 1/16
        s32 = F.max_pool2d(s16, 2)                               # 1/32: pooled
    assert features[0] is x
    for actual, expected in zip(features[1:], (s2, s4, s8, s16, s32), strict=True):
        torch.testing.assert_close(actual, expected)


def test_shallow_encoders_do_not_run_the_deeper_layers() -> None:
    encoder = segcore.get_encoder("vgg11_bn", depth=2).eval()
    calls: list[int] = []
    for index, module in enumerate(encoder.features):
        module.register_forward_hook(lambda *_, index=index: calls.append(index))
    features = encoder(torch.randn(1, 3, 32, 32))
    assert [tuple(f.shape[1:]) for f in features] == [(3, 32, 32), (128, 16, 16), (256, 8, 8)]
    assert max(calls) == 13  # the ReLU before the third max-pool
    assert encoder.out_channels == (3, 128, 256) and encoder.output_stride == 4


def test_invalid_configurations_are_refused() -> None:
    from segcore_vgg import VGGEncoder

    with pytest.raises(InvalidOptionError, match="exactly 5"):
        VGGEncoder((64, "M", 128, "M"))
    with pytest.raises(InvalidOptionError, match="config must be one of"):
        VGGEncoder("Z")


def test_torchscript_gives_the_same_features() -> None:
    testing.check_torchscript(segcore.get_encoder("vgg11_bn", depth=4), torch.randn(1, 3, 32, 32))


def test_unet_adds_a_center_block_on_the_pooled_features() -> None:
    pytest.importorskip("segcore_unet")
    model = segcore.Unet("vgg11", encoder_weights=None, classes=2, in_channels=1).eval()
    assert not isinstance(model.decoder.center, nn.Identity)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 2, 64, 64)


def test_fpn_builds() -> None:
    pytest.importorskip("segcore_fpn")
    testing.check_encoder_in_architecture("fpn", "vgg13", classes=3)


def test_deeplabv3plus_needs_a_shallow_encoder() -> None:
    pytest.importorskip("segcore_deeplab")
    # refused with its default (dilated) output stride; depth 4 works without dilation
    testing.check_undilated_encoder_in_deeplabv3plus("vgg11")
