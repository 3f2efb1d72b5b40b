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

The encoder parity files share the last section: an SMP encoder and ours with SMP's state
dict loaded strictly (``smp_and_our_encoder``), every feature map compared within 1e-5
(``assert_same_features``, ``assert_encoders_agree``, ``assert_features_agree_at_sizes``),
parameter counts on the meta device, the encoder part of SMP checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
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


# -- encoders ---------------------------------------------------------------------------------
#: the encoder comparisons' tolerance (absolute and relative) and input sizes
FEATURE_TOLERANCE = 1e-5
ENCODER_SIZES = ((64, 64), (64, 96))


def assert_same_features(actual, expected, label: str = "", *, atol: float = FEATURE_TOLERANCE,
                         rtol: float = FEATURE_TOLERANCE, magnitude_scaled: bool = False,
                         levels: int | None = None) -> None:
    """As many feature maps as SMP's (with ``levels``: exactly that many), each of the same
    shape, dtype and values within the tolerance; with ``magnitude_scaled``, ``atol`` is
    multiplied by the map's largest magnitude plus one (fused kernels round differently)."""
    assert len(actual) == len(expected), f"{label}: {len(actual)} vs {len(expected)} features"
    assert levels is None or len(actual) == levels, f"{label}: {len(actual)} features"
    for level, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"{label} feature {level}: {tuple(a.shape)} vs {tuple(b.shape)}"
        scale = float(b.abs().max()) + 1.0 if magnitude_scaled else 1.0
        torch.testing.assert_close(a, b, atol=atol * scale, rtol=rtol,
                                   msg=lambda m, level=level: f"{label} feature {level}: {m}")


def assert_encoders_agree(reference: torch.nn.Module, ours: torch.nn.Module, x: torch.Tensor,
                          label: str = "", **tolerance) -> None:
    """SMP's encoder and ours give the same features on ``x`` (``assert_same_features``)."""
    with torch.no_grad():
        expected = reference(x)
        actual = ours(x)
    assert_same_features(actual, expected, label, **tolerance)


def assert_features_agree_at_sizes(reference: torch.nn.Module, ours: torch.nn.Module,
                                   in_channels: int, label: str = "", *,
                                   sizes: Iterable[tuple[int, int]] = ENCODER_SIZES,
                                   batch: int = 1, seed: int = 1, **tolerance) -> None:
    """Same ``out_channels`` and output stride, and the same features on a random input (drawn
    from ``seed``) of each size."""
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == reference.output_stride
    for height, width in sizes:
        x = torch.randn(batch, in_channels, height, width,
                        generator=torch.Generator().manual_seed(seed))
        assert_encoders_agree(reference, ours, x, f"{label} {in_channels}ch {height}x{width}",
                              **tolerance)


def smp_and_our_encoder(name: str, smp_name: str | None = None,
                        **options) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(SMP's encoder ``smp_name`` built from seed 0, ours ``name`` with SMP's state dict loaded
    strictly), both in eval mode; ``options`` (in_channels, depth, output_stride) go to both."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(smp_name or name, weights=None, **options).eval()
    ours = segcore.get_encoder(name, **options).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def encoder_feature_tests(pair: Callable[[str, int, int], tuple[torch.nn.Module,
                                                                torch.nn.Module]],
                          names: Iterable[str]) -> tuple[Callable, Callable]:
    """Two tests on the encoders ``pair(name, in_channels, output_stride)`` gives (SMP's, ours
    with SMP's weights) for each name: the features agree with input channels 3 and 1
    (``assert_features_agree_at_sizes``), and dilated to output stride 16 on a 64x96 input."""
    names = list(names)

    @pytest.mark.parametrize("in_channels", [3, 1])
    @pytest.mark.parametrize("name", names)
    def features_test(name: str, in_channels: int) -> None:
        reference, ours = pair(name, in_channels, 32)
        assert_features_agree_at_sizes(reference, ours, in_channels, name)

    @pytest.mark.parametrize("name", names)
    def dilated_test(name: str) -> None:
        reference, ours = pair(name, 3, 16)
        assert ours.output_stride == reference.output_stride == 16
        x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
        assert_encoders_agree(reference, ours, x, f"{name} output stride 16")

    return features_test, dilated_test


