"""Mix Transformer (MiT, the SegFormer backbone) encoders ``mit_b0`` .. ``mit_b5``.

Paper: "SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers"
(Xie et al., 2021, https://arxiv.org/abs/2105.15203). Written in plain PyTorch (no timm).

Four stages, each an overlapping patch embedding (a strided convolution: 7x7 stride 4, then
3x3 stride 2) followed by transformer blocks and a LayerNorm. A block is efficient
self-attention (keys and values come from a map reduced ``sr_ratio`` times by a strided
convolution) and a Mix-FFN (linear, 3x3 depthwise convolution, GELU, linear), both residual
with pre-normalisation and stochastic depth.

Module names follow SMP's ``MixVisionTransformerEncoder``: ``patch_embed{1-4}.proj|norm``,
``block{1-4}.<i>.norm1|attn.q|attn.kv|attn.sr|attn.norm|attn.proj|norm2|mlp.fc1|
mlp.dwconv.dwconv|mlp.fc2`` and ``norm{1-4}``, so SMP encoder state dicts load with
``strict=True``.

Example::

    encoder = MixTransformerEncoder(embed_dims=(32, 64, 160, 256), layers=(2, 2, 2, 2))
    features = encoder(torch.rand(2, 3, 64, 64))
    [tuple(f.shape[1:]) for f in features]
    # [(3, 64, 64), (0, 32, 32), (32, 16, 16), (64, 8, 8), (160, 4, 4), (256, 2, 2)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.encoder import EncoderBase
from segcore.errors import InvalidOptionError

__all__ = [
    "DropPath",
    "EfficientSelfAttention",
    "MixFFN",
    "MixTransformerBlock",
    "MixTransformerEncoder",
    "OverlapPatchEmbed",
    "build_encoder",
]

#: LayerNorm epsilon of the blocks and of the stage norms (the patch embeddings' and the
#: attention's reduction norms keep PyTorch's default 1e-5, as in the original model).
BLOCK_NORM_EPS = 1e-6


def _tokens_to_map(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(N, H*W, C)`` tokens -> ``(N, C, H, W)`` map: a channels-last view of the tokens (no
    copy) when they are contiguous."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], height, width)


def _stage_output(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The feature map of a stage: contiguous ``(N, C, H, W)``, as SMP returns it."""
    return _tokens_to_map(tokens, height, width).contiguous()


