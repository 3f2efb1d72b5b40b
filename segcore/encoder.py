"""The encoder contract, and a base class that implements the common parts of it.

Every encoder module must expose:

* ``forward(x) -> list[Tensor]``: ``depth + 1`` feature maps, the first being the input ``x``
  itself, then reductions 2, 4, 8, 16, 32 (capped at ``output_stride`` when dilated). A level
  the backbone does not produce (transformers start at reduction 4) is an empty tensor with
  0 channels at the right size.
* ``out_channels``: a tuple with the channels of those ``depth + 1`` maps.
* ``output_stride``: the reduction of the last map, ``min(output_stride, 2 ** depth)``.
* ``depth``: the number of reductions it returns (1-5).

``EncoderBase`` gives those attributes, changing the input channels of the first convolution
(``set_in_channels``) and dilation (``make_dilated``) from a ``get_stages()`` description.
Encoders that cannot derive from it (a wrapped timm model) only need the attributes above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from segcore.errors import EncoderCapabilityError, InvalidOptionError

VALID_DEPTHS = (1, 2, 3, 4, 5)
VALID_OUTPUT_STRIDES = (8, 16, 32)


def check_depth(depth: int, valid: Sequence[int] = VALID_DEPTHS, needed_by: str = "") -> None:
    """Raise ``InvalidOptionError`` unless ``depth`` is one of ``valid`` (consecutive ints).

    ``needed_by`` names the architecture whose decoder sets the lower bound.
    """
    low, high = min(valid), max(valid)
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise InvalidOptionError(
            f"encoder_depth must be an int from {low} to {high}, got {depth!r}"
        )
    if depth < low:
        who = f"the {needed_by} decoder" if needed_by else "this use"
        raise InvalidOptionError(
            f"encoder_depth={depth} is too small: {who} needs at least {low} encoder stages. "
            f"Use encoder_depth={low}" + (f" to {high}." if high > low else ".")
        )
    if depth > high:
        raise InvalidOptionError(
            f"encoder_depth={depth} is too large: encoders have at most {high} down-sampling "
            f"stages (reductions 2 to {2**high}). Use encoder_depth={high} or less."
        )


class EncoderBase(nn.Module):
    """Base class for encoders that follow the contract.

    Subclasses set ``_out_channels`` (channels at depth 5, the input first), build their
    modules, implement ``forward`` and, for dilation, ``get_stages``.
    """

    # Properties are Python API (TorchScript would compile them); ``_out_channels`` (a tuple of
    # ints) has no class-level annotation because TorchScript reads those and cannot resolve
    # the string annotations of ``from __future__ import annotations``.
    __jit_unused_properties__ = ["depth", "out_channels", "output_stride", "in_channels"]
    # what the encoder supports (SMP 0.6.0's flags, same names)
    _is_torch_scriptable = True
    _is_torch_exportable = True
    _is_torch_compilable = True

    def __init__(self, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__()
        check_depth(depth)
        if output_stride not in VALID_OUTPUT_STRIDES:
            raise InvalidOptionError(
                f"output_stride must be one of {VALID_OUTPUT_STRIDES}, got {output_stride!r}"
            )
        self._depth = depth
        self._output_stride = output_stride
        self._in_channels = 3

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def out_channels(self) -> tuple[int, ...]:
        return tuple(self._out_channels[: self._depth + 1])

    @property
    def output_stride(self) -> int:
        return min(self._output_stride, 2**self._depth)

    @property
    def in_channels(self) -> int:
        return self._in_channels

    def get_stages(self) -> Mapping[int, Sequence[nn.Module]]:
        """Modules that run at each reduction above 8: ``{16: [...], 32: [...]}``."""
        raise EncoderCapabilityError(f"{type(self).__name__} does not support dilation")

    def make_dilated(self, output_stride: int) -> None:
        """Replace the strides of the stages beyond ``output_stride`` with dilation."""
        if output_stride == 32:
            return
        if output_stride not in (8, 16):
            raise InvalidOptionError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        for stage_stride, modules in self.get_stages().items():
            if stage_stride <= output_stride:
                continue
            rate = stage_stride // output_stride
            for module in modules:
                replace_strides_with_dilation(module, rate)
        self._output_stride = output_stride

    def set_in_channels(self, in_channels: int, pretrained: bool = True) -> None:
        """Make the first convolution take ``in_channels`` channels (see ``patch_first_conv``)."""
        if in_channels == self._in_channels:
            return
        patch_first_conv(self, in_channels, default_in_channels=self._in_channels,
                         pretrained=pretrained)
        self._out_channels = (in_channels, *tuple(self._out_channels[1:]))
        self._in_channels = in_channels

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map the keys of a weights file to this module's keys (override for other layouts)."""
        return state_dict


def first_conv(model: nn.Module, in_channels: int = 3) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of ``model`` that takes ``in_channels`` channels."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == in_channels:
            return module
    raise EncoderCapabilityError(
        f"{type(model).__name__} has no Conv2d with {in_channels} input channels to adapt"
    )


@torch.no_grad()
def patch_first_conv(
    model: nn.Module, new_in_channels: int, default_in_channels: int = 3, pretrained: bool = True
) -> None:
    """Adapt the first convolution of ``model`` to ``new_in_channels`` input channels.

    With pretrained weights: one channel gets the sum of the original kernels; more channels
    cycle through the original kernels and are rescaled by ``default / new`` so activations keep
    their magnitude. Without pretrained weights the kernel is newly initialised.
    """
    if new_in_channels < 1:
        raise InvalidOptionError(f"in_channels must be at least 1, got {new_in_channels}")
    module = first_conv(model, default_in_channels)
    weight = module.weight.detach()
    module.in_channels = new_in_channels
    shape = (module.out_channels, new_in_channels // module.groups, *module.kernel_size)
    if not pretrained:
        module.weight = nn.Parameter(torch.empty(shape, dtype=weight.dtype, device=weight.device))
        module.reset_parameters()
        return
    if new_in_channels == 1:
        new_weight = weight.sum(1, keepdim=True)
    else:
        index = torch.arange(shape[1], device=weight.device) % default_in_channels
        new_weight = weight[:, index] * (default_in_channels / new_in_channels)
    module.weight = nn.Parameter(new_weight.contiguous())


def replace_strides_with_dilation(module: nn.Module, dilation_rate: int) -> None:
    """Turn every strided ``nn.Conv2d`` in ``module`` into a dilated one (same receptive field)."""
    for submodule in module.modules():
        if isinstance(submodule, nn.Conv2d):
            submodule.stride = (1, 1)
            submodule.dilation = (dilation_rate, dilation_rate)
            kernel_h, kernel_w = submodule.kernel_size
            submodule.padding = ((kernel_h // 2) * dilation_rate, (kernel_w // 2) * dilation_rate)
            if hasattr(submodule, "static_padding"):
                submodule.static_padding = nn.Identity()
