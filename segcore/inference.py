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
* on CPUs with oneDNN (``torch.backends.mkldnn``; ``cpu_kernels=True``, the default), every
  plain ``Conv2d`` becomes a ``PackedConv2d``: the same module and parameters, whose
  ``forward`` on float32 CPU tensors calls oneDNN with the weight reordered once into
  oneDNN's blocked layout (instead of at every call, as the eager convolution does), and a
  ``ReLU`` that directly follows the convolution (found like the BatchNorm pairs, through the
  folded-away ``Identity``) is fused into it. On other devices or dtypes, under
  ``torch.compile``/``torch.export`` and in TorchScript it runs as a plain ``Conv2d`` (+ ReLU);
* the copy is wrapped in ``InferenceModel``, whose ``forward`` runs under
  ``torch.inference_mode()``. It is a plain ``nn.Module`` (``torch.compile`` works on it);
  ``.model`` is the optimized copy and ``.config`` its configuration.

Outputs equal the eager eval-mode model's up to float rounding (within 1e-4; tested).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = [
    "InferenceModel",
    "PackedConv2d",
    "fold_batchnorm",
    "fuse_for_cpu",
    "onednn_available",
    "optimize_for_inference",
]


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


def optimize_for_inference(model: nn.Module, *, cpu_kernels: bool = True) -> InferenceModel:
    """An eval-mode copy of ``model`` made for inference; ``model`` is not changed.

    BatchNorm2d layers that follow a Conv2d are folded into it, weights and inputs are in
    ``channels_last`` format, gradients are off and ``forward`` runs under
    ``torch.inference_mode()`` (see the module's docstring). Outputs match ``model.eval()``'s
    within 1e-4.

    Args:
        model: the model (any ``nn.Module``; a segcore model in practice).
        cpu_kernels: convolutions with weights pre-packed for oneDNN and ReLU fused into them
            (``fuse_for_cpu``), used on float32 CPU inputs where PyTorch has oneDNN; ``False``
            keeps plain ``Conv2d`` modules.

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
    if cpu_kernels and onednn_available():
        fuse_for_cpu(optimized)
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
    return _rewrite_pairs(model, _registrations(model), _BATCHNORM_PAIRS)


def _registrations(model: nn.Module) -> dict[int, int]:
    """How many times each module (by ``id``) is registered in ``model``."""
    counts: dict[int, int] = {}
    for _, module in model.named_modules(remove_duplicate=False):
        counts[id(module)] = counts.get(id(module), 0) + 1
    return counts


Pairs = list[tuple[str, str]]


class _PairRewrite(NamedTuple):
    """One rewrite of (first, second) module pairs: how to find them and what to do."""

    leaves: tuple[type[nn.Module], ...]  # traced as calls, never entered
    find_traced: Callable[[nn.Module, fx.Graph, dict[str, int]], Pairs]
    find_sequential: Callable[[nn.Module], Pairs]
    rewrite: Callable[[nn.Module, Pairs, dict[int, int]], int]  # -> how many were rewritten


def _rewrite_pairs(module: nn.Module, counts: dict[int, int], rewrite: _PairRewrite) -> int:
    """Rewrite the pairs found on ``module``'s traced data flow; a module that cannot be
    traced: its ``nn.Sequential`` order, then its children one by one."""
    if isinstance(module, rewrite.leaves) or not list(module.children()):
        return 0
    traced = _trace_calls(module, rewrite.leaves)
    if traced is not None:
        return rewrite.rewrite(module, rewrite.find_traced(module, *traced), counts)
    pairs = rewrite.find_sequential(module) if type(module).forward is nn.Sequential.forward else []
    done = rewrite.rewrite(module, pairs, counts)
    return done + sum(_rewrite_pairs(child, counts, rewrite) for child in module.children())


def _trace_calls(module: nn.Module, leaves: tuple[type[nn.Module], ...]
                 ) -> tuple[fx.Graph, dict[str, int]] | None:
    """``module``'s traced graph (``leaves`` kept as calls) and how often each submodule is
    called (2 for one whose parameters are read directly); ``None`` when it cannot be traced."""

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
            return isinstance(m, leaves) or super().is_leaf_module(m, qualified_name)

    try:
        graph = _Tracer().trace(module)
    except Exception:  # any failure of symbolic tracing: the caller falls back to children
        return None
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
        elif node.op == "get_attr":
            calls[str(node.target).rsplit(".", 1)[0]] = 2  # weights used directly: leave it
    return graph, calls


def _traced_pairs(module: nn.Module, graph: fx.Graph,
                  calls: dict[str, int]) -> list[tuple[str, str]]:
    """(conv, batchnorm) qualified names whose data flow is conv -> bn only."""
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


# -- oneDNN convolutions for CPU inference ------------------------------------------------


def onednn_available() -> bool:
    """Whether this PyTorch build can run ``PackedConv2d``'s oneDNN path."""
    return bool(torch.backends.mkldnn.is_available()) and hasattr(
        torch.ops.mkldnn, "_convolution_pointwise")


