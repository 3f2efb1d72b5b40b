"""Building blocks shared by architectures (conv-norm-activation, attention, activations,
norms) and by encoders (ResNet-style stages, taps of a Sequential, torchvision's initialisation).

Module layouts (child names and order) follow SMP's so checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segcore.encoder import EncoderBase
from segcore.errors import InvalidOptionError, MissingDependencyError, did_you_mean

NormOption = bool | str | Mapping[str, Any] | None
ActivationOption = str | Callable[..., nn.Module] | None

NORM_TYPES = ("batchnorm", "identity", "layernorm", "instancenorm", "inplace")
ACTIVATIONS = ("sigmoid", "softmax", "softmax2d", "logsoftmax", "tanh", "identity", "argmax",
               "argmax2d", "clamp")
ATTENTION_TYPES = (None, "scse")
INPLACE_ABN_HELP = (
    "the 'inplace' normalisation needs the inplace_abn package. Install it with "
    "`pip install inplace-abn --no-build-isolation` (it compiles against your torch), or use "
    "decoder_use_norm='batchnorm'."
)


def _inplace_abn_class() -> type[nn.Module]:
    try:
        from inplace_abn import InPlaceABN
    except ImportError as error:
        raise MissingDependencyError(INPLACE_ABN_HELP) from error
    return InPlaceABN


def norm_params(use_norm: NormOption) -> dict[str, Any]:
    """Normalise a ``use_norm`` option (bool, name or ``{"type": ..., **kwargs}``) to a dict."""
    if use_norm is True:
        return {"type": "batchnorm"}
    if use_norm is False or use_norm is None:
        return {"type": "identity"}
    if isinstance(use_norm, str):
        kind = use_norm.lower()
        if kind == "inplace":
            return {"type": "inplace", "activation": "leaky_relu", "activation_param": 0.0}
        if kind in NORM_TYPES:
            return {"type": kind}
        raise InvalidOptionError(
            f"unknown normalisation {use_norm!r}; valid values are True, False, "
            f"{', '.join(repr(n) for n in NORM_TYPES)} or a dict {{'type': ..., **kwargs}}"
        )
    if isinstance(use_norm, Mapping):
        params = dict(use_norm)
        if params.get("type") not in NORM_TYPES:
            raise InvalidOptionError(
                f"a normalisation dict needs 'type' in {NORM_TYPES}, got {use_norm!r}"
            )
        return params
    raise InvalidOptionError(
        f"use_norm must be a bool, one of {NORM_TYPES} or a dict, got {type(use_norm).__name__}"
    )


def make_norm(use_norm: NormOption, channels: int) -> nn.Module:
    """A normalisation layer for ``channels`` channels (see ``norm_params``)."""
    params = norm_params(use_norm)
    kind = params.pop("type")
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels, **params)
    if kind == "identity":
        return nn.Identity()
    if kind == "layernorm":
        return LayerNorm2d(channels, **params)
    if kind == "instancenorm":
        return nn.InstanceNorm2d(channels, **params)
    return _inplace_abn_class()(channels, **params)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        # what nn.LayerNorm.forward does; TorchScript cannot compile super().forward(x)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def is_inplace_abn(module: nn.Module) -> bool:
    return type(module).__name__ in ("InPlaceABN", "InPlaceABNSync")


class Conv2dReLU(nn.Sequential):
    """Conv2d -> norm -> ReLU (children ``0``, ``1``, ``2``; the conv has a bias without norm).

    Args:
        in_channels, out_channels, kernel_size, padding, stride: as ``nn.Conv2d``.
        use_norm: ``True``/"batchnorm", ``False``/"identity", "layernorm", "instancenorm",
            "inplace" (InPlaceABN, which includes the activation) or a dict.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        stride: int = 1,
        use_norm: NormOption = "batchnorm",
    ) -> None:
        norm = make_norm(use_norm, out_channels)
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            bias=isinstance(norm, nn.Identity),
        )
        activation = nn.Identity() if is_inplace_abn(norm) else nn.ReLU(inplace=True)
        super().__init__(conv, norm, activation)


