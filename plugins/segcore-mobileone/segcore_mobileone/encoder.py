"""MobileOne encoders (Vasu et al., 2023) with SMP's module names and math.

The module tree is that of SMP 0.6.0's ``MobileOne`` encoder: ``stage0`` (one block, the
stem) and ``stage1..stage4`` (``nn.Sequential`` of blocks). A block is, at training time, the
sum of ``num_conv_branches`` conv-BN branches (``rbr_conv.<i>.conv/bn``), a 1x1 conv-BN
"scale" branch for 3x3 blocks (``rbr_scale``) and a BN-only identity branch when the shape is
kept (``rbr_skip``), followed by an optional squeeze-excite (``se``) and a ReLU. All branches
are linear, so ``reparameterize()`` fuses them into one convolution (``reparam_conv``) with
the same outputs (in eval mode): the train-time blocks give the accuracy, the fused ones the
speed. State dicts of SMP's train-time encoder load with ``strict=True``, and so do those of an
encoder fused by SMP's ``reparameterize_model`` into an encoder fused by ours.

Example::

    encoder = MobileOneEncoder(width_multipliers=(0.75, 1.0, 1.0, 2.0),
                               num_conv_branches=4)                          # mobileone_s0
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 48, 48, 128, 256, 1024]; sizes 64, 32, ..., 2
    encoder.eval().reparameterize()  # one 3x3 or 1x1 convolution per block from now on
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from segcore.encoder import EncoderBase, patch_first_conv
from segcore.errors import InvalidOptionError

__all__ = ["MobileOneBlock", "MobileOneEncoder", "SqueezeExcite", "build_encoder",
           "reparameterize_model"]

#: Blocks per stage (stages 1-4) of every MobileOne variant.
BLOCKS_PER_STAGE = (2, 8, 10, 1)
_STAGE_WIDTHS = (64, 128, 256, 512)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(expand(relu(reduce(mean(x)))))``.

    ``reduce`` has ``int(channels * ratio)`` outputs. Shape unchanged ``(N, C, H, W)``.
    """

    def __init__(self, channels: int, ratio: float = 0.0625) -> None:
        super().__init__()
        hidden = int(channels * ratio)
        self.reduce = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = torch.sigmoid(self.expand(F.relu(self.reduce(scale))))
        return x * scale


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int,
             groups: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                           padding=kernel_size // 2, groups=groups, bias=False)),
        ("bn", nn.BatchNorm2d(out_channels)),
    ]))


def _fuse_conv_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``bn(conv(x))`` as one convolution (BN in eval mode)."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return kernel * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


