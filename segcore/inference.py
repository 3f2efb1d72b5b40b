"""``optimize_for_inference``: a faster eval copy of a model (BatchNorm folded, channels_last).

Example::

    fast = segcore.optimize_for_inference(model)   # model itself is left as it was
    masks = fast(images)                           # same outputs as model.eval()(images)

What it does to a deep copy of the model:

* eval mode, ``requires_grad`` off for every parameter;
* every ``BatchNorm2d`` that directly follows a ``Conv2d`` (or a ``ConvTranspose2d`` of one
  group, as in Linknet's decoder) (the convolution's output goes to
  that BatchNorm and nowhere else) is folded into the convolution
  (``torch.nn.utils.fusion.fuse_conv_bn_eval``) and replaced by ``nn.Identity``. The pairs
  are found on the data flow, not on names: each submodule is traced with ``torch.fx``;
  a module that cannot be traced (Python control flow on values, ...) is split into its
  children, which are traced in turn, down to ``nn.Sequential`` blocks, whose order is
  their data flow. A module (or BatchNorm) registered or called more than once is left alone;
* parameters and buffers in ``channels_last`` memory format, inputs converted likewise;
* the copy is wrapped in ``InferenceModel``, whose ``forward`` runs under
  ``torch.inference_mode()``. It is a plain ``nn.Module`` (``torch.compile`` works on it);
  ``.model`` is the optimized copy and ``.config`` its configuration.

Outputs equal the eager eval-mode model's up to float rounding (within 1e-4; tested).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["InferenceModel", "fold_batchnorm", "optimize_for_inference"]


class InferenceModel(nn.Module):
    """An optimized model: ``forward`` converts 4-D inputs to ``channels_last`` and runs the
    wrapped ``model`` under ``torch.inference_mode()``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Any:
        with torch.inference_mode():
            if isinstance(x, torch.Tensor) and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x)

    @property
    def config(self) -> Any:
        """The wrapped model's ``config`` (``SegmentationModel.config``)."""
        return self.model.config

    def train(self, mode: bool = True) -> InferenceModel:
        """Stays in eval mode: BatchNorm is folded, so the copy cannot be trained."""
        if mode:
            from segcore.errors import InvalidOptionError

            raise InvalidOptionError(
                "an optimize_for_inference() model cannot be trained (its BatchNorm layers "
                "are folded into the convolutions); train the original model")
        return super().train(False)


def optimize_for_inference(model: nn.Module) -> InferenceModel:
    """An eval-mode copy of ``model`` made for inference; ``model`` is not changed.

    BatchNorm2d layers that follow a Conv2d are folded into it, weights and inputs are in
    ``channels_last`` format, gradients are off and ``forward`` runs under
    ``torch.inference_mode()`` (see the module's docstring). Outputs match ``model.eval()``'s
    within 1e-4.

    Example::

        fast = segcore.optimize_for_inference(segcore.from_pretrained("runs/best"))
        masks = fast(images).argmax(1)
    """
    if not isinstance(model, nn.Module):
        from segcore.errors import InvalidOptionError

        raise InvalidOptionError(
            f"optimize_for_inference takes a torch.nn.Module (a segcore model), got "
            f"{type(model).__name__}")
    if isinstance(model, InferenceModel):
        model = model.model
    optimized = copy.deepcopy(model).eval()
    for parameter in optimized.parameters():
        parameter.requires_grad_(False)
    fold_batchnorm(optimized)
    optimized = optimized.to(memory_format=torch.channels_last)
    return InferenceModel(optimized).eval()


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every ``BatchNorm2d`` that directly follows a ``Conv2d`` (or a one-group
    ``ConvTranspose2d``) into it, in place.

    ``model`` must be in eval mode (the running statistics are used). Returns how many were
    folded; each folded BatchNorm becomes ``nn.Identity``.
    """
    if model.training:
        from segcore.errors import InvalidOptionError

        raise InvalidOptionError(
            "fold_batchnorm needs an eval-mode model (it folds the running statistics): call "
            "model.eval() first")
    counts: dict[int, int] = {}
    for _, module in model.named_modules(remove_duplicate=False):
        counts[id(module)] = counts.get(id(module), 0) + 1
    return _fold(model, counts)


def _fold(module: nn.Module, counts: dict[int, int]) -> int:
    if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)) or not list(module.children()):
        return 0
    pairs = _traced_pairs(module)
    if pairs is None:  # not traceable: Sequential order, then the children one by one
        pairs = _sequential_pairs(module) if type(module).forward is nn.Sequential.forward else []
        folded = _fold_pairs(module, pairs, counts)
        return folded + sum(_fold(child, counts) for child in module.children())
    return _fold_pairs(module, pairs, counts)


def _traced_pairs(module: nn.Module) -> list[tuple[str, str]] | None:
    """(conv, batchnorm) qualified names whose data flow is conv -> bn only; ``None`` when
    ``module`` cannot be traced."""

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
            leaf = isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d))
            return leaf or super().is_leaf_module(m, qualified_name)

    try:
        graph = _Tracer().trace(module)
    except Exception:  # any failure of symbolic tracing: fall back to the children
        return None
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
        elif node.op == "get_attr":
            calls[str(node.target).rsplit(".", 1)[0]] = 2  # weights used directly: leave it
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        source = node.args[0]
        if not isinstance(source, fx.Node) or source.op != "call_module":
            continue
        if len(source.users) != 1 or calls.get(node.target) != 1 or calls.get(source.target) != 1:
            continue
        bn, conv = module.get_submodule(node.target), module.get_submodule(source.target)
        if _foldable(conv) and isinstance(bn, nn.BatchNorm2d):
            pairs.append((source.target, node.target))
    return pairs


def _foldable(module: nn.Module | None) -> bool:
    """A convolution whose output channels a BatchNorm can be folded into."""
    if isinstance(module, nn.ConvTranspose2d):
        return module.groups == 1  # fuse_conv_bn_eval's transposed weights: one group
    return isinstance(module, nn.Conv2d)


def _sequential_pairs(module: nn.Module) -> list[tuple[str, str]]:
    names = list(module._modules)
    pairs = []
    for first, second in itertools.pairwise(names):
        if (_foldable(module._modules[first])
                and isinstance(module._modules[second], nn.BatchNorm2d)):
            pairs.append((first, second))
    return pairs


def _fold_pairs(root: nn.Module, pairs: list[tuple[str, str]], counts: dict[int, int]) -> int:
    folded = 0
    for conv_name, bn_name in pairs:
        conv, bn = root.get_submodule(conv_name), root.get_submodule(bn_name)
        if counts.get(id(conv), 0) != 1 or counts.get(id(bn), 0) != 1:
            continue  # shared modules: folding one use would change the other
        if bn.running_mean is None or bn.running_var is None or bn.training or conv.training:
            continue
        if type(conv) not in (nn.Conv2d, nn.ConvTranspose2d) or type(bn) is not nn.BatchNorm2d:
            continue  # subclasses may compute something else
        fused = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
        _replace(root, conv_name, fused)
        _replace(root, bn_name, nn.Identity())
        counts[id(fused)] = 1
        folded += 1
    return folded


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attribute = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attribute, module)
