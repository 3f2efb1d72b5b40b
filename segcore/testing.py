"""Conformance kit for plugin authors.

Call these from your plugin's tests; each raises ``AssertionError`` with a precise message
when the contract is broken.

Example (an encoder plugin's ``tests/test_conformance.py``)::

    import pytest
    from segcore import testing

    @pytest.mark.parametrize("name", ["my_encoder"])
    def test_encoder_follows_the_contract(name):
        testing.check_encoder(name)

An architecture plugin can test without any encoder plugin installed, with the kit's tiny
encoder::

    def test_architecture():
        with testing.tiny_encoder_installed():
            testing.check_architecture("unet", encoder=testing.TINY_ENCODER)
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import torch
from torch import nn

from segcore.encoder import EncoderBase
from segcore.errors import InputShapeError
from segcore.hookspecs import hookimpl
from segcore.options import ArchitectureOptions
from segcore.specs import ArchitectureSpec, EncoderSpec, HeadSpec, LossSpec, MetricSpec

TINY_ENCODER = "segcore-testing-tiny"
_TINY_CHANNELS = (3, 8, 16, 24, 32, 40)


class TinyEncoder(EncoderBase):
    """A five-stage strided CNN that follows the contract; for tests only (fast on CPU)."""

    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        self._out_channels = _TINY_CHANNELS
        stages = []
        for index in range(1, 6):
            stages.append(
                nn.Sequential(
                    nn.Conv2d(_TINY_CHANNELS[index - 1], _TINY_CHANNELS[index], 3, stride=2,
                              padding=1, bias=False),
                    nn.BatchNorm2d(_TINY_CHANNELS[index]),
                    nn.ReLU(inplace=True),
                )
            )
        self.stages = nn.ModuleList(stages)

    def get_stages(self) -> dict[int, list[nn.Module]]:
        return {16: [self.stages[3]], 32: [self.stages[4]]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        for stage in self.stages[: self._depth]:
            x = stage(x)
            features.append(x)
        return features


def build_tiny_encoder(name: str, depth: int) -> TinyEncoder:
    """The factory of ``TINY_ENCODER`` (constructs only; the core adapts and dilates)."""
    return TinyEncoder(depth=depth)


TINY_ENCODER_SPEC = EncoderSpec(
    name=TINY_ENCODER,
    family="Testing",
    factory="segcore.testing:build_tiny_encoder",
    out_channels=_TINY_CHANNELS,
    supports_dilation=True,
    description="a tiny CNN for tests of architecture plugins",
)


class _SpecPlugin:
    def __init__(self, specs: Mapping[str, Sequence[Any]]) -> None:
        self._specs = specs

    @hookimpl
    def segcore_encoders(self) -> list[EncoderSpec]:
        return list(self._specs.get("encoders", ()))

    @hookimpl
    def segcore_architectures(self) -> list[ArchitectureSpec]:
        return list(self._specs.get("architectures", ()))

    @hookimpl
    def segcore_heads(self) -> list[HeadSpec]:
        return list(self._specs.get("heads", ()))

    @hookimpl
    def segcore_losses(self) -> list[LossSpec]:
        return list(self._specs.get("losses", ()))

    @hookimpl
    def segcore_metrics(self) -> list[MetricSpec]:
        return list(self._specs.get("metrics", ()))


_counter = itertools.count()


@contextlib.contextmanager
def plugin_installed(plugin: Any, name: str | None = None) -> Iterator[None]:
    """Register a plugin (an object or module with ``@hookimpl`` functions) within the block."""
    from segcore.plugins import get_plugin_manager

    manager = get_plugin_manager(strict=False)
    plugin_name = name or f"segcore.testing.{next(_counter)}"
    manager.register_module(plugin, plugin_name)
    try:
        yield
    finally:
        manager.unregister(plugin_name)


@contextlib.contextmanager
def specs_installed(
    *,
    encoders: Iterable[EncoderSpec] = (),
    architectures: Iterable[ArchitectureSpec] = (),
    heads: Iterable[HeadSpec] = (),
    losses: Iterable[LossSpec] = (),
    metrics: Iterable[MetricSpec] = (),
) -> Iterator[None]:
    """Make specs available as if an installed plugin provided them, for the block's duration."""
    specs = {
        "encoders": list(encoders),
        "architectures": list(architectures),
        "heads": list(heads),
        "losses": list(losses),
        "metrics": list(metrics),
    }
    with plugin_installed(_SpecPlugin(specs)):
        yield


