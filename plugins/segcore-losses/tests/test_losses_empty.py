"""An input without elements (an empty batch, N = 0, or images without pixels) gives 0.

The value is a 0-dim zero that keeps the autograd graph: it requires grad when the output
does, and ``backward()`` gives zero gradients, so a training step over an empty batch (the last
batch of a filtered dataset, a rank without samples) neither crashes nor poisons the weights
with NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import segcore_losses as L
import torch
from torch import nn

import segcore

IGNORE = 255
CLASSES = 3

# (id, mode the inputs are made for, factory taking ignore_index)
LOSSES: list[tuple[str, str, Callable[[int | None], nn.Module]]] = []
for _mode in ("binary", "multiclass", "multilabel"):
    LOSSES += [
        (f"dice-{_mode}", _mode, lambda ignore, m=_mode: L.DiceLoss(m, ignore_index=ignore)),
        (f"jaccard-{_mode}", _mode, lambda ignore, m=_mode: L.JaccardLoss(m, ignore_index=ignore)),
        (f"tversky-{_mode}", _mode,
         lambda ignore, m=_mode: L.TverskyLoss(m, ignore_index=ignore, gamma=0.75)),
        (f"focal-{_mode}", _mode, lambda ignore, m=_mode: L.FocalLoss(m, ignore_index=ignore)),
        (f"focal-normalized-sum-{_mode}", _mode,
         lambda ignore, m=_mode: L.FocalLoss(m, ignore_index=ignore, normalized=True,
                                           reduction="sum")),
        (f"lovasz-{_mode}", _mode, lambda ignore, m=_mode: L.LovaszLoss(m, ignore_index=ignore)),
        (f"lovasz-per-image-{_mode}", _mode,
         lambda ignore, m=_mode: L.LovaszLoss(m, ignore_index=ignore, per_image=True)),
    ]
LOSSES += [
    ("soft-bce-binary", "binary", lambda ignore: L.SoftBCEWithLogitsLoss(ignore_index=ignore)),
    ("soft-bce-multilabel", "multilabel",
     lambda ignore: L.SoftBCEWithLogitsLoss(ignore_index=ignore, smooth_factor=0.1)),
    ("soft-bce-sum", "binary",
     lambda ignore: L.SoftBCEWithLogitsLoss(ignore_index=ignore, reduction="sum")),
    ("soft-ce", "multiclass", lambda ignore: L.SoftCrossEntropyLoss(ignore_index=ignore)),
    ("soft-ce-smooth", "multiclass",
     lambda ignore: L.SoftCrossEntropyLoss(ignore_index=ignore, smooth_factor=0.1)),
    ("soft-ce-sum", "multiclass",
     lambda ignore: L.SoftCrossEntropyLoss(ignore_index=ignore, reduction="sum")),
]
# L.MCCLoss has no ignore_index
MCC = ("mcc-binary", "binary", lambda ignore: L.MCCLoss(from_logits=True))

# (id, batch, spatial size): no image, or images without pixels
EMPTY_SHAPES = [("no-image", 0, (4, 4)), ("no-pixel", 2, (0, 4))]


def empty_inputs(mode: str, batch: int, spatial: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Logits (requiring grad) and a target of the mode's documented layout, with no element."""
    channels = 1 if mode == "binary" else CLASSES
    logits = torch.randn(batch, channels, *spatial, requires_grad=True)
    if mode == "multilabel":
        target = torch.zeros(batch, channels, *spatial)
    else:
        target = torch.zeros(batch, *spatial, dtype=torch.long)
    return logits, target


def assert_zero_with_zero_gradient(value: torch.Tensor, logits: torch.Tensor) -> None:
    assert value.dim() == 0, f"expected a 0-dim tensor, got shape {tuple(value.shape)}"
    assert value.dtype == torch.float32
    assert value.item() == 0.0, value
    assert value.requires_grad
    value.backward()
    assert logits.grad is not None and logits.grad.shape == logits.shape
    assert (logits.grad == 0).all()


@pytest.mark.parametrize(("shape_id", "batch", "spatial"), EMPTY_SHAPES,
                         ids=[s[0] for s in EMPTY_SHAPES])
