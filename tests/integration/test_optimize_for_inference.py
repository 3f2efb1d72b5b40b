"""``segcore.optimize_for_inference``: BatchNorm folded, channels_last, inference mode.

Each model gets random BatchNorm statistics and affine parameters, so that folding changes
the convolutions' weights for real; the optimized copy must give the eager eval-mode outputs
within 1e-4 (relative to the outputs' scale), run no BatchNorm in its forward pass, and leave
the original model untouched.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

import segcore
from segcore.errors import InvalidOptionError
from segcore.inference import InferenceModel, fold_batchnorm

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