def tiny_encoder_installed() -> contextlib.AbstractContextManager[None]:
    """Make ``TINY_ENCODER`` available (for architecture tests without encoder plugins)."""
    return specs_installed(encoders=[TINY_ENCODER_SPEC])


# -- encoders ------------------------------------------------------------------------------
def _expected_size(size: int, reduction: int) -> int:
    # Convolutions with padding k//2 and stride 2 give ceil(size / 2) at each step.
    result = size
    while reduction > 1:
        result = -(-result // 2)
        reduction //= 2
    return result


def check_encoder_features(
    encoder: nn.Module, x: torch.Tensor, depth: int, output_stride: int = 32
) -> list[torch.Tensor]:
    """Check one forward pass against the contract and return the features."""
    features = encoder(x)
    assert isinstance(features, list | tuple), f"forward must return a list, got {type(features)}"
    assert len(features) == depth + 1, (
        f"depth={depth}: expected {depth + 1} feature maps (the input first), got {len(features)}"
    )
    out_channels = tuple(encoder.out_channels)
    assert len(out_channels) == depth + 1, (
        f"depth={depth}: out_channels must have {depth + 1} entries, got {out_channels}"
    )
    assert features[0].shape == x.shape, "the first feature must be the input itself"
    assert int(encoder.output_stride) == min(output_stride, 2**depth), (
        f"output_stride is {encoder.output_stride}, expected {min(output_stride, 2**depth)}"
    )
    for level, feature in enumerate(features[1:], start=1):
        reduction = min(2**level, output_stride)
        assert feature.dim() == 4, f"feature {level} must be NCHW, got shape {tuple(feature.shape)}"
        assert feature.shape[0] == x.shape[0], f"feature {level} lost the batch dimension"
        assert feature.shape[1] == out_channels[level], (
            f"feature {level} has {feature.shape[1]} channels, out_channels says "
            f"{out_channels[level]}"
        )
        expected = (_expected_size(x.shape[2], reduction), _expected_size(x.shape[3], reduction))
        assert tuple(feature.shape[2:]) == expected, (
            f"feature {level} (reduction {reduction}) has spatial size "
            f"{tuple(feature.shape[2:])}, expected {expected} for input {tuple(x.shape[2:])}"
        )
    return list(features)


def check_encoder(
    name: str,
    *,
    depths: Iterable[int] = (3, 4, 5),
    in_channels: Iterable[int] = (1, 3, 4),
    size: int = 64,
    batch: int = 2,
    dilation: bool | None = None,
    compile: bool | None = None,
    compile_backend: str = "eager",
    **kwargs: Any,
) -> None:
    """Check that an installed encoder follows the contract.

    Checks feature count, channels and reductions for each depth and input channel count;
    ``output_stride`` 8 and 16 when the spec declares dilation (``dilation=None`` follows the
    spec); that gradients flow; and ``torch.compile(fullgraph=True)`` when the spec declares it
    (``compile_backend="eager"`` checks graph capture without compiling kernels).
    """
    from segcore.factory import get_encoder, get_encoder_spec

    spec = get_encoder_spec(name)
    torch.manual_seed(0)
    if spec.out_channels is not None:
        module_channels = tuple(get_encoder(name, depth=5, **kwargs).out_channels)
        assert module_channels == tuple(spec.out_channels), (
            f"encoder {name!r}: the spec says out_channels={tuple(spec.out_channels)} but the "
            f"module built at depth 5 has {module_channels}"
        )
    for depth, channels in itertools.product(tuple(depths), tuple(in_channels)):
        encoder = get_encoder(name, in_channels=channels, depth=depth, **kwargs).eval()
        x = torch.randn(batch, channels, size, size)
        with torch.no_grad():
            check_encoder_features(encoder, x, depth)

    if dilation is None:
        dilation = spec.supports_dilation
    if dilation:
        for output_stride in (8, 16):
            encoder = get_encoder(name, depth=5, output_stride=output_stride, **kwargs).eval()
            with torch.no_grad():
                check_encoder_features(encoder, torch.randn(batch, 3, size, size), 5,
                                       output_stride)

    encoder = get_encoder(name, depth=5, **kwargs).train()
    x = torch.randn(batch, 3, size, size, requires_grad=True)
    features = encoder(x)
    sum(f.float().mean() for f in features[1:] if f.numel()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all(), "gradients do not reach the input"
    assert any(p.grad is not None for p in encoder.parameters()), "no parameter received a gradient"

    if compile is None:
        compile = spec.supports_compile
    if compile:
        encoder = get_encoder(name, depth=5, **kwargs).eval()
        x = torch.randn(1, 3, size, size)
        compiled = torch.compile(encoder, fullgraph=True, backend=compile_backend)
        with torch.no_grad():
            expected = encoder(x)
            actual = compiled(x)
        for level, (a, b) in enumerate(zip(actual, expected)):
            torch.testing.assert_close(a, b, msg=lambda m, level=level: f"feature {level}: {m}")


# -- architectures -------------------------------------------------------------------------
def check_architecture(
    name: str,
    encoder: str = TINY_ENCODER,
    *,
    depths: Iterable[int] = (3, 4, 5),
    classes: Iterable[int] = (1, 5),
    in_channels: Iterable[int] = (1, 3, 4),
    size: int = 64,
    batch: int = 2,
    any_resolution: bool | None = None,
    options_for_depth: Callable[[int], Mapping[str, Any]] | None = None,
    **options: Any,
) -> None:
    """Check an installed architecture against the contract.

    Checks: the spec agrees with the class (name, class name, options class, requires_dilation);
    mask shapes for each depth x classes x in_channels; the aux head; gradients reach every
    decoder parameter; ``from_config(model.config)``; ``save_pretrained``/``from_pretrained``
    give the same outputs; ``predict`` (eval mode, inference mode); ``freeze_encoder`` (no
    gradients, normalisation statistics kept) and ``unfreeze_encoder``; ``activation``
    ("sigmoid", "softmax"); any input size (padding) and ``pad_inputs=False``.

    Every model must return masks of the input's size for odd sizes (models that need
    multiples of the output stride pad and crop); with ``model.pad_inputs = False`` such a
    model must refuse them with ``InputShapeError``. ``any_resolution=False`` skips the first
    check (for architectures whose mask has another scale than the input).
    ``options_for_depth(depth)`` gives the options used at each depth of ``depths`` (default:
    ``options``, with a 5-value ``decoder_channels`` trimmed to the depth).
    """
    from segcore.factory import build, get_architecture_class
    from segcore.model import SegmentationModel, from_config
    from segcore.registry import get_registry

    spec = get_registry().get("architectures", name)
    model_class = get_architecture_class(name)
    assert isinstance(model_class, type) and issubclass(model_class, SegmentationModel), (
        f"{name}: the spec's model {spec.model!r} must be a SegmentationModel subclass"
    )
    assert model_class.architecture == spec.name, (
        f"{name}: the spec's name {spec.name!r} differs from {model_class.__name__}.architecture "
        f"{model_class.architecture!r}; they must be equal (config.json stores the class's)"
    )
    assert model_class.__name__ == spec.class_name, (
        f"{name}: the spec's model reference {spec.model!r} names {spec.class_name!r} but the "
        f"class is {model_class.__name__!r}"
    )
    options_class = model_class.options_class
    assert attrs.has(options_class) and issubclass(options_class, ArchitectureOptions), (
        f"{name}: {model_class.__name__}.options_class must be an attrs class deriving from "
        f"segcore.options.ArchitectureOptions"
    )
    default_model = build(name, encoder=encoder)
    stride = default_model.encoder_output_stride(default_model.options)
    assert (stride < 32) == model_class.requires_dilation, (
        f"{name}: {model_class.__name__}.requires_dilation is {model_class.requires_dilation} but "
        f"its default options give encoder_output_stride {stride}"
    )
    torch.manual_seed(0)
    for depth in tuple(depths):
        for class_count, channels in itertools.product(tuple(classes), tuple(in_channels)):
            model = build(name, encoder=encoder, encoder_depth=depth, in_channels=channels,
                          classes=class_count,
                          **(options_for_depth(depth) if options_for_depth is not None
                             else _options_for_depth(options, depth))).eval()
            assert isinstance(model, SegmentationModel), f"{name} must build a SegmentationModel"
            x = torch.randn(batch, channels, size, size)
            with torch.no_grad():
                mask = model(x)
            assert isinstance(mask, torch.Tensor), "without aux_params forward returns a tensor"
            assert tuple(mask.shape) == (batch, class_count, size, size), (
                f"{name} depth={depth} in_channels={channels} classes={class_count}: mask shape "
                f"{tuple(mask.shape)}, expected {(batch, class_count, size, size)}"
            )

    model = build(name, encoder=encoder, classes=2,
                  aux_params={"classes": 4, "dropout": 0.5, "activation": "sigmoid"},
                  **options).eval()
    with torch.no_grad():
        output = model(torch.randn(batch, 3, size, size))
    assert isinstance(output, tuple) and len(output) == 2, "with aux_params forward returns a pair"
    mask, labels = output
    assert tuple(mask.shape) == (batch, 2, size, size), f"mask shape {tuple(mask.shape)}"
    assert tuple(labels.shape) == (batch, 4), f"labels shape {tuple(labels.shape)}"
    assert bool(((labels >= 0) & (labels <= 1)).all()), "aux activation 'sigmoid' not applied"

    model = build(name, encoder=encoder, classes=3, **options).train()
    x = torch.randn(batch, 3, size, size)
    model(x).mean().backward()
    assert all(p.grad is not None for p in model.decoder.parameters() if p.requires_grad), (
        "some decoder parameters received no gradient"
    )

    rebuilt = from_config(model.config)
    assert rebuilt.state_dict().keys() == model.state_dict().keys(), (
        "from_config(model.config) builds a model with different parameters"
    )
    _check_runtime(name, model, batch, size)
    _check_activations(name, encoder, options, batch, size)

    model.eval()
    odd = (size + 3, size - 5)
    x = torch.randn(1, 3, *odd)
    if any_resolution is None or any_resolution:
        with torch.no_grad():
            mask = model(x)
        assert tuple(mask.shape[2:]) == odd, (
            f"{name} should work on any input size (padding to a multiple of "
            f"{model.input_divisor()} and cropping back): input {odd}, mask "
            f"{tuple(mask.shape[2:])}"
        )
    divisor = model.input_divisor()
    if divisor > 1 and (odd[0] % divisor or odd[1] % divisor):
        model.pad_inputs = False  # SMP's strict behaviour, on request
        try:
            model(x)
        except InputShapeError:
            pass
        else:
            raise AssertionError(
                f"{name} with pad_inputs=False accepted {odd} although it needs multiples of "
                f"{divisor}"
            )
        finally:
            model.pad_inputs = True


def _check_runtime(name: str, model: Any, batch: int, size: int) -> None:
    """save/load round trip, predict, freeze_encoder / unfreeze_encoder."""
    import tempfile

    from segcore.model import from_pretrained

    x = torch.randn(batch, 3, size, size)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        loaded = from_pretrained(directory).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), expected, msg=lambda m: f"{name} after "
                                   f"save_pretrained/from_pretrained: {m}")
    model.train()
    predicted = model.predict(x)
    assert not model.training, f"{name}: predict() must switch to eval mode"
    assert predicted.is_inference(), f"{name}: predict() must run under inference_mode"
    torch.testing.assert_close(predicted, expected)

    model.freeze_encoder().train()
    assert all(not p.requires_grad for p in model.encoder.parameters()), (
        f"{name}: freeze_encoder left encoder parameters trainable"
    )
    statistics = {k: v.clone() for k, v in model.encoder.state_dict().items() if "running" in k}
    with torch.no_grad():
        model(x)
    for key, value in model.encoder.state_dict().items():
        if key in statistics:
            assert torch.equal(value, statistics[key]), (
                f"{name}: freeze_encoder must keep normalisation statistics ({key} changed)"
            )
    model.unfreeze_encoder()
    assert all(p.requires_grad for p in model.encoder.parameters()), (
        f"{name}: unfreeze_encoder did not make the encoder trainable again"
    )


