"""Dual Path Network encoders (Chen et al., 2017) with SMP's module names and math.

The module tree is that of SMP's ``DPNEncoder`` (Cadene's ``pretrainedmodels`` DPN without
``last_linear``): ``features`` is an ordered container of ``conv1_1`` (stem), ``conv2_1`` ...
``conv5_<n>`` (dual path blocks) and ``conv5_bn_ac`` (the final batch norm + ReLU). State
dicts of SMP's encoder (and of the classification files, once ``remap_state_dict`` has dropped
``last_linear.*``) load with ``strict=True``.

A dual path block keeps a *residual* path (ResNet-like, summed) and a *dense* path
(DenseNet-like, concatenated). Here the two paths travel as one tensor, their concatenation
``[residual | dense]``: every block maps a tensor to a tensor, which needs one concatenation per
block (SMP's tuple form needs two) and lets ``features`` be iterated by TorchScript.

Example::

    encoder = DPNEncoder(small=True, num_init_features=10, k_r=128, groups=32,
                         k_sec=(3, 4, 12, 3), inc_sec=(16, 32, 32, 64))      # dpn68
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 10, 144, 320, 704, 832]; sizes 64, 32, 16, 8, 4, 2
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.encoder import EncoderBase
from segcore.errors import InvalidOptionError

__all__ = ["BnActConv2d", "CatBnAct", "DPNEncoder", "DualPathBlock", "InputBlock",
           "build_encoder"]

#: Batch-norm epsilon of every DPN layer (the value of the MXNet originals).
BN_EPS = 1e-3
_STAGE_BASE_WIDTHS = (64, 128, 256, 512)


class BnActConv2d(nn.Module):
    """Pre-activation convolution: ``conv(relu(bn(x)))``.

    Input ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, eps=BN_EPS)
        self.act = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                              groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(self.bn(x)))


class CatBnAct(nn.Module):
    """``relu(bn(x))`` on the concatenated paths ``[residual | dense]`` (shape unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class InputBlock(nn.Module):
    """The stem: ``relu(bn(conv(x)))`` with a stride-2 convolution (3x3 for the small DPN-68,
    7x7 otherwise). The max pooling that follows is applied by the encoder, after the stem's
    feature map (reduction 2) has been taken.

    Input ``(N, 3, H, W)`` -> ``(N, num_init_features, H / 2, W / 2)``.
    """

    def __init__(self, num_init_features: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_init_features, kernel_size=kernel_size, stride=2,
                              padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(num_init_features, eps=BN_EPS)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DualPathBlock(nn.Module):
    """One dual path block, on the concatenated paths ``x = [residual | dense]``.

    Args:
        in_channels: channels of ``x`` (both paths).
        reduce_channels: width of the 1x1 reduction and of the grouped 3x3 convolution.
        residual_channels: channels of the residual path (constant within a stage).
        increment: channels each block adds to the dense path.
        groups: groups of the 3x3 convolution.
        block_type: ``"proj"`` (first block of stage 2: a 1x1 projection of ``x`` gives the
            paths), ``"down"`` (first block of stages 3-5: the same with stride 2) or
            ``"normal"`` (``x`` already holds the two paths).
        separate_outputs: DPN-"b": the last 1x1 is ``CatBnAct`` + two convolutions
            (``c1x1_c1`` residual, ``c1x1_c2`` dense) instead of one pre-activation conv.

    Output: ``[residual + new residual | dense | new dense]``, i.e. ``in_channels +
    increment`` channels for a normal block and ``residual_channels + 3 * increment`` for the
    first block of a stage; ``H / 2, W / 2`` for a ``"down"`` block.
    """

    def __init__(self, in_channels: int, reduce_channels: int, residual_channels: int,
                 increment: int, groups: int, block_type: str = "normal",
                 separate_outputs: bool = False) -> None:
        super().__init__()
        if block_type not in ("proj", "down", "normal"):
            raise InvalidOptionError(
                f"block_type must be 'proj', 'down' or 'normal', got {block_type!r}"
            )
        self.residual_channels = residual_channels
        self.separate_outputs = separate_outputs
        stride = 2 if block_type == "down" else 1
        projection: BnActConv2d | None = None
        if block_type != "normal":
            projection = BnActConv2d(in_channels, residual_channels + 2 * increment,
                                     kernel_size=1, stride=stride)
        # Separate attribute names for the two projections (the pretrained files' keys).
        self.c1x1_w_s1 = projection if block_type == "proj" else None
        self.c1x1_w_s2 = projection if block_type == "down" else None
        self.c1x1_a = BnActConv2d(in_channels, reduce_channels, kernel_size=1)
        self.c3x3_b = BnActConv2d(reduce_channels, reduce_channels, kernel_size=3,
                                  stride=stride, padding=1, groups=groups)
        if separate_outputs:
            self.c1x1_c = CatBnAct(reduce_channels)
            self.c1x1_c1 = nn.Conv2d(reduce_channels, residual_channels, 1, bias=False)
            self.c1x1_c2 = nn.Conv2d(reduce_channels, increment, 1, bias=False)
        else:
            self.c1x1_c = BnActConv2d(  # type: ignore[assignment]
                reduce_channels, residual_channels + increment, kernel_size=1)
            self.c1x1_c1 = None
            self.c1x1_c2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, in_channels, H, W)`` -> the concatenated paths (see the class)."""
        paths = x
        if self.c1x1_w_s1 is not None:
            paths = self.c1x1_w_s1(x)
        if self.c1x1_w_s2 is not None:
            paths = self.c1x1_w_s2(x)
        residual = paths[:, : self.residual_channels]
        dense = paths[:, self.residual_channels :]

        y = self.c1x1_c(self.c3x3_b(self.c1x1_a(x)))
        if self.c1x1_c1 is not None and self.c1x1_c2 is not None:
            new_residual = self.c1x1_c1(y)
            new_dense = self.c1x1_c2(y)
        else:
            new_residual = y[:, : self.residual_channels]
            new_dense = y[:, self.residual_channels :]
        return torch.cat([residual + new_residual, dense, new_dense], dim=1)