class MobileOneBlock(nn.Module):
    """A re-parameterisable convolution block: branches summed, then SE (optional), ReLU.

    Args:
        in_channels, out_channels: channels of the input and output.
        kernel_size: 3 (with the 1x1 scale branch) or 1; padding is ``kernel_size // 2``.
        stride: 1 or 2.
        groups: convolution groups (``in_channels`` for the depthwise blocks).
        use_se: squeeze-excite before the ReLU.
        num_conv_branches: number of parallel conv-BN branches at training time.

    Input ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W / stride)``, before
    and after ``reparameterize()``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, use_se: bool = False, num_conv_branches: int = 1) -> None:
        super().__init__()
        if num_conv_branches < 1:
            raise InvalidOptionError(
                f"num_conv_branches must be at least 1, got {num_conv_branches!r}")
        self.in_channels = in_channels
        self.groups = groups
        self.kernel_size = kernel_size
        self.se = SqueezeExcite(out_channels) if use_se else nn.Identity()
        self.activation = nn.ReLU()
        self.rbr_skip = (nn.BatchNorm2d(in_channels)
                         if in_channels == out_channels and stride == 1 else None)
        self.rbr_conv = nn.ModuleList(
            _conv_bn(in_channels, out_channels, kernel_size, stride, groups)
            for _ in range(num_conv_branches))
        self.rbr_scale = (_conv_bn(in_channels, out_channels, 1, stride, groups)
                          if kernel_size > 1 else None)
        self.register_module("reparam_conv", None)  # the fused convolution, once fused

    @property
    def fused(self) -> bool:
        """Whether the branches have been fused into ``reparam_conv``."""
        return self.reparam_conv is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            out = self.reparam_conv(x)
        else:
            out = self._sum_of_branches(x)
        return self.activation(self.se(out))

    def _sum_of_branches(self, x: torch.Tensor) -> torch.Tensor:
        total: Optional[torch.Tensor] = None  # noqa: UP045 (TorchScript reads this annotation)
        if self.rbr_skip is not None:
            total = self.rbr_skip(x)
        if self.rbr_scale is not None:
            scale = self.rbr_scale(x)
            total = scale if total is None else total + scale
        for branch in self.rbr_conv:
            out = branch(x)
            total = out if total is None else total + out
        assert total is not None, "a block has at least one conv branch until it is fused"
        return total

    def fused_kernel_and_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The kernel and bias of the one convolution equal to the sum of the branches.

        Uses the batch norms' running statistics: the fused block equals the block in eval
        mode. The 1x1 scale kernel is padded to the centre of the kernel, the identity branch
        is a kernel with a 1 at the centre (per group).
        """
        reference = self.rbr_conv[0].conv
        kernel = torch.zeros_like(reference.weight)
        bias = torch.zeros(reference.out_channels, dtype=kernel.dtype, device=kernel.device)
        for branch in self.rbr_conv:
            k, b = _fuse_conv_bn(branch.conv.weight, branch.bn)
            kernel, bias = kernel + k, bias + b
        centre = self.kernel_size // 2
        if self.rbr_scale is not None:
            k, b = _fuse_conv_bn(self.rbr_scale.conv.weight, self.rbr_scale.bn)
            kernel = kernel + F.pad(k, [centre] * 4)
            bias = bias + b
        if self.rbr_skip is not None:
            per_group = self.in_channels // self.groups
            identity = torch.zeros_like(kernel)
            channels = torch.arange(self.in_channels, device=kernel.device)
            identity[channels, channels % per_group, centre, centre] = 1.0
            k, b = _fuse_conv_bn(identity, self.rbr_skip)
            kernel, bias = kernel + k, bias + b
        return kernel, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fuse the branches into ``reparam_conv`` in place (no-op when already fused).

        The fused convolution keeps the stride, padding and dilation of the branches (a
        dilated block stays dilated). Call it in eval mode, for inference: the fused block
        has no batch norm left to train.
        """
        if self.reparam_conv is not None:
            return
        kernel, bias = self.fused_kernel_and_bias()
        reference = self.rbr_conv[0].conv
        conv = nn.Conv2d(reference.in_channels, reference.out_channels,
                         reference.kernel_size, stride=reference.stride,
                         padding=reference.padding, dilation=reference.dilation,
                         groups=reference.groups, bias=True,
                         device=kernel.device, dtype=kernel.dtype)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        self.reparam_conv = conv
        self.rbr_conv = nn.ModuleList()
        self.rbr_scale = None
        self.rbr_skip = None


class MobileOneEncoder(EncoderBase):
    """MobileOne feature extractor following the segcore encoder contract.

    Args:
        width_multipliers: width of stages 1-4 relative to 64, 128, 256, 512.
        num_conv_branches: conv branches of the stage blocks (the stem has one).
        use_se: squeeze-excite in the last half of stage 3 and in stage 4 (MobileOne-S4).
        depth: number of reductions returned, 1-5 (all stages are kept so weights always fit).

    ``forward(x)`` returns ``depth + 1`` maps: ``x``, then the outputs of ``stage0`` (1/2) and
    ``stage1..stage4`` (1/4 ... 1/32). Each stage is pairs of blocks: a depthwise 3x3 (the
    first with stride 2) and a pointwise 1x1. ``reparameterize()`` fuses every block.
    """

    __jit_unused_properties__ = [*EncoderBase.__jit_unused_properties__, "fused"]

    def __init__(self, width_multipliers: Sequence[float] = (0.75, 1.0, 1.0, 2.0),
                 num_conv_branches: int = 1, use_se: bool = False, depth: int = 5) -> None:
        super().__init__(depth=depth)
        widths = tuple(width_multipliers)
        if len(widths) != 4 or not all(isinstance(w, (int, float)) and w > 0 for w in widths):
            raise InvalidOptionError(
                f"width_multipliers must be 4 positive numbers, got {width_multipliers!r}")
        stem_channels = min(64, int(64 * widths[0]))
        self.stage0 = MobileOneBlock(3, stem_channels, kernel_size=3, stride=2)
        channels = stem_channels
        out_channels = [3, stem_channels]
        stages = []
        for index, (base, width, blocks) in enumerate(
                zip(_STAGE_WIDTHS, widths, BLOCKS_PER_STAGE), start=1):
            se_blocks = 0
            if use_se and index == 3:
                se_blocks = blocks // 2
            elif use_se and index == 4:
                se_blocks = blocks
            planes = int(base * width)
            stages.append(self._make_stage(channels, planes, blocks, se_blocks,
                                           num_conv_branches))
            channels = planes
            out_channels.append(planes)
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        self._out_channels = tuple(out_channels)

    @staticmethod
    def _make_stage(in_channels: int, planes: int, blocks: int, se_blocks: int,
                    num_conv_branches: int) -> nn.Sequential:
        modules: list[nn.Module] = []
        for index in range(blocks):
            stride = 2 if index == 0 else 1
            use_se = index >= blocks - se_blocks
            modules.append(MobileOneBlock(in_channels, in_channels, kernel_size=3,
                                          stride=stride, groups=in_channels, use_se=use_se,
                                          num_conv_branches=num_conv_branches))
            modules.append(MobileOneBlock(in_channels, planes, kernel_size=1, use_se=use_se,
                                          num_conv_branches=num_conv_branches))
            in_channels = planes
        return nn.Sequential(*modules)

    def get_stages(self) -> dict[int, list[nn.Module]]:
        return {16: [self.stage3], 32: [self.stage4]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        if self._depth >= 1:
            x = self.stage0(x)
            features.append(x)
        if self._depth >= 2:
            x = self.stage1(x)
            features.append(x)
        if self._depth >= 3:
            x = self.stage2(x)
            features.append(x)
        if self._depth >= 4:
            x = self.stage3(x)
            features.append(x)
        if self._depth >= 5:
            x = self.stage4(x)
            features.append(x)
        return features

    def set_in_channels(self, in_channels: int, pretrained: bool = True) -> None:
        """Adapt every convolution that reads the input (each branch of ``stage0``).

        With pretrained weights each kernel is derived from its 3-channel kernel as in
        ``segcore.encoder.patch_first_conv``; without, it is initialised afresh.
        """
        if in_channels == self._in_channels:
            return
        stem = self.stage0
        convs = [branch.conv for branch in stem.rbr_conv]
        if stem.rbr_scale is not None:
            convs.append(stem.rbr_scale.conv)
        if stem.reparam_conv is not None:
            convs.append(stem.reparam_conv)
        for conv in convs:
            patch_first_conv(conv, in_channels, default_in_channels=self._in_channels,
                             pretrained=pretrained)
        stem.in_channels = in_channels
        self._out_channels = (in_channels, *tuple(self._out_channels[1:]))
        self._in_channels = in_channels

    @property
    def fused(self) -> bool:
        """Whether every block has been re-parameterised."""
        return all(block.fused for block in self.modules() if isinstance(block, MobileOneBlock))

    def reparameterize(self) -> MobileOneEncoder:
        """Fuse every block in place (see ``MobileOneBlock.reparameterize``); returns ``self``.

        Do it after loading weights (and after ``set_in_channels`` / dilation, which the core
        does when it builds the encoder), in eval mode, for inference.
        """
        for block in self.modules():
            if isinstance(block, MobileOneBlock):
                block.reparameterize()
        return self

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``linear.*``) of classification files."""
        return {k: v for k, v in state_dict.items() if not k.startswith("linear.")}


