"""The decoders' math against hand computations, checkpoint layout, compile and export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from segcore_deeplab.decoder import ASPP, ASPPPooling, DeepLabV3Decoder, DeepLabV3PlusDecoder

import segcore
from segcore import testing

TINY = testing.TINY_ENCODER
ARCHITECTURES = ["deeplabv3", "deeplabv3plus"]


tiny_encoder = testing.tiny_encoder_fixture()


def _randomise_norms(module: torch.nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics so eval-mode math is really exercised."""
    generator = torch.Generator().manual_seed(3)
    for submodule in module.modules():
        if isinstance(submodule, torch.nn.BatchNorm2d):
            n = submodule.num_features
            submodule.running_mean.copy_(torch.randn(n, generator=generator))
            submodule.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            submodule.weight.data.copy_(torch.randn(n, generator=generator))
            submodule.bias.data.copy_(torch.randn(n, generator=generator))


def _bn(x: torch.Tensor, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None]


@torch.no_grad()
def test_image_pooling_branch_by_hand():
    torch.manual_seed(0)
    pooling = ASPPPooling(6, 4).eval()
    _randomise_norms(pooling)
    x = torch.randn(2, 6, 5, 7)
    mean = x.mean(dim=(2, 3))                                  # (2, 6)
    projected = mean @ pooling[1].weight[:, :, 0, 0].T         # (2, 4)
    bn = pooling[2]
    expected = torch.relu((projected - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
                          * bn.weight + bn.bias)
    out = pooling(x)
    assert out.shape == (2, 4, 5, 7)
    torch.testing.assert_close(out, expected[:, :, None, None].expand(2, 4, 5, 7))


@torch.no_grad()
def test_image_pooling_with_batch_one_in_eval_mode():
    pooling = ASPPPooling(6, 4).eval()
    _randomise_norms(pooling)
    batch = torch.randn(3, 6, 4, 4)
    torch.testing.assert_close(pooling(batch[:1]), pooling(batch)[:1])


def test_image_pooling_needs_a_batch_of_two_when_training():
    # As in SMP: BatchNorm on one value per channel cannot compute batch statistics.
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ASPPPooling(6, 4).train()(torch.randn(1, 6, 4, 4))


@torch.no_grad()
def test_aspp_by_hand():
    torch.manual_seed(0)
    aspp = ASPP(5, 3, atrous_rates=(1, 2, 3), separable=False, dropout=0.5).eval()
    _randomise_norms(aspp)
    x = torch.randn(2, 5, 9, 9)

    def conv_bn_relu(branch, dilation):
        conv = branch[0]
        y = F.conv2d(x, conv.weight, padding=dilation * (conv.kernel_size[0] // 2),
                     dilation=dilation)
        return torch.relu(_bn(y, branch[1]))

    branches = [conv_bn_relu(aspp.convs[0], 1)]
    branches += [conv_bn_relu(aspp.convs[i], rate) for i, rate in ((1, 1), (2, 2), (3, 3))]
    pooled = F.conv2d(x.mean((2, 3), keepdim=True), aspp.convs[4][1].weight)
    branches.append(torch.relu(_bn(pooled, aspp.convs[4][2])).expand(-1, -1, 9, 9))
    concat = torch.cat(branches, 1)
    expected = torch.relu(_bn(F.conv2d(concat, aspp.project[0].weight), aspp.project[1]))
    torch.testing.assert_close(aspp(x), expected)


@torch.no_grad()
def test_deeplabv3_decoder_uses_only_the_deepest_features():
    decoder = DeepLabV3Decoder(in_channels=6, out_channels=4, atrous_rates=(1, 2, 3)).eval()
    _randomise_norms(decoder)
    deepest = torch.randn(2, 6, 4, 4)
    expected = torch.relu(_bn(F.conv2d(decoder.aspp(deepest), decoder.conv.weight, padding=1),
                              decoder.bn))
    torch.testing.assert_close(decoder([torch.randn(2, 3, 8, 8), deepest]), expected)


@torch.no_grad()
def test_deeplabv3plus_decoder_fuses_quarter_resolution_features():
    channels = (3, 4, 5, 6, 7, 8)
    decoder = DeepLabV3PlusDecoder(channels, encoder_depth=5, out_channels=4,
                                   atrous_rates=(1, 2, 3), output_stride=16).eval()
    _randomise_norms(decoder)
    features = [torch.randn(2, c, 64 // 2**min(i, 4), 64 // 2**min(i, 4))
                for i, c in enumerate(channels)]
    context = F.interpolate(decoder.aspp(features[-1]), scale_factor=4, mode="bilinear",
                            align_corners=True)
    details = torch.relu(_bn(F.conv2d(features[2], decoder.block1[0].weight), decoder.block1[1]))
    expected = decoder.block2(torch.cat([context, details], 1))
    out = decoder(features)
    assert out.shape == (2, 4, 16, 16)
    torch.testing.assert_close(out, expected)


def test_state_dict_layout_follows_smp():
    v3 = segcore.build("deeplabv3", encoder=TINY, decoder_channels=8)
    keys = {k for k in v3.state_dict() if not k.startswith("encoder.")}
    for key in ("decoder.aspp.convs.0.0.weight", "decoder.aspp.convs.1.0.weight",
                "decoder.aspp.convs.3.1.running_var", "decoder.aspp.convs.4.1.weight",
                "decoder.aspp.project.0.weight", "decoder.aspp.project.1.bias",
                "decoder.conv.weight", "decoder.bn.running_mean",
                "segmentation_head.0.weight", "segmentation_head.0.bias"):
        assert key in keys, key
    plus = segcore.build("deeplabv3plus", encoder=TINY, decoder_channels=8)
    keys = {k for k in plus.state_dict() if not k.startswith("encoder.")}
    for key in ("decoder.aspp.0.convs.1.0.0.weight", "decoder.aspp.0.convs.1.0.1.weight",
                "decoder.aspp.0.project.0.weight", "decoder.aspp.1.0.weight",
                "decoder.aspp.1.1.weight", "decoder.aspp.2.running_mean",
                "decoder.block1.0.weight", "decoder.block1.1.weight",
                "decoder.block2.0.0.weight", "decoder.block2.0.1.weight",
                "decoder.block2.1.running_var", "segmentation_head.0.weight"):
        assert key in keys, key


@torch.no_grad()
def test_old_sequential_decoder_checkpoints_load():
    model = segcore.build("deeplabv3", encoder=TINY, decoder_channels=8).eval()
    _randomise_norms(model)
    renamed = {}
    for key, value in model.state_dict().items():
        for new, old in (("decoder.aspp.", "decoder.0."), ("decoder.conv.", "decoder.1."),
                         ("decoder.bn.", "decoder.2.")):
            if key.startswith(new):
                key = old + key[len(new):]
        renamed[key] = value.clone()
    other = segcore.build("deeplabv3", encoder=TINY, decoder_channels=8).eval()
    other.load_state_dict(renamed, strict=True)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(other(x), model(x))


# -- compile / export / memory format ---------------------------------------------------------
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_torch_compile_fullgraph(architecture):
    torch.manual_seed(0)
    model = segcore.build(architecture, encoder=TINY, decoder_channels=8, classes=2,
                          aux_params={"classes": 3})
    testing.check_compile(model, torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_torch_export_with_dynamic_sizes(architecture):
    torch.manual_seed(0)
    model = segcore.build(architecture, encoder=TINY, decoder_channels=8, classes=2).eval()
    height, width = torch.export.Dim("height", min=1, max=16), torch.export.Dim("width", max=16)
    exported = torch.export.export(
        model, (torch.randn(2, 3, 64, 64),),
        dynamic_shapes={"x": {0: torch.export.Dim("batch", max=8), 2: 16 * height,
                              3: 16 * width}},
    )
    x = torch.randn(3, 3, 48, 80)
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_channels_last(architecture):
    torch.manual_seed(0)
    model = segcore.build(architecture, encoder=TINY, decoder_channels=8)
    testing.check_channels_last(model, torch.randn(2, 3, 64, 64))