def _check_activations(name: str, encoder: str, options: Mapping[str, Any], batch: int,
                       size: int) -> None:
    """``activation`` is applied to the mask: sigmoid in [0, 1], softmax sums to 1."""
    from segcore.factory import build

    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        sigmoid = build(name, encoder=encoder, classes=2, activation="sigmoid", **options).eval()
        mask = sigmoid(x)
        assert bool(((mask >= 0) & (mask <= 1)).all()), f"{name}: activation='sigmoid' ignored"
        softmax = build(name, encoder=encoder, classes=3, activation="softmax", **options).eval()
        total = softmax(x).sum(dim=1)
        torch.testing.assert_close(total, torch.ones_like(total),
                                   msg=lambda m: f"{name}: activation='softmax': {m}")


def _options_for_depth(options: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """Trim a ``decoder_channels`` sequence to the depth when it has one entry per stage."""
    result = dict(options)
    channels = result.get("decoder_channels")
    if isinstance(channels, list | tuple) and len(channels) == 5:
        result["decoder_channels"] = tuple(channels[:depth])
    return result


# -- pytest plugin ---------------------------------------------------------------------------
# ``pytest_plugins = ["segcore.testing"]`` in a root conftest.py gives every test a fresh plugin
# registry, an empty weights cache and none of the user's SEGCORE_* settings.

try:
    import pytest
except ImportError:  # the kit's functions work without pytest; the fixtures need it
    pytest = None  # type: ignore[assignment]

_SETTINGS = (
    "SEGCORE_DISABLE_PLUGINS", "SEGCORE_STRICT_PLUGINS", "SEGCORE_OFFLINE",
    "SEGCORE_TRACE_PLUGINS", "SEGCORE_DOWNLOAD_TIMEOUT", "SEGCORE_DOWNLOAD_STALL_TIMEOUT",
)


if pytest is not None:

    @pytest.fixture(autouse=True)
    def segcore_isolation(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Each test: plugins discovered afresh, ``SEGCORE_CACHE`` in a temporary directory."""
        from segcore import plugins

        monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "segcore-cache"))
        for variable in _SETTINGS:
            monkeypatch.delenv(variable, raising=False)
        plugins.reset()
        yield
        plugins.reset()

    @pytest.fixture
    def segcore_offline(monkeypatch: pytest.MonkeyPatch) -> None:
        """No download is attempted in this test (``SEGCORE_OFFLINE=1``)."""
        monkeypatch.setenv("SEGCORE_OFFLINE", "1")

    @pytest.fixture
    def segcore_without_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Only the core: every installed plugin is blocked (before import) for this test."""
        import importlib_metadata

        from segcore import plugins

        names = {entry_point.name for entry_point in
                 importlib_metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)}
        monkeypatch.setenv("SEGCORE_DISABLE_PLUGINS", ",".join(sorted(names)))
        plugins.reset()
        yield
        plugins.reset()
