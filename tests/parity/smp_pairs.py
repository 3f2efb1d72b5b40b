"""What the SMP parity tests of the architectures share: an SMP model and segcore's built with
the same options, SMP's checkpoint loaded strictly into ours (and ours into SMP's), outputs
compared with one tolerance, decoders initialised from the same seed.

``tests/parity/conftest.py`` puts this folder on ``sys.path`` (pytest runs with
``--import-mode=importlib``), so a test file imports it as ``import smp_pairs`` after its
``pytest.importorskip("segmentation_models_pytorch")``. Nothing here imports SMP at module level.

Most files compare with segcore's own encoders ("resnet34" from segcore-resnet, "tu-resnet18"
and others from segcore-timm): their state dicts already follow SMP's, so the whole SMP
checkpoint (encoder, decoder, heads) loads into the segcore model unchanged. Where a file needs
SMP's own encoder inside a segcore model, ``smp_encoder_spec`` provides it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pytest
import torch

import segcore
from segcore import testing
from segcore.specs import EncoderSpec

TOLERANCE = 1e-4
SIZES = ((64, 64), (96, 64))  # both divisible by 32, as SMP needs
AUX = {"classes": 4, "pooling": "max", "dropout": 0.3}  # the aux_params most option sets use

#: DPT takes timm ViTs only: a narrow ViT-Tiny that accepts any multiple of its patch size
VIT_OPTIONS = {"img_size": 64, "embed_dim": 48, "num_heads": 3, "dynamic_img_size": True,
               "decoder_intermediate_channels": (16, 32, 64, 64),
               "decoder_fusion_channels": 32}

#: architecture -> (package, class name, encoder, options); the encoder is resnet34 (the
#: issue's) except for DPT.
MODELS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "unet": ("segcore_unet", "Unet", "resnet34", {}),
    "unetplusplus": ("segcore_unetplusplus", "UnetPlusPlus", "resnet34", {}),
    "manet": ("segcore_manet", "MAnet", "resnet34", {}),
    "linknet": ("segcore_linknet", "Linknet", "resnet34", {}),
    "fpn": ("segcore_fpn", "FPN", "resnet34", {}),
    "pspnet": ("segcore_pspnet", "PSPNet", "resnet34", {}),
    "pan": ("segcore_pan", "PAN", "resnet34", {}),
    "deeplabv3": ("segcore_deeplab", "DeepLabV3", "resnet34", {}),
    "deeplabv3plus": ("segcore_deeplab", "DeepLabV3Plus", "resnet34", {}),
    "upernet": ("segcore_upernet", "UPerNet", "resnet34", {}),
    "segformer": ("segcore_segformer", "Segformer", "resnet34", {}),
    "dpt": ("segcore_dpt", "DPT", "tu-vit_tiny_patch16_224", VIT_OPTIONS),
}


# -- comparisons ------------------------------------------------------------------------------
def assert_same_outputs(reference, ours, x, *, rtol: float = TOLERANCE,
                        atol: float = TOLERANCE) -> None:
    """Same output (mask, or mask and labels) with the same shapes, within the tolerance."""
    with torch.no_grad(), warnings.catch_warnings():
        # SMP's "softmax" is nn.Softmax() without dim: dim 1 for NCHW masks and (N, classes)
        # labels, as segcore's
        warnings.filterwarnings("ignore", "Implicit dimension choice for softmax")
        expected, actual = reference(x), ours(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, rtol=rtol, atol=atol)


def assert_same_function(reference, ours, *inputs, **tolerance) -> None:
    """Both modules, in eval mode, give the same result on ``inputs`` (torch's default
    tolerance unless ``rtol``/``atol`` are given)."""
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(*inputs), reference.eval()(*inputs), **tolerance)


def assert_same_state(ours, reference, prefixes: tuple[str, ...] | None = None) -> None:
    """Same state-dict keys in the same order and the same values; with ``prefixes``, only
    the floating-point entries under them are compared."""
    expected, actual = reference.state_dict(), ours.state_dict()
    if prefixes is None:
        assert list(actual) == list(expected)
    for key, value in actual.items():
        if prefixes is None or (key.startswith(prefixes) and value.is_floating_point()):
            torch.testing.assert_close(value, expected[key], msg=key)


def assert_smp_output_on_the_padded_input(reference, ours, height: int, width: int,
                                          divisor: int = 32) -> None:
    """A size SMP refuses (one is added to the height of a multiple of ``divisor``): our mask
    has the input's size and is SMP's output for the input zero-padded (bottom and right) to
    the next multiple of ``divisor``, cropped back."""
    if height % divisor == 0 and width % divisor == 0:
        height += 1  # SMP accepts that size: the tests of the pair cover it
    x = torch.randn(1, 3, height, width)
    padded = torch.nn.functional.pad(x, (0, -width % divisor, 0, -height % divisor))
    with torch.no_grad():
        mask = ours(x)
        expected = reference(padded)[..., :height, :width]
    assert mask.shape == (1, expected.shape[1], height, width)
    torch.testing.assert_close(mask, expected, atol=TOLERANCE, rtol=TOLERANCE)


def trained_looking(module: torch.nn.Module, skip: tuple[str, ...] = (), seed: int = 2) -> None:
    """Random weights and normalisation statistics in place (freshly initialised norms are
    ones and zeros), so that a comparison means something; entries under ``skip`` are kept."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.startswith(skip) or not tensor.is_floating_point():
                continue
            if name.endswith("running_var") or (name.endswith("weight") and tensor.dim() == 1):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.2)