@pytest.mark.parametrize("ignore_index", [None, IGNORE], ids=["no-ignore", "ignore"])
@pytest.mark.parametrize(("name", "mode", "factory"), LOSSES, ids=[c[0] for c in LOSSES])
def test_empty_input_gives_zero_with_a_gradient(name, mode, factory, ignore_index, shape_id,
                                                batch, spatial):
    logits, target = empty_inputs(mode, batch, spatial)
    assert_zero_with_zero_gradient(factory(ignore_index)(logits, target), logits)


@pytest.mark.parametrize(("shape_id", "batch", "spatial"), EMPTY_SHAPES,
                         ids=[s[0] for s in EMPTY_SHAPES])
def test_mcc_empty_input_gives_zero_with_a_gradient(shape_id, batch, spatial):
    logits, target = empty_inputs("binary", batch, spatial)
    assert_zero_with_zero_gradient(MCC[2](None)(logits, target), logits)


def test_empty_input_without_grad_gives_a_plain_zero():
    logits, target = empty_inputs("multiclass", 0, (4, 4))
    value = L.DiceLoss("multiclass")(logits.detach(), target)
    assert value.dim() == 0 and value.item() == 0.0 and not value.requires_grad


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_empty_half_precision_input_gives_a_float32_zero(dtype):
    logits, target = empty_inputs("binary", 0, (4, 4))
    value = L.FocalLoss("binary")(logits.detach().to(dtype), target)
    assert value.dtype == torch.float32 and value.item() == 0.0


@pytest.mark.parametrize(
    ("factory", "mode", "expected_shape"),
    [
        (lambda: L.FocalLoss("multilabel", reduction="none"), "multilabel", (0, CLASSES, 4, 4)),
        (lambda: L.SoftBCEWithLogitsLoss(reduction="none"), "binary", (0, 1, 4, 4)),
        (lambda: L.SoftCrossEntropyLoss(reduction="none"), "multiclass", (0, 4, 4)),
    ],
)
def test_empty_input_with_reduction_none_gives_an_empty_tensor(factory, mode, expected_shape):
    logits, target = empty_inputs(mode, 0, (4, 4))
    value = factory()(logits, target)
    assert tuple(value.shape) == expected_shape


def test_weighted_sum_of_an_empty_batch():
    logits, target = empty_inputs("binary", 0, (8, 8))
    loss = segcore.build_loss({"dice": 1.0, "focal": 0.5, "lovasz": 1.0, "soft_bce": 1.0},
                              mode="binary", ignore_index=IGNORE)
    assert_zero_with_zero_gradient(loss(logits, target), logits)
    assert all(value.item() == 0.0 for value in loss.last_values.values())


_COMPILED_NAMES = ("tversky-multilabel", "focal-binary", "lovasz-multiclass",
                   "lovasz-per-image-binary", "soft-bce-binary", "soft-ce")
COMPILED = [case for case in LOSSES if case[0] in _COMPILED_NAMES] + [MCC]


@pytest.mark.parametrize(("name", "mode", "factory"), COMPILED, ids=[c[0] for c in COMPILED])
def test_empty_batch_compiles_without_graph_breaks(name, mode, factory):
    """The empty-batch path branches on shapes only, so ``fullgraph=True`` traces it."""
    logits, target = empty_inputs(mode, 0, (4, 4))
    loss = factory(None if name.startswith("mcc") else IGNORE)
    compiled = torch.compile(loss, fullgraph=True, backend="eager")
    assert_zero_with_zero_gradient(compiled(logits, target), logits)
    torch.compiler.reset()


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_tversky_gamma_below_one_at_zero_loss_has_a_finite_gradient(mode):
    """0 ** gamma has an infinite slope for gamma < 1: a batch whose loss is 0 (no target
    pixel of any class) must still give finite (zero) gradients, not NaN."""
    logits, target = empty_inputs(mode, 2, (4, 4))
    if mode == "multiclass":
        target = torch.full_like(target, IGNORE)  # every pixel ignored: no class present
    value = L.TverskyLoss(mode, gamma=0.5, ignore_index=IGNORE)(logits, target)
    assert value.item() == 0.0
    value.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad == 0).all()