class PackedConv2d(nn.Conv2d):
    """A ``Conv2d`` for CPU inference: weight reordered once for oneDNN, optional fused ReLU.

    Same parameters, state-dict keys and ``repr`` fields as the ``Conv2d`` it replaces. On a
    float32 CPU input outside ``torch.compile``/export/TorchScript, ``forward`` calls
    ``torch.ops.mkldnn._convolution_pointwise`` with the weight in oneDNN's blocked layout
    (made at the first call and again after ``.to()``/``.cuda()``/dtype changes or an in-place
    change of the weight, e.g. ``load_state_dict``); elsewhere it
    is ``Conv2d.forward`` followed by the activation. Gradients do not flow through the packed
    path: it is for eval-mode copies only (``optimize_for_inference``).

    Example::

        fast = PackedConv2d.from_conv(nn.Conv2d(3, 8, 3, padding=1).eval(), activation="relu")
        fast(torch.rand(1, 3, 32, 32))   # == relu(conv(x))
    """

    #: "none" or "relu" (fused after the convolution)
    activation: str = "none"
    _packed_weight: torch.Tensor | None = None
    _packed_version: int = -1

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, activation: str = "none") -> PackedConv2d:
        """A ``PackedConv2d`` sharing ``conv``'s parameters; ``activation``: "none" or "relu"."""
        if activation not in ("none", "relu"):
            from segcore.errors import InvalidOptionError

            raise InvalidOptionError(
                f"PackedConv2d activation must be 'none' or 'relu', got {activation!r}")
        packed = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                     padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                     bias=conv.bias is not None, padding_mode=conv.padding_mode, device="meta")
        packed.weight = conv.weight
        packed.bias = conv.bias
        packed.train(conv.training)
        packed.activation = activation
        packed._packed_weight = None
        return packed

    def extra_repr(self) -> str:
        return super().extra_repr() + (", activation=relu" if self.activation == "relu" else "")

    def _apply(self, fn: Any, recurse: bool = True) -> PackedConv2d:
        self._packed_weight = None  # device, dtype or layout may change: pack again
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_packed_weight"] = None  # opaque oneDNN tensor: not copied, packed again
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()
                or x.device.type != "cpu" or x.dtype != torch.float32
                or self.weight.dtype != torch.float32 or self.weight.device.type != "cpu"
                or (torch.is_grad_enabled() and (self.weight.requires_grad or x.requires_grad))):
            output = self._conv_forward(x, self.weight, self.bias)
            return torch.relu(output) if self.activation == "relu" else output
        packed = self._packed_weight
        # An in-place change of the weight (load_state_dict, copy_) bumps its version: repack.
        if packed is None or self._packed_version != self.weight._version:
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight.detach(), list(self.padding), list(self.stride),
                list(self.dilation), self.groups, list(x.shape))
            self._packed_weight = packed
            self._packed_version = self.weight._version
        return torch.ops.mkldnn._convolution_pointwise(
            x, packed, self.bias, list(self.padding), list(self.stride), list(self.dilation),
            self.groups, self.activation, [], "")


def fuse_for_cpu(model: nn.Module) -> int:
    """Replace each plain ``Conv2d`` of an eval-mode ``model`` by a ``PackedConv2d``, in place,
    fusing a ``ReLU`` that directly follows it (through ``nn.Identity`` left by
    ``fold_batchnorm``) into it. Returns how many ReLUs were fused.

    A convolution with string padding ("same"/"valid") or a padding mode other than zeros is
    left alone, as is a ReLU registered or called more than once (e.g. shared by two places
    of a residual block).
    """
    counts = _registrations(model)
    fused = _rewrite_pairs(model, counts, _RELU_PAIRS)
    for name, module in list(model.named_modules()):
        if _packable(module) and counts.get(id(module), 0) == 1:
            _replace(model, name, PackedConv2d.from_conv(module))
    return fused


def _packable(module: nn.Module) -> bool:
    return (type(module) is nn.Conv2d and not isinstance(module.padding, str)
            and module.padding_mode == "zeros")


def _traced_activation_pairs(module: nn.Module, graph: fx.Graph,
                             calls: dict[str, int]) -> list[tuple[str, str]]:
    """(conv, relu) names whose data flow is conv -> (Identity ->)* relu only."""
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or calls.get(node.target) != 1:
            continue
        if type(module.get_submodule(node.target)) is not nn.ReLU:
            continue
        source = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        while (isinstance(source, fx.Node) and source.op == "call_module"
               and type(module.get_submodule(source.target)) is nn.Identity
               and len(source.users) == 1 and len(source.args) == 1):
            source = source.args[0]
        if (isinstance(source, fx.Node) and source.op == "call_module"
                and len(source.users) == 1 and calls.get(source.target) == 1
                and _packable(module.get_submodule(source.target))):
            pairs.append((source.target, node.target))
    return pairs


def _sequential_activation_pairs(module: nn.Module) -> list[tuple[str, str]]:
    names = list(module._modules)
    pairs = []
    for index, name in enumerate(names):
        if not _packable(module._modules[name]):
            continue
        following = index + 1
        while following < len(names) and type(module._modules[names[following]]) is nn.Identity:
            following += 1
        if following < len(names) and type(module._modules[names[following]]) is nn.ReLU:
            pairs.append((name, names[following]))
    return pairs


def _fuse_activation_pairs(root: nn.Module, pairs: list[tuple[str, str]],
                           counts: dict[int, int]) -> int:
    fused = 0
    for conv_name, relu_name in pairs:
        conv, relu = root.get_submodule(conv_name), root.get_submodule(relu_name)
        if counts.get(id(conv), 0) != 1 or counts.get(id(relu), 0) != 1 or conv.training:
            continue
        packed = PackedConv2d.from_conv(conv, activation="relu")
        _replace(root, conv_name, packed)
        _replace(root, relu_name, nn.Identity())
        counts[id(packed)] = 1
        fused += 1
    return fused


_BATCHNORM_PAIRS = _PairRewrite((nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d), _traced_pairs,
                                _sequential_pairs, _fold_pairs)
_RELU_PAIRS = _PairRewrite((nn.Conv2d, nn.ReLU, nn.Identity), _traced_activation_pairs,
                           _sequential_activation_pairs, _fuse_activation_pairs)