class DPNEncoder(EncoderBase):
    """Dual Path Network feature extractor following the segcore encoder contract.

    Args:
        small: DPN-68 layout (3x3 stem, stage widths 64..512 instead of 256..2048).
        num_init_features: channels of the stem.
        k_r: width factor of the 1x1 reduction / grouped 3x3 convolution.
        groups: groups of the 3x3 convolutions.
        k_sec: blocks per stage (stages 2-5).
        inc_sec: dense-path increment per block, per stage.
        b: the DPN-68b variant (separate residual and dense output convolutions).
        depth: number of reductions returned, 1-5 (all blocks are kept so weights always fit).

    ``forward(x)`` returns ``depth + 1`` maps: ``x``, the stem (1/2), ``relu`` of the
    concatenated paths after stages 2-4 (1/4, 1/8, 1/16, as SMP), and the output of
    ``conv5_bn_ac`` (1/32).
    """

    def __init__(self, small: bool = False, num_init_features: int = 64, k_r: int = 96,
                 groups: int = 32, k_sec: Sequence[int] = (3, 4, 20, 3),
                 inc_sec: Sequence[int] = (16, 32, 24, 128), b: bool = False,
                 depth: int = 5) -> None:
        super().__init__(depth=depth)
        k_sec, inc_sec = tuple(k_sec), tuple(inc_sec)
        for label, values in (("k_sec", k_sec), ("inc_sec", inc_sec)):
            if len(values) != 4 or not all(isinstance(n, int) and n >= 1 for n in values):
                raise InvalidOptionError(f"{label} must be 4 positive ints, got {values!r}")
        width_factor = 1 if small else 4

        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        blocks["conv1_1"] = InputBlock(num_init_features, kernel_size=3 if small else 7)
        channels = num_init_features
        out_channels = [3, num_init_features]
        stage_ends = [1]  # index in ``features`` one past the last block of stages 1..5
        for stage, (base, blocks_in_stage, increment) in enumerate(
                zip(_STAGE_BASE_WIDTHS, k_sec, inc_sec), start=2):
            residual = base * width_factor
            reduce = k_r * residual // (64 * width_factor)
            for index in range(1, blocks_in_stage + 1):
                block_type = "normal" if index > 1 else ("proj" if stage == 2 else "down")
                blocks[f"conv{stage}_{index}"] = DualPathBlock(
                    channels, reduce, residual, increment, groups, block_type, b)
                channels = (residual + 3 * increment) if index == 1 else channels + increment
            out_channels.append(channels)
            stage_ends.append(len(blocks))
        blocks["conv5_bn_ac"] = CatBnAct(channels)
        stage_ends[-1] = len(blocks)

        self.features = nn.Sequential(blocks)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self._out_channels = tuple(out_channels)
        self._stage_ends = stage_ends  # a list: TorchScript compiles ``in`` on lists

    def get_stages(self) -> dict[int, list[nn.Module]]:
        blocks = list(self.features)
        ends = self._stage_ends
        return {16: blocks[ends[2]: ends[3]], 32: blocks[ends[3]: ends[4]]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        ends = self._stage_ends
        used = ends[self._depth - 1]
        last = ends[4] - 1
        # One loop over the blocks (no slicing of ``features``): TorchScript unrolls it.
        for index, block in enumerate(self.features):
            if index < used:
                x = block(x)
                if index == 0:
                    features.append(x)
                    x = self.pool(x)
                elif index == last:
                    features.append(x)  # conv5_bn_ac: already batch-normed and activated
                elif index + 1 in ends:
                    features.append(F.relu(x))
        return features

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``last_linear.*``) of classification files."""
        return {k: v for k, v in state_dict.items() if not k.startswith("last_linear.")}


def build_encoder(name: str, depth: int = 5, *, small: bool = False,
                  num_init_features: int = 64, k_r: int = 96, groups: int = 32,
                  k_sec: Sequence[int] = (3, 4, 20, 3),
                  inc_sec: Sequence[int] = (16, 32, 24, 128), b: bool = False) -> DPNEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights, adapts the input channels (``set_in_channels``) and
    dilates (``make_dilated``) afterwards.

    Example::

        encoder = build_encoder("dpn92", depth=5, num_init_features=64, k_r=96, groups=32,
                                k_sec=(3, 4, 20, 3), inc_sec=(16, 32, 24, 128))
    """
    return DPNEncoder(small=small, num_init_features=num_init_features, k_r=k_r,
                      groups=groups, k_sec=k_sec, inc_sec=inc_sec, b=b, depth=depth)