def initialised_pair(smp_module: Callable[[], torch.nn.Module],
                     our_module: Callable[[], torch.nn.Module], *, head: bool = False,
                     seed: int = 3) -> tuple[torch.nn.Module, torch.nn.Module]:
    """SMP's module and ours, each built from the same seed and initialised by its own library
    (as a decoder, or as a head): asserts the same state dict and returns (SMP's, ours)."""
    from segmentation_models_pytorch.base import initialization

    from segcore.nn import initialize_decoder, initialize_head

    torch.manual_seed(seed)
    reference = smp_module()
    (initialization.initialize_head if head else initialization.initialize_decoder)(reference)
    torch.manual_seed(seed)
    ours = our_module()
    (initialize_head if head else initialize_decoder)(ours)
    assert_same_state(ours, reference)
    return reference, ours


# -- SMP's own encoders inside segcore models ---------------------------------------------------
def smp_encoder_spec(name: str, smp_name: str, out_channels: tuple[int, ...],
                     **capabilities) -> EncoderSpec:
    """An encoder spec whose factory builds SMP's encoder ``smp_name`` (which builds input
    channels and dilation in: ``native_setup``), so a whole SMP checkpoint loads unchanged."""
    import segmentation_models_pytorch as smp

    def factory(name: str, in_channels: int, depth: int, output_stride: int,
                weights: object = None) -> torch.nn.Module:
        return smp.encoders.get_encoder(smp_name, in_channels=in_channels, depth=depth,
                                        weights=None, output_stride=output_stride)

    return EncoderSpec(name=name, family=capabilities.pop("family", "SMP"), factory=factory,
                       out_channels=out_channels, native_setup=True, **capabilities)


