"""VGG encoders with torchvision's module names and math (no torchvision needed).

The module tree is torchvision's ``VGG.features`` (an ``nn.Sequential`` of 3x3 convolutions,
optional batch norms, in-place ReLUs and 2x2 max-pools), without ``avgpool``/``classifier``.
State dicts of SMP's ``VGGEncoder`` load with ``strict=True``; torchvision classifier files
load once ``remap_state_dict`` has dropped their ``classifier.*`` keys.

Features are taken, as in SMP, from the ReLU before each max-pool and, for the deepest
level, from the last max-pool itself (so the deepest feature is *pooled*: the spec says
``deepest_feature_pooled=True`` and Unet adds a center block). The first feature is the
input itself (segcore's encoder contract) where SMP returns the full-resolution 64-channel
map that no decoder uses.

Example::

    encoder = VGGEncoder(CONFIGS["A"], batch_norm=True)         # vgg11_bn
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 128, 256, 512, 512, 512]; sizes 64, 32, 16, 8, 4, 2
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segcore.errors import InvalidOptionError
from segcore.nn import SequentialTapsEncoder, initialize_like_torchvision

__all__ = ["CONFIGS", "VGGEncoder", "build_encoder"]

#: torchvision's layer configurations: output channels of each 3x3 convolution, "M" a max-pool.
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),  # VGG-11
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),  # VGG-13
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"),  # VGG-16
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),  # VGG-19
}


class VGGEncoder(SequentialTapsEncoder):
    """VGG feature extractor following the segcore encoder contract.

    Args:
        config: the layer configuration (a value of ``CONFIGS``, or its key): convolution
            widths with ``"M"`` for a 2x2 max-pool; exactly 5 pools, the last one at the end.
        batch_norm: put a ``BatchNorm2d`` after every convolution (the ``_bn`` variants).
        depth: number of reductions returned, 1-5; layers beyond it are kept (so weights
            always fit) but not run.

    ``forward(x)`` with ``x`` of shape ``(N, in_channels, H, W)`` returns ``depth + 1`` maps:
    ``x``, then the ReLU output before the 2nd, 3rd, 4th and 5th max-pool (reductions 2 to
    16), then the output of the 5th max-pool (reduction 32). Pools floor odd sizes, as
    torchvision's do. VGG has no dilated mode (its reductions are max-pools).
    """

    def __init__(self, config: Sequence[int | str] | str = "A", batch_norm: bool = False,
                 depth: int = 5) -> None:
        super().__init__(depth=depth)
        if isinstance(config, str):
            if config not in CONFIGS:
                raise InvalidOptionError(
                    f"config must be one of {tuple(CONFIGS)} or a sequence, got {config!r}")
            config = CONFIGS[config]
        config = tuple(config)
        pools = [i for i, value in enumerate(config) if value == "M"]
        if len(pools) != 5 or config[-1] != "M" or config[0] == "M" or any(
                not (value == "M" or (isinstance(value, int) and value > 0)) for value in config):
            raise InvalidOptionError(
                f"config must list positive convolution widths and exactly 5 'M' (max-pools), "
                f"the last at the end, not first; got {config!r}")

        layers: list[nn.Module] = []
        before_pool: list[int] = []  # index in ``features`` of the ReLU before each pool
        channels: list[int] = []  # channels at each pool
        width = 3
        for value in config:
            if value == "M":
                before_pool.append(len(layers) - 1)
                channels.append(width)
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            assert isinstance(value, int)
            layers.append(nn.Conv2d(width, value, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(value))
            layers.append(nn.ReLU(inplace=True))
            width = value
        self.features = nn.Sequential(*layers)

        # Reductions 2, 4, 8, 16: before pools 2-5; reduction 32: the last pool's output.
        self.set_feature_indexes([*before_pool[1:], len(layers) - 1])
        self._out_channels = (3, *channels[1:], channels[-1])
        # torchvision's initialisation: He (fan_out) for convolutions, zero biases, BN identity.
        initialize_like_torchvision(self)

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``classifier.*``) of torchvision classification files."""
        return {k: v for k, v in state_dict.items() if not k.startswith("classifier.")}


def build_encoder(name: str, depth: int = 5, *, config: str,
                  batch_norm: bool = False) -> VGGEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights and adapts the input channels afterwards.

    Example::

        encoder = build_encoder("vgg16_bn", depth=4, config="D", batch_norm=True)
    """
    return VGGEncoder(config=config, batch_norm=batch_norm, depth=depth)