def reparameterize_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose MobileOne blocks are fused for inference.

    Works on an encoder or on a whole segmentation model (``segcore.Unet("mobileone_s1")``);
    ``model`` itself is left unchanged. In eval mode the copy gives the same outputs.

    Example::

        fused = reparameterize_model(model.eval())
        torch.testing.assert_close(fused(x), model(x))
    """
    fused = copy.deepcopy(model)
    for block in fused.modules():
        if isinstance(block, MobileOneBlock):
            block.reparameterize()
    return fused


def build_encoder(name: str, depth: int = 5, *,
                  width_multipliers: Sequence[float] = (0.75, 1.0, 1.0, 2.0),
                  num_conv_branches: int = 1, use_se: bool = False) -> MobileOneEncoder:
    """The factory of the specs: construct the train-time encoder (3 input channels, stride 32).

    The core loads pretrained weights, adapts the input channels (``set_in_channels``) and
    dilates (``make_dilated``) afterwards; fuse with ``reparameterize()`` after that.

    Example::

        encoder = build_encoder("mobileone_s1", depth=5, width_multipliers=(1.5, 1.5, 2.0, 2.5))
    """
    return MobileOneEncoder(width_multipliers=width_multipliers,
                            num_conv_branches=num_conv_branches, use_se=use_se, depth=depth)
