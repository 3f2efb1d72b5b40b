"""``segcore.optimize_for_inference``: BatchNorm folded, channels_last, inference mode.

Each model gets random BatchNorm statistics and affine parameters, so that folding changes
the convolutions' weights for real; the optimized copy must give the eager eval-mode outputs
within 1e-4 (relative to the outputs' scale), run no BatchNorm in its forward pass, and leave
the original model untouched.
"""

from __future__ import annotations

import copy
import importlib.util
import pickle

import pytest
import torch
from torch import nn

import segcore
from segcore.errors import InvalidOptionError
from segcore.inference import (
    InferenceModel,
    PackedConv2d,
    fold_batchnorm,
    fuse_for_cpu,
    onednn_available,
)

pytest.importorskip("segcore_resnet")

ARCHITECTURES = [("unet", "segcore_unet"), ("fpn", "segcore_fpn"),
                 ("deeplabv3plus", "segcore_deeplab"), ("pspnet", "segcore_pspnet"),
                 ("linknet", "segcore_linknet")]
ENCODERS = ["resnet18"] + (["tu-resnet18"] if importlib.util.find_spec("segcore_timm") else [])


def randomized(model: nn.Module) -> nn.Module:
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            count = module.num_features
            module.running_mean.copy_(torch.rand(count, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(count, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(count, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(count, generator=generator) - 0.5)
    return model.eval()


def batchnorms_called(model: nn.Module, x: torch.Tensor) -> int:
    calls = []
    handles = [module.register_forward_hook(lambda *_: calls.append(1))
               for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return len(calls)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize(("architecture", "package"), ARCHITECTURES)
def test_outputs_match_and_no_batchnorm_runs(architecture, package, encoder):
    pytest.importorskip(package)
    torch.manual_seed(0)
    model = randomized(segcore.build(architecture, encoder=encoder, encoder_weights=None,
                                     classes=3))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    assert batchnorms_called(model, x) > 10

    fast = segcore.optimize_for_inference(model)

    assert isinstance(fast, InferenceModel) and not fast.training
    assert batchnorms_called(fast, x) == 0
    output = fast(x)
    scale = max(1.0, expected.abs().max().item())
    assert (output - expected).abs().max().item() <= 1e-4 * scale
    assert output.is_inference()
    assert all(not parameter.requires_grad for parameter in fast.parameters())
    convolution = next(m for m in fast.modules() if isinstance(m, nn.Conv2d))
    assert convolution.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.config == model.config
    # the original is untouched: same tensors, BatchNorm still there and used
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert batchnorms_called(model, x) > 10
    assert all(parameter.requires_grad for parameter in model.parameters())


def test_aux_head_and_training_mode_input():
    pytest.importorskip("segcore_unet")
    model = randomized(segcore.build("unet", encoder="resnet18", encoder_weights=None,
                                     classes=2, encoder_depth=3, decoder_channels=(32, 16, 8),
                                     aux_params={"classes": 4}))
    model.train()
    x = torch.randn(1, 3, 32, 32)
    fast = segcore.optimize_for_inference(model)
    assert model.training  # the original keeps its mode
    masks, labels = fast(x)
    with torch.no_grad():
        expected_masks, expected_labels = model.eval()(x)
    torch.testing.assert_close(masks, expected_masks, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(labels, expected_labels, atol=1e-4, rtol=1e-4)
    with pytest.raises(InvalidOptionError, match="cannot be trained"):
        fast.train()


def test_shared_and_non_adjacent_batchnorms_are_left_alone():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.other = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y + self.bn(self.other(x))  # conv output used twice, bn shared

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    shared = randomized(Shared())
    assert fold_batchnorm(shared) == 0
    plain = randomized(Plain())
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = plain(x)
    assert fold_batchnorm(plain) == 2  # attribute pairs, found on the traced data flow
    assert isinstance(plain.bn1, nn.Identity) and isinstance(plain.bn2, nn.Identity)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), expected, atol=1e-5, rtol=1e-5)


def test_a_non_module_is_refused():
    with pytest.raises(segcore.InvalidOptionError, match=r"torch\.nn\.Module"):
        segcore.optimize_for_inference("unet")


def test_the_optimized_model_compiles_in_one_graph():
    pytest.importorskip("segcore_unet")
    model = segcore.build("unet", encoder="resnet18", encoder_weights=None, classes=2,
                          encoder_depth=3, decoder_channels=(32, 16, 8)).eval()
    fast = segcore.optimize_for_inference(model)
    compiled = torch.compile(fast, backend="eager", fullgraph=True)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(compiled(x), fast(x))


def test_fold_batchnorm_refuses_a_model_in_training_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(InvalidOptionError, match=r"eval-mode model .* call model.eval\(\)"):
        fold_batchnorm(model)
    assert isinstance(model[1], nn.BatchNorm2d)  # nothing was changed


needs_onednn = pytest.mark.skipif(not onednn_available(), reason="PyTorch without oneDNN")


@needs_onednn
def test_cpu_kernels_pack_convolutions_and_fuse_relus():
    pytest.importorskip("segcore_unet")
    model = randomized(segcore.build("unet", encoder="resnet18", encoder_weights=None,
                                     classes=2, encoder_depth=3, decoder_channels=(32, 16, 8)))
    fast = segcore.optimize_for_inference(model)
    plain = segcore.optimize_for_inference(model, cpu_kernels=False)
    packed = [m for m in fast.modules() if isinstance(m, PackedConv2d)]
    convolutions = [m for m in plain.modules() if isinstance(m, nn.Conv2d)]
    assert len(packed) == len(convolutions)
    assert not any(isinstance(m, PackedConv2d) for m in plain.modules())
    # the stem's and every decoder block's ReLU are fused; a residual block's shared one is not
    assert sum(m.activation == "relu" for m in packed) >= 7
    relus = sum(isinstance(m, nn.ReLU) for m in fast.modules())
    assert 0 < relus < sum(isinstance(m, nn.ReLU) for m in plain.modules())
    assert fast.state_dict().keys() == plain.state_dict().keys()
    for size in [(64, 64), (96, 64), (64, 64)]:  # the packed weights serve every input size
        x = torch.randn(2, 3, *size)
        torch.testing.assert_close(fast(x), plain(x), atol=1e-4, rtol=1e-4)
        assert fast(x).is_contiguous(memory_format=torch.channels_last)


@needs_onednn
@pytest.mark.parametrize("options", [
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": 3, "padding": 2, "dilation": 2, "stride": 2},
    {"kernel_size": 3, "padding": 1, "groups": 8, "bias": False},
    {"kernel_size": (1, 3), "padding": (0, 1)},
])
@pytest.mark.parametrize("activation", ["none", "relu"])
def test_packed_convolution_equals_the_convolution(options, activation):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, **options).eval().requires_grad_(False)
    packed = PackedConv2d.from_conv(conv, activation=activation)
    assert packed.weight is conv.weight and packed.bias is conv.bias
    x = torch.randn(2, 8, 20, 18).contiguous(memory_format=torch.channels_last)
    expected = conv(x) if activation == "none" else torch.relu(conv(x))
    with torch.inference_mode():
        torch.testing.assert_close(packed(x), expected, atol=1e-5, rtol=1e-5)
        assert packed._packed_weight is not None
    # other dtypes and copies take the plain path or pack again
    copied = copy.deepcopy(packed)
    assert copied._packed_weight is None
    torch.testing.assert_close(copied(x), expected, atol=1e-5, rtol=1e-5)
    as_double = copied.double()
    assert as_double._packed_weight is None
    torch.testing.assert_close(as_double(x.double()), expected.double(), atol=1e-5, rtol=1e-5)
    restored = pickle.loads(pickle.dumps(packed))
    torch.testing.assert_close(restored(x), expected, atol=1e-5, rtol=1e-5)


def test_packed_convolution_keeps_gradients_when_they_are_wanted():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    packed = PackedConv2d.from_conv(conv, activation="relu")
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    packed(x).sum().backward()
    assert conv.weight.grad is not None and x.grad is not None
    frozen = PackedConv2d.from_conv(nn.Conv2d(3, 4, 3, padding=1).requires_grad_(False))
    x.grad = None
    frozen(x).sum().backward()  # gradients for the input only (e.g. saliency maps)
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(InvalidOptionError, match="'none' or 'relu'"):
        PackedConv2d.from_conv(conv, activation="gelu")


def test_fuse_for_cpu_leaves_shared_relus_and_string_padding_alone():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 4, 3, padding="same")
            self.conv3 = nn.Conv2d(4, 4, 1)
            self.relu = nn.ReLU()
            self.last = nn.ReLU()

        def forward(self, x):
            y = self.relu(self.conv1(x))
            y = self.relu(self.conv2(y) + x)  # shared ReLU after an add: not fused
            return self.last(self.conv3(y))

    block = Block().eval().requires_grad_(False)
    x = torch.randn(1, 4, 8, 8)
    expected = block(x)
    assert fuse_for_cpu(block) == 1  # conv3 -> last only
    assert isinstance(block.last, nn.Identity) and isinstance(block.relu, nn.ReLU)
    assert type(block.conv2) is nn.Conv2d and isinstance(block.conv1, PackedConv2d)
    assert block.conv3.activation == "relu" and block.conv1.activation == "none"
    with torch.inference_mode():
        torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


@needs_onednn
def test_packed_convolution_follows_weights_loaded_in_place():
    torch.manual_seed(0)
    packed = PackedConv2d.from_conv(nn.Conv2d(4, 6, 3, padding=1).eval().requires_grad_(False))
    direct = PackedConv2d(4, 6, 3, padding=1).eval().requires_grad_(False)  # defaults work too
    x = torch.randn(1, 4, 10, 10)
    with torch.inference_mode():
        packed(x)  # packs the first weights
        direct(x)
    other = nn.Conv2d(4, 6, 3, padding=1)
    packed.load_state_dict(other.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(packed(x), other(x).detach(), atol=1e-5, rtol=1e-5)