class SCSEModule(nn.Module):
    """Concurrent spatial and channel squeeze-excitation (https://arxiv.org/abs/1808.08127)."""

    def __init__(self, in_channels: int, reduction: int = 16) -> None:
        super().__init__()
        # SMP uses in_channels // reduction, 0 below 16 channels, which cannot run; 1 at least
        hidden = max(in_channels // reduction, 1)
        self.cSE = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, in_channels, 1),
            nn.Sigmoid(),
        )
        self.sSE = nn.Sequential(nn.Conv2d(in_channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.cSE(x) + x * self.sSE(x)


class Attention(nn.Module):
    """Attention by name: ``None`` (identity) or ``"scse"``; the module sits in ``.attention``."""

    def __init__(self, name: str | None, **params: Any) -> None:
        super().__init__()
        if name is None:
            self.attention: nn.Module = nn.Identity()
        elif name == "scse":
            self.attention = SCSEModule(**params)
        else:
            raise InvalidOptionError(
                f"unknown attention type {name!r}; valid values are None and 'scse'"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x)


class ArgMax(nn.Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmax(x, dim=self.dim)


class Clamp(nn.Module):
    def __init__(self, min: float = 0, max: float = 1) -> None:
        super().__init__()
        self.min, self.max = min, max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.min, self.max)


class Activation(nn.Module):
    """An activation by name; the module sits in ``.activation`` (SMP's layout).

    Args:
        name: ``None``/"identity", "sigmoid", "softmax" (over channels, dim 1), "softmax2d",
            "logsoftmax" (dim 1), "tanh", "argmax", "argmax2d", "clamp", or a callable that
            returns a module (``torch.nn.ReLU``).
    """

    def __init__(self, name: ActivationOption, **params: Any) -> None:
        super().__init__()
        self.activation = make_activation(name, **params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x)


def make_activation(name: ActivationOption, **params: Any) -> nn.Module:
    """The module for an activation option (see ``Activation``).

    A callable is called with ``params`` (none for the heads) and must return a module.
    """
    if name is None or name == "identity":
        return nn.Identity()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name in ("softmax", "softmax2d"):
        return nn.Softmax(**{"dim": 1, **params})
    if name == "logsoftmax":
        return nn.LogSoftmax(**{"dim": 1, **params})
    if name == "tanh":
        return nn.Tanh()
    if name == "argmax":
        return ArgMax(**params)
    if name == "argmax2d":
        return ArgMax(**{"dim": 1, **params})
    if name == "clamp":
        return Clamp(**params)
    if isinstance(name, nn.Module):
        return name
    if callable(name):
        return _call_activation(name, params)
    hint = did_you_mean(name, ACTIVATIONS) if isinstance(name, str) else ""
    raise InvalidOptionError(
        f"unknown activation {name!r}.{hint} Valid values are None, a callable returning a "
        f"torch.nn.Module (torch.nn.ReLU), or one of {_VALID_ACTIVATIONS}"
    )


_VALID_ACTIVATIONS = ", ".join(repr(a) for a in ACTIVATIONS)


def _call_activation(factory: Callable[..., Any], params: Mapping[str, Any]) -> nn.Module:
    """``factory(**params)``, refused unless it is a module."""
    label = getattr(factory, "__qualname__", None) or repr(factory)
    try:
        module = factory(**params)
    except TypeError as error:
        arguments = f"the arguments {dict(params)}" if params else "no arguments"
        raise InvalidOptionError(
            f"activation {label} cannot be called with {arguments} ({error}). Pass a class "
            f"or function that returns a torch.nn.Module (torch.nn.ReLU, "
            f"lambda: torch.nn.Softmax(dim=1)), or one of {_VALID_ACTIVATIONS}"
        ) from error
    if not isinstance(module, nn.Module):
        shown = repr(module)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InvalidOptionError(
            f"activation {label} returned {shown} (type {type(module).__name__}), not a "
            f"torch.nn.Module. Pass a class or function that returns a module (torch.nn.ReLU, "
            f"lambda: torch.nn.Softmax(dim=1)), or one of {_VALID_ACTIVATIONS}"
        )
    return module


def check_activation(name: ActivationOption) -> None:
    """Raise ``InvalidOptionError`` for an activation that ``make_activation`` refuses.

    A callable is called once, with no arguments (as the heads do), and must return a module.
    """
    if name is None or (isinstance(name, str) and name in ACTIVATIONS):
        return
    make_activation(name)


class SeparableConv2d(nn.Sequential):
    """Depthwise then pointwise convolution (children ``0`` and ``1``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        depthwise = nn.Conv2d(
            in_channels, in_channels, kernel_size, stride=stride, padding=padding,
            dilation=dilation, groups=in_channels, bias=False,
        )
        pointwise = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)
        super().__init__(depthwise, pointwise)


def adaptive_avg_pool_by_slices(x: torch.Tensor, bins: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` from slices and means, for ONNX export.

    ONNX has no adaptive pooling: exporters bake the bins of the traced size into the graph,
    which is wrong (or fails) at other sizes. Slice bounds computed from the input's size stay
    right at every size. ``ExportableAdaptiveAvgPool2d`` calls this during ONNX export.

    Bin ``i`` of a dimension of size ``n`` covers ``floor(i * n / bins)`` to
    ``ceil((i + 1) * n / bins)``, as adaptive pooling does; rows are averaged, then columns
    (the mean over a rectangle). Bounds use only non-negative integer division, which ONNX
    computes as Python does.
    """
    height, width = x.shape[-2], x.shape[-1]
    rows = [
        x[..., (i * height) // bins:((i + 1) * height + bins - 1) // bins, :]
        .mean(dim=-2, keepdim=True)
        for i in range(bins)
    ]
    x = torch.cat(rows, dim=-2)
    columns = [
        x[..., (j * width) // bins:((j + 1) * width + bins - 1) // bins]
        .mean(dim=-1, keepdim=True)
        for j in range(bins)
    ]
    return torch.cat(columns, dim=-1)


class ExportableAdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` (square bins) that stays right in exported ONNX graphs.

    Eager mode, TorchScript, ``torch.compile`` and ``torch.export`` use adaptive pooling; while
    ``torch.onnx.export`` runs, the bins are averaged from slices whose bounds follow the input's
    size (``adaptive_avg_pool_by_slices``), so the graph is right at every input size. The
    outputs are the same. Pyramid pooling (PSPNet, UPerNet) uses it.

    Shapes: ``(N, C, H, W)`` -> ``(N, C, bins, bins)``.
    """

    def __init__(self, output_size: int | tuple[int, int]) -> None:
        """``output_size``: the number of bins per side, an int or a square ``(bins, bins)``
        (kept as given, as ``nn.AdaptiveAvgPool2d`` does)."""
        bins = output_size if isinstance(output_size, int) else output_size[0]
        if isinstance(output_size, tuple) and output_size != (bins, bins):
            raise InvalidOptionError(
                f"ExportableAdaptiveAvgPool2d takes square bins, got output_size={output_size!r}"
            )
        super().__init__(output_size)
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            # TorchScript compiles this branch only (it cannot compile the ONNX check).
            return F.adaptive_avg_pool2d(x, self.bins)
        if torch.onnx.is_in_onnx_export():
            return adaptive_avg_pool_by_slices(x, self.bins)
        return F.adaptive_avg_pool2d(x, self.bins)


def initialize_decoder(module: nn.Module) -> None:
    """Kaiming-uniform convolutions, unit norms, Xavier linears; biases zero."""
    for submodule in module.modules():
        if isinstance(submodule, nn.Conv2d):
            nn.init.kaiming_uniform_(submodule.weight, mode="fan_in", nonlinearity="relu")
            if submodule.bias is not None:
                nn.init.constant_(submodule.bias, 0)
        elif isinstance(
            submodule, nn.BatchNorm2d | nn.LayerNorm | nn.GroupNorm | nn.InstanceNorm2d
        ):
            if submodule.weight is not None:
                nn.init.constant_(submodule.weight, 1)
                nn.init.constant_(submodule.bias, 0)
        elif isinstance(submodule, nn.Linear):
            nn.init.xavier_uniform_(submodule.weight)
            if submodule.bias is not None:
                nn.init.constant_(submodule.bias, 0)


def initialize_head(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for linears and convolutions."""
    for submodule in module.modules():
        if isinstance(submodule, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(submodule.weight)
            if submodule.bias is not None:
                nn.init.constant_(submodule.bias, 0)


# -- shared by the decoders of the architecture plugins --------------------------------------
class DoubleConv2dReLU(nn.Sequential):
    """Two 3x3 ``Conv2dReLU`` layers, ``in_channels -> out_channels -> out_channels`` (children
    ``0`` and ``1``); the center block of the Unet-style decoders (SMP's layout).

    Shapes: ``(N, in_channels, H, W)`` -> ``(N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 use_norm: NormOption = "batchnorm") -> None:
        super().__init__(
            Conv2dReLU(in_channels, out_channels, 3, padding=1, use_norm=use_norm),
            Conv2dReLU(out_channels, out_channels, 3, padding=1, use_norm=use_norm),
        )


def center_block_or_identity(add_center_block: bool, channels: int, use_norm: NormOption,
                             block_class: type[DoubleConv2dReLU] = DoubleConv2dReLU) -> nn.Module:
    """The ``center`` of the Unet-style decoders: ``block_class(channels, channels,
    use_norm=use_norm)`` when ``add_center_block`` (SMP adds one for VGG encoders), else
    ``nn.Identity()``."""
    if add_center_block:
        return block_class(channels, channels, use_norm=use_norm)
    return nn.Identity()


class SkipAttentionBlock(nn.Module):
    """Concatenate a skip, attention, two 3x3 conv-norm-ReLU layers, attention: the fusion of
    the Unet-style decoder blocks, with SMP's children ``conv1``, ``attention1``, ``conv2``,
    ``attention2``. Subclasses upsample in ``forward`` and pass the result to ``fuse``.

    Args:
        in_channels: channels of the incoming (upsampled) feature map.
        skip_channels: channels of the skip(s) concatenated to it (0 where there is none).
        out_channels: channels of the output. 0 makes an empty block (no layers; ``fuse``
            returns a map with no channels), for encoders with a stage without channels.
        use_norm: normalisation of both convolutions (see ``Conv2dReLU``).
        attention_type: ``None`` or ``"scse"`` (see ``Attention``).
        interpolation_mode: ``F.interpolate`` mode, kept for the subclasses' upsampling.

    ``fuse``: ``x`` ``(N, in_channels, H, W)`` (+ skip ``(N, skip_channels, H, W)``) ->
    ``(N, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        use_norm: NormOption = "batchnorm",
        attention_type: str | None = None,
        interpolation_mode: str = "nearest",
    ) -> None:
        super().__init__()
        self.interpolation_mode = interpolation_mode
        self.out_channels = out_channels
        self.is_empty = out_channels == 0
        if self.is_empty:
            self.conv1 = self.attention1 = self.conv2 = self.attention2 = None
            return
        fused_channels = in_channels + skip_channels
        self.conv1 = Conv2dReLU(fused_channels, out_channels, 3, padding=1, use_norm=use_norm)
        self.attention1 = Attention(attention_type, in_channels=fused_channels)
        self.conv2 = Conv2dReLU(out_channels, out_channels, 3, padding=1, use_norm=use_norm)
        self.attention2 = Attention(attention_type, in_channels=out_channels)

    def freeze_unfused_attention(self) -> None:
        """Freeze ``attention1`` (if any), for a block that gets no skip and so never applies
        it (as in SMP): it is kept so SMP checkpoints load, frozen so that no trainable
        parameter goes unused (DistributedDataParallel would otherwise complain)."""
        if self.attention1 is not None:
            self.attention1.requires_grad_(False)

    def fuse(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenate ``skip`` (if any) to ``x`` and run the layers (see the class)."""
        if self.is_empty:
            return x.new_empty(x.shape[0], 0, x.shape[2], x.shape[3])
        if skip is not None:
            x = self.attention1(torch.cat([x, skip], dim=1))
        x = self.conv2(self.conv1(x))
        return self.attention2(x)


def check_decoder_channels_per_stage(encoder_channels: Sequence[int],
                                     decoder_channels: Sequence[int]) -> int:
    """The encoder's depth (``len(encoder_channels) - 1``); ``InvalidOptionError`` unless
    ``decoder_channels`` has one value per encoder stage."""
    depth = len(encoder_channels) - 1
    if len(decoder_channels) != depth:
        raise InvalidOptionError(
            f"decoder_channels has {len(decoder_channels)} values but the encoder returns "
            f"{depth} stages; give one value per stage"
        )
    return depth


def skip_decoder_block_channels(
    encoder_channels: Sequence[int], decoder_channels: Sequence[int]
) -> list[tuple[int, int, int]]:
    """``(in, skip, out)`` channels of each block of a decoder that fuses one encoder skip per
    block (Unet, MAnet), deepest block first.

    The first block reads the deepest encoder features, each later one the block before it;
    block ``i`` fuses the ``i + 1``-th deepest stage, the last block none (skip ``0``). Raises
    ``InvalidOptionError`` unless ``decoder_channels`` has one value per encoder stage.

    Example: ``skip_decoder_block_channels((3, 8, 16), (12, 6))`` is ``[(16, 8, 12), (12, 0, 6)]``.
    """
    check_decoder_channels_per_stage(encoder_channels, decoder_channels)
    stage_channels = list(encoder_channels[1:])[::-1]  # deepest first, without the input
    in_channels = [stage_channels[0], *decoder_channels[:-1]]
    skip_channels = [*stage_channels[1:], 0]
    return list(zip(in_channels, skip_channels, decoder_channels))


def check_pyramid_decoder_inputs(decoder: str, encoder_channels: Sequence[int],
                                 encoder_depth: int, *, reason: str = "") -> None:
    """``InvalidOptionError`` unless ``encoder_depth >= 3`` and ``encoder_channels`` has
    ``encoder_depth + 1`` values (the input first); ``decoder`` and ``reason`` (why it needs 3
    stages) go into the message."""
    if encoder_depth < 3:
        why = f" ({reason})" if reason else ""
        raise InvalidOptionError(
            f"the {decoder} decoder needs encoder_depth >= 3{why}, got {encoder_depth}"
        )
    if len(encoder_channels) != encoder_depth + 1:
        raise InvalidOptionError(
            f"encoder_channels must have encoder_depth + 1 = {encoder_depth + 1} values, got "
            f"{len(encoder_channels)}: {tuple(encoder_channels)}"
        )


# -- shared by the encoders of the encoder plugins -------------------------------------------
def initialize_like_torchvision(module: nn.Module) -> None:
    """torchvision's initialisation of its classifiers: He normal (``fan_out``, ReLU gain) for
    every convolution, zero convolution biases, BatchNorm as the identity."""
    for submodule in module.modules():
        if isinstance(submodule, nn.Conv2d):
            nn.init.kaiming_normal_(submodule.weight, mode="fan_out", nonlinearity="relu")
            if submodule.bias is not None:
                nn.init.zeros_(submodule.bias)
        elif isinstance(submodule, nn.BatchNorm2d):
            nn.init.ones_(submodule.weight)
            nn.init.zeros_(submodule.bias)


def check_resnet_layout(block: str, block_choices: Collection[str],
                        layers: Sequence[int]) -> tuple[int, ...]:
    """``layers`` as a tuple; ``InvalidOptionError`` unless ``block`` is one of
    ``block_choices`` and ``layers`` is 4 positive ints (the blocks of ``layer1..layer4``)."""
    if block not in block_choices:
        raise InvalidOptionError(f"block must be one of {tuple(block_choices)}, got {block!r}")
    layers = tuple(layers)
    if len(layers) != 4 or not all(isinstance(n, int) and n >= 1 for n in layers):
        raise InvalidOptionError(
            f"layers must be 4 positive ints (blocks per stage), got {layers!r}"
        )
    return layers


class ResNetStagesEncoder(EncoderBase):
    """Base of the encoders laid out as a ResNet: a stem (1/2), then ``layer1`` after a pool
    (1/4) and ``layer2``..``layer4`` (1/8, 1/16, 1/32); ``layer3``/``layer4`` dilate.

    Subclasses build the modules (``layer1``..``layer4`` under these names) and define
    ``forward_stem`` (input -> 1/2 features); ``forward_pool`` (1/2 -> ``layer1``'s input) is
    ``self.maxpool`` unless overridden. ``forward`` returns ``depth + 1`` maps, the input first.
    ``remap_state_dict`` drops the ``classifier_keys`` of classification files.
    """

    # Not annotated: TorchScript reads class annotations (see EncoderBase).
    classifier_keys = ("fc.weight", "fc.bias")

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """The stem: ``(N, C, H, W)`` -> the 1/2 features."""
        raise NotImplementedError

    def forward_pool(self, x: torch.Tensor) -> torch.Tensor:
        """The pool before ``layer1``: the 1/2 features -> ``layer1``'s input (1/4)."""
        return self.maxpool(x)

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``classifier_keys``) of classification files."""
        return {k: v for k, v in state_dict.items() if k not in self.classifier_keys}

    def get_stages(self) -> dict[int, list[nn.Module]]:
        return {16: [self.layer3], 32: [self.layer4]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        if self._depth >= 1:
            x = self.forward_stem(x)
            features.append(x)
        if self._depth >= 2:
            x = self.layer1(self.forward_pool(x))
            features.append(x)
        # One branch per stage (not a loop over a slice of them): TorchScript compiles this.
        if self._depth >= 3:
            x = self.layer2(x)
            features.append(x)
        if self._depth >= 4:
            x = self.layer3(x)
            features.append(x)
        if self._depth >= 5:
            x = self.layer4(x)
            features.append(x)
        return features


class SequentialTapsEncoder(EncoderBase):
    """Base of the encoders whose features are the outputs of chosen children of one
    ``nn.Sequential``, ``self.features`` (torchvision's MobileNet and VGG layouts).

    Subclasses build ``self.features`` and call ``set_feature_indexes`` with the index of the
    child that gives each reduction 2, 4, 8, 16, 32 (in order). ``forward`` returns the input
    and the outputs of those children, up to ``depth`` of them; later children do not run.
    """

    def set_feature_indexes(self, indexes: Sequence[int]) -> None:
        """The children of ``self.features`` whose outputs are the features 1..5."""
        # Not annotated: TorchScript infers list[int] and int from the values.
        self._output_indexes = list(indexes[: self._depth])
        self._last_index = indexes[self._depth - 1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        # The loop is unrolled by TorchScript and torch.compile; the indexes are Python ints.
        for index, module in enumerate(self.features):
            if index <= self._last_index:
                x = module(x)
                if index in self._output_indexes:
                    features.append(x)
        return features