def _map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` map -> ``(N, H*W, C)`` tokens."""
    return x.flatten(2).transpose(1, 2)


class DropPath(nn.Module):
    """Stochastic depth: in training, drop the whole residual branch of a sample with
    probability ``rate`` (and scale the kept ones by ``1 / (1 - rate)``); identity in eval.

    Input and output ``(N, ...)``.
    """

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise InvalidOptionError(f"drop path rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class OverlapPatchEmbed(nn.Module):
    """Overlapping patch embedding: ``Conv2d(kernel, stride, padding=kernel // 2)`` then
    LayerNorm over the channels.

    ``forward(x)``: ``(N, in_channels, H, W)`` -> ``(tokens, h, w)`` with tokens
    ``(N, h*w, embed_dim)`` and ``h = ceil(H / stride)``, ``w = ceil(W / stride)``.
    """

    def __init__(self, in_channels: int, embed_dim: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size, stride=stride,
                              padding=kernel_size // 2)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        height, width = x.shape[2], x.shape[3]
        return self.norm(_map_to_tokens(x)), height, width


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys and values come from a map reduced ``sr_ratio``
    times (a ``sr_ratio`` x ``sr_ratio`` convolution with that stride, then LayerNorm).

    ``forward(tokens, h, w)``: ``(N, h*w, dim)`` -> ``(N, h*w, dim)``.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise InvalidOptionError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        # Identity modules when there is no reduction keep the forward scriptable.
        self.sr: nn.Module = (nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio) if sr_ratio > 1
                              else nn.Identity())
        self.norm: nn.Module = nn.LayerNorm(dim) if sr_ratio > 1 else nn.Identity()

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, tokens, dim = x.shape[0], x.shape[1], x.shape[2]
        head_dim = dim // self.num_heads
        q = self.q(x).reshape(batch, tokens, self.num_heads, head_dim).transpose(1, 2)
        source = x
        if self.sr_ratio > 1:
            source = self.norm(_map_to_tokens(self.sr(_tokens_to_map(x, height, width))))
        kv = self.kv(source).reshape(batch, -1, 2, self.num_heads, head_dim)
        kv = kv.permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])  # scale 1 / sqrt(head_dim)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class _TokenDepthwiseConv(nn.Module):
    """A 3x3 depthwise convolution applied to ``(N, h*w, C)`` tokens laid out as a map."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return _map_to_tokens(self.dwconv(_tokens_to_map(x, height, width)))


class MixFFN(nn.Module):
    """Mix-FFN: ``fc2(GELU(dwconv3x3(fc1(x))))``; the depthwise convolution gives positional
    information (no position embeddings).

    ``forward(tokens, h, w)``: ``(N, h*w, dim)`` -> ``(N, h*w, dim)``.
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = _TokenDepthwiseConv(hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), height, width)))


class MixTransformerBlock(nn.Module):
    """``x + drop_path(attn(norm1(x)))`` then ``x + drop_path(mlp(norm2(x)))``.

    ``forward(tokens, h, w)``: ``(N, h*w, dim)`` -> ``(N, h*w, dim)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, sr_ratio: int = 1,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_NORM_EPS)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))


class _Blocks(nn.Sequential):
    """The blocks of one stage (keys ``block<k>.<i>.*``), run on tokens of an ``h`` x ``w`` map."""

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:  # type: ignore[override]
        for block in self:
            x = block(x, height, width)
        return x


class MixTransformerEncoder(EncoderBase):
    """MiT feature extractor following the segcore encoder contract.

    Args:
        embed_dims: channels of the four stages.
        layers: transformer blocks per stage.
        num_heads: attention heads per stage.
        sr_ratios: key/value spatial reduction per stage.
        mlp_ratio: hidden width of the Mix-FFN relative to the stage width.
        drop_path_rate: stochastic depth of the last block (linearly increasing from 0 over
            all blocks; active in training only).
        depth: number of reductions returned, 1-5 (all stages are kept so weights always fit).

    ``forward(x)`` returns ``depth + 1`` maps: ``x``; an empty ``(N, 0, ceil(H/2),
    ceil(W/2))`` map (the model has no reduction-2 stage); then the four stages at reductions
    4, 8, 16, 32. Dilation is not supported (``output_stride`` 32 only).

    Example::

        encoder = MixTransformerEncoder(embed_dims=(32, 64, 160, 256), layers=(2, 2, 2, 2),
                                        depth=4)
        features = encoder(torch.rand(1, 3, 64, 96))   # 5 maps, the last (1, 160, 4, 6)
    """

    def __init__(
        self,
        embed_dims: Sequence[int] = (64, 128, 320, 512),
        layers: Sequence[int] = (3, 4, 6, 3),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        depth: int = 5,
    ) -> None:
        super().__init__(depth=depth)
        embed_dims, layers = tuple(embed_dims), tuple(layers)
        num_heads, sr_ratios = tuple(num_heads), tuple(sr_ratios)
        for label, values in (("embed_dims", embed_dims), ("layers", layers),
                              ("num_heads", num_heads), ("sr_ratios", sr_ratios)):
            if len(values) != 4 or not all(isinstance(v, int) and v >= 1 for v in values):
                raise InvalidOptionError(f"{label} must be 4 positive ints, got {values!r}")
        total = sum(layers)
        rates = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]

        # Registration order as SMP's (state-dict keys in the same order): the four patch
        # embeddings, then the blocks and norm of each stage.
        in_dims = (3, *embed_dims[:3])
        for index in range(4):
            kernel, stride = (7, 4) if index == 0 else (3, 2)
            self.add_module(f"patch_embed{index + 1}",
                            OverlapPatchEmbed(in_dims[index], embed_dims[index], kernel, stride))
        first = 0
        for index in range(4):
            blocks = _Blocks(*(
                MixTransformerBlock(embed_dims[index], num_heads[index], mlp_ratio,
                                    sr_ratios[index], rates[first + i])
                for i in range(layers[index])
            ))
            first += layers[index]
            self.add_module(f"block{index + 1}", blocks)
            self.add_module(f"norm{index + 1}", nn.LayerNorm(embed_dims[index],
                                                             eps=BLOCK_NORM_EPS))
        self._out_channels = (3, 0, *embed_dims)
        self._initialise()

    def _initialise(self) -> None:
        # The original initialisation: normal (std 0.02) for linear layers (the original's
        # truncation at +-2 lies 100 standard deviations out, so plain normal_ draws the same
        # distribution, six times faster), He (fan_out) normal for convolutions, zero biases,
        # LayerNorm as identity.
        if self.patch_embed1.proj.weight.is_meta:
            return  # meta tensors hold no values (counting parameters); nothing to draw
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / (fan_out // module.groups)))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        if self._depth >= 1:
            empty = torch.empty((x.shape[0], 0, (x.shape[2] + 1) // 2, (x.shape[3] + 1) // 2),
                                dtype=x.dtype, device=x.device)
            features.append(empty)
        # One branch per stage (no loop over a slice of modules): TorchScript compiles this.
        if self._depth >= 2:
            tokens, height, width = self.patch_embed1(x)
            x = _stage_output(self.norm1(self.block1(tokens, height, width)), height, width)
            features.append(x)
        if self._depth >= 3:
            tokens, height, width = self.patch_embed2(x)
            x = _stage_output(self.norm2(self.block2(tokens, height, width)), height, width)
            features.append(x)
        if self._depth >= 4:
            tokens, height, width = self.patch_embed3(x)
            x = _stage_output(self.norm3(self.block3(tokens, height, width)), height, width)
            features.append(x)
        if self._depth >= 5:
            tokens, height, width = self.patch_embed4(x)
            x = _stage_output(self.norm4(self.block4(tokens, height, width)), height, width)
            features.append(x)
        return features

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``head.weight``, ``head.bias``) of classification files."""
        return {k: v for k, v in state_dict.items() if not k.startswith("head.")}


def build_encoder(
    name: str,
    depth: int = 5,
    *,
    embed_dims: Sequence[int],
    layers: Sequence[int],
    num_heads: Sequence[int] = (1, 2, 5, 8),
    sr_ratios: Sequence[int] = (8, 4, 2, 1),
    mlp_ratio: float = 4.0,
    drop_path_rate: float = 0.1,
) -> MixTransformerEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights and adapts the input channels (``set_in_channels``)
    afterwards.

    Example::

        encoder = build_encoder("mit_b0", depth=5, embed_dims=(32, 64, 160, 256),
                                layers=(2, 2, 2, 2))
    """
    return MixTransformerEncoder(embed_dims=embed_dims, layers=layers, num_heads=num_heads,
                                 sr_ratios=sr_ratios, mlp_ratio=mlp_ratio,
                                 drop_path_rate=drop_path_rate, depth=depth)