# -- model pairs ------------------------------------------------------------------------------
class Pairs:
    """Builds SMP's ``smp_class`` and segcore's model with the same options.

    ``our_class`` is segcore's documented class (``None``: always ``segcore.build``);
    ``architecture`` the name for ``segcore.build``, where ``build_defaults`` come first;
    ``defaults`` the options of every pair (``classes=3``); ``smp_encoders`` maps our encoder
    names to SMP's where they differ, ``specs`` the encoder specs installed while ours is
    built; ``quiet`` the warning messages (regular expressions) that building either model may
    give and that are ignored.
    """

    def __init__(self, smp_class, our_class=None, architecture: str | None = None, *,
                 defaults: Mapping | None = None, build_defaults: Mapping | None = None,
                 smp_encoders: Mapping[str, str] | None = None,
                 specs: Iterable[EncoderSpec] = (), quiet: Iterable[str] = ()) -> None:
        self.smp_class = smp_class
        self.our_class = our_class
        self.architecture = architecture
        self.defaults = {"classes": 3} if defaults is None else dict(defaults)
        self.build_defaults = dict(build_defaults or {})
        self.smp_encoders = dict(smp_encoders or {})
        self.specs = list(specs)
        self.quiet = tuple(quiet)

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        with warnings.catch_warnings():
            for message in self.quiet:
                warnings.filterwarnings("ignore", message)
            yield

    def smp(self, encoder: str, **options) -> torch.nn.Module:
        """SMP's model (eval mode), without pretrained weights; ``encoder`` is our name."""
        with self._quiet():
            model = self.smp_class(encoder_name=self.smp_encoders.get(encoder, encoder),
                                   encoder_weights=None, **options)
        return model.eval()

    def ours(self, encoder: str, via_build: bool = False, **options) -> torch.nn.Module:
        """Segcore's model (eval mode): through ``segcore.build`` or the documented class."""
        specs = testing.specs_installed(encoders=self.specs) if self.specs else None
        with specs or contextlib.nullcontext(), self._quiet():
            if via_build or self.our_class is None:
                model = segcore.build(self.architecture, encoder=encoder,
                                      **{**self.build_defaults, **options})
            else:
                model = self.our_class(encoder_name=encoder, encoder_weights=None, **options)
        return model.eval()

    def pair(self, encoder: str, options: Mapping | None = None,
             our_options: Mapping | None = None, *, via_build: bool = False,
             trained: bool = False) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(SMP's model, ours): the same state-dict keys in the same order, SMP's checkpoint
        loaded strictly into ours. ``our_options`` where segcore's arguments differ; with
        ``trained``, SMP's weights outside the encoder are made trained-looking first."""
        smp_options = {**self.defaults, **(options or {})}
        torch.manual_seed(0)
        reference = self.smp(encoder, **smp_options)
        if trained:
            trained_looking(reference, skip=("encoder.",))
        ours = self.ours(encoder, via_build,
                         **(smp_options if our_options is None
                            else {**self.defaults, **our_options}))
        assert list(ours.state_dict()) == list(reference.state_dict())
        ours.load_state_dict(reference.state_dict(), strict=True)
        return reference, ours

    def assert_parity(self, encoder: str, options: Mapping | None = None,
                      our_options: Mapping | None = None, *, via_build: bool = False,
                      trained: bool = False, sizes: Iterable[tuple[int, int]] = SIZES,
                      batch: int = 1, **tolerance) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The SMP checkpoint loads strictly into ours (see ``pair``) and both give the same
        outputs on random inputs of each size; returns the pair."""
        reference, ours = self.pair(encoder, options, our_options, via_build=via_build,
                                    trained=trained)
        channels = (options or {}).get("in_channels", 3)
        for size in sizes:
            torch.manual_seed(1)
            assert_same_outputs(reference, ours, torch.randn(batch, channels, *size),
                                **tolerance)
        return reference, ours

    def parity_test(self, encoders: Iterable[str], option_sets: Mapping[str, Mapping], *,
                    marks: Iterable[pytest.MarkDecorator] = (), **keywords) -> Callable:
        """The test "SMP's checkpoint loads strictly into ours and gives the same outputs"
        (``assert_parity``) for each encoder and option set (ids: the sets' names); ``tu-``
        encoders go through ``segcore.build``, the others through the documented class."""

        @pytest.mark.parametrize("options", list(option_sets.values()), ids=list(option_sets))
        @pytest.mark.parametrize("encoder", list(encoders))
        def test(encoder, options):
            self.assert_parity(encoder, options, via_build=encoder.startswith("tu-"),
                               **keywords)

        for mark in marks:
            test = mark(test)
        return test

    def assert_loads_into_smp(self, encoder: str, x: torch.Tensor, *, via_build: bool = False,
                              **options) -> None:
        """The other direction: segcore's checkpoint (trained-looking outside the encoder)
        loads strictly into SMP's model and both give the same outputs."""
        options = {**self.defaults, **options}
        torch.manual_seed(1)
        ours = self.ours(encoder, via_build, **options)
        trained_looking(ours, skip=("encoder.",))
        reference = self.smp(encoder, **options)
        reference.load_state_dict(ours.state_dict(), strict=True)
        assert_same_outputs(reference, ours, x)

    def head_upsampling_shape(self, encoder: str, upsampling: int, x: torch.Tensor,
                              **options) -> torch.Size:
        """With ``upsampling``, the head's upsampling layer is SMP's (same type and factor)
        and the outputs are the same; returns the mask's shape."""
        reference, ours = self.pair(encoder, {"upsampling": upsampling, **options})
        expected, actual = reference.segmentation_head[1], ours.segmentation_head[1]
        assert type(actual) is type(expected)
        assert getattr(actual, "scale_factor", 1) == getattr(expected, "scale_factor", 1)
        assert_same_outputs(reference, ours, x)
        with torch.no_grad():
            return ours(x).shape

    def assert_same_initialisation(self, encoder: str, **options) -> None:
        """Same seed: SMP's initialisation of the decoder and heads gives the same weights."""
        options = {**self.defaults, **options}
        torch.manual_seed(0)
        ours = self.ours(encoder, **options)
        torch.manual_seed(0)
        reference = self.smp(encoder, **options)
        assert_same_state(ours, reference, prefixes=("decoder.", "segmentation_head."))