def smp_encoder_and_ours(cache: dict[str, torch.nn.Module], name: str,
                         in_channels: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(SMP's encoder from ``cached_smp_encoder``, ours in eval mode with its state dict
    loaded strictly)."""
    reference = cached_smp_encoder(cache, name, in_channels)
    ours = segcore.get_encoder(name, in_channels=in_channels).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def cached_smp_encoder(cache: dict[str, torch.nn.Module], name: str,
                       in_channels: int) -> torch.nn.Module:
    """SMP's encoder (eval mode) built once per name into ``cache``; for other input channels,
    a copy adapted as ``smp.encoders.get_encoder(name, in_channels=c)`` does after building."""
    import segmentation_models_pytorch as smp

    if name not in cache:
        torch.manual_seed(0)
        cache[name] = smp.encoders.get_encoder(name, weights=None).eval()
    if in_channels == 3:
        return cache[name]
    reference = copy.deepcopy(cache[name])
    reference.set_in_channels(in_channels, pretrained=False)
    return reference


def assert_parameters_equal_smps(name: str, smp_name: str | None = None, *,
                                 same_keys: bool = False, same_shapes: bool = False) -> None:
    """Built on the meta device, ours has as many parameters as SMP's encoder; with
    ``same_keys`` the same state-dict keys in the same order; with ``same_shapes`` the same
    ``out_channels`` and the same shape under every key."""
    import segmentation_models_pytorch as smp

    with torch.device("meta"):
        reference = smp.encoders.get_encoder(smp_name or name, weights=None)
        ours = segcore.get_encoder(name)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters())
    if same_keys:
        assert list(ours.state_dict()) == list(reference.state_dict())
    if same_shapes:
        assert tuple(ours.out_channels) == tuple(reference.out_channels)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in reference.state_dict().items()}


def assert_dilation_refused_like_smp(smp_encoder: torch.nn.Module, name: str,
                                     output_stride: int = 16) -> None:
    """SMP's encoder (a copy) refuses ``make_dilated`` and segcore refuses the output stride."""
    from segcore.errors import EncoderCapabilityError

    with pytest.raises(ValueError, match="dilated"):
        # what smp.encoders.get_encoder(output_stride=...) calls
        copy.deepcopy(smp_encoder).make_dilated(output_stride)
    with pytest.raises(EncoderCapabilityError):
        segcore.get_encoder(name, output_stride=output_stride)


def assert_undilatable_encoder_like_smps(cache: dict[str, torch.nn.Module], name: str) -> None:
    """Ours has SMP's parameter count and state-dict keys, and refuses dilation as SMP's encoder
    (built once into ``cache``) does."""
    assert_parameters_equal_smps(name, same_keys=True)
    assert_dilation_refused_like_smp(cached_smp_encoder(cache, name, 3), name)


def smp_encoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The ``encoder.`` part of an SMP model's state dict, with that prefix removed."""
    prefix = "encoder."
    return {k[len(prefix):]: v for k, v in model.state_dict().items() if k.startswith(prefix)}


def smp_unet_and_its_encoder(name: str, smp_name: str | None = None, *, in_channels: int = 3,
                             **unet_options) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(SMP's ``Unet`` with encoder ``smp_name``, built from seed 0 with 2 classes, and our
    encoder ``name`` with the encoder part of its checkpoint loaded strictly), both in eval
    mode; SMP's warnings while building are ignored."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smp.Unet(smp_name or name, encoder_weights=None, classes=2,
                         in_channels=in_channels, **unet_options).eval()
    ours = segcore.get_encoder(name, in_channels=in_channels).eval()
    ours.load_state_dict(smp_encoder_state(model), strict=True)
    return model, ours


def assert_smp_unet_encoder_part_agrees(name: str, label: str | None = None) -> None:
    """The encoder part of SMP's ``Unet(name)`` checkpoint loads strictly into ours
    (``smp_unet_and_its_encoder``) and gives the same features on a 64x64 input."""
    model, ours = smp_unet_and_its_encoder(name)
    assert_encoders_agree(model.encoder, ours, torch.randn(1, 3, 64, 64),
                          label or f"Unet({name}).encoder")


def assert_whole_smp_checkpoint_gives_the_same_masks(architecture: str, smp_class: str,
                                                     encoder: str, x: torch.Tensor,
                                                     **options) -> None:
    """SMP's ``smp_class`` (3 classes, ``x``'s input channels, from seed 0) and segcore's
    ``architecture`` have the same state-dict keys; SMP's checkpoint loads strictly into ours
    and gives the same masks on ``x`` (atol 1e-5, rtol 1e-4)."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = getattr(smp, smp_class)(encoder, encoder_weights=None, classes=3,
                                            in_channels=x.shape[1], **options).eval()
    model = segcore.build(architecture, encoder=encoder, encoder_weights=None, classes=3,
                          in_channels=x.shape[1], **options).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=1e-4)
