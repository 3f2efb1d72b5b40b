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

``check_architecture`` covers what every architecture shares (shapes, aux head, gradients,
save/load, predict, freeze, activations, padding). For what a plugin tests with its own
options, the kit has helpers that do the common part (``tiny_encoder_fixture`` installs the
tiny encoder for a whole module): ``check_save_load``, ``check_compile``, ``check_export``,
``check_channels_last``, ``assert_same_outputs``, ``check_sigmoid_outputs``,
``check_unused_parameters_frozen`` (run-time), ``check_decoder_batchnorm``,
``check_decoder_without_batchnorm``, ``check_stored_options``, ``check_encoder_kwargs``,
``check_unknown_options``, ``check_default_weights``, ``check_lazy_discovery``,
``check_documented_signature``, ``check_encoder_depth_refused``, ``check_input_divisor`` (the
documented API),
``check_decoder_norm_option``, ``check_decoder_norm_errors``, ``check_decoder_channels_errors``,
``check_option_changes_output``, ``check_head_upsampling``, ``check_decoder_channel_dropout``
(options), and ``randomise_weights``, ``reference_conv_norm_relu``, ``reference_scse``
(reference math).

An encoder plugin's spec tests have ``documented_encoders``, ``check_lazy_encoder_listing``,
``check_encoder_spec``, ``check_smp_hub_weights``, ``check_revisions_are_distinct``,
``check_parameter_count`` (with ``meta_encoder``, ``agrees_with_documented_size``),
``check_torchscript``, ``check_scripted_and_exported``, ``check_encoder_in_architecture`` (with
``ENCODER_TEST_ARCHITECTURES``) and ``check_undilated_encoder_in_deeplabv3plus``. Its weights
tests have ``weights_fixtures``, ``EncoderWeightsSuite``, ``random_state_dict``,
``assert_same_state``, ``check_classifier_file_loads``, ``check_unexpected_keys_refused``,
``check_first_conv_adaptation``, ``check_weights_download``, ``check_wrong_digest_refused``
and a loopback web server, ``serve_bytes`` / ``serve_files``::

    def test_tag_is_downloaded_verified_and_cached(tmp_path):
        state = testing.random_state_dict(segcore.get_encoder("my_encoder"))
        save_file(state, str(tmp_path / "weights.safetensors"))
        testing.check_weights_download("my_encoder", "imagenet", tmp_path / "weights.safetensors",
                                       state, tmp_path / "cache", first_conv_keys="conv1.weight")
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from segcore.encoder import EncoderBase
from segcore.errors import EncoderCapabilityError, InputShapeError
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


def tiny_encoder_fixture() -> Any:
    """An autouse pytest fixture that makes ``TINY_ENCODER`` available in every test of the
    module that assigns it (after ``segcore_isolation``'s fresh registry).

    Example: ``tiny_encoder = testing.tiny_encoder_fixture()`` at the top of the test module.
    """
    import pytest

    @pytest.fixture(autouse=True, name="segcore_tiny_encoder")
    def tiny_encoder(segcore_isolation: None) -> Iterator[None]:
        """``TINY_ENCODER`` installed for the test."""
        with tiny_encoder_installed():
            yield

    return tiny_encoder


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
    spec), and their refusal (``EncoderCapabilityError``) when it does not; that gradients
    flow; and ``torch.compile(fullgraph=True)`` when the spec declares it
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
    if not spec.supports_dilation:
        for output_stride in (8, 16):
            _expect_error(EncoderCapabilityError, "cannot be dilated",
                          lambda stride=output_stride: get_encoder(
                              name, depth=5, output_stride=stride, **kwargs),
                          f"encoder {name!r} (supports_dilation=False), output_stride="
                          f"{output_stride}")

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


# -- helpers for an encoder plugin's spec, size and export tests ---------------------------
def check_lazy_encoder_listing(
    package: str,
    names: Iterable[str],
    *,
    pattern: str | None = None,
    exact: bool = False,
    forbidden: Sequence[str] = (),
    then: str | None = None,
) -> dict[str, list[str]]:
    """Listing encoders, in a fresh interpreter, shows ``names`` and imports no encoder code.

    Runs ``segcore.list_encoders(pattern)`` in a new Python process. Checks: every name of
    ``names`` is listed (with ``exact``, nothing else is); of ``package``, only the package and
    its ``plugin`` module are imported; no module of ``forbidden`` (packages or modules:
    ``"timm"`` stands for ``timm`` and ``timm.*``) is imported. ``then`` is Python code run
    next in the same process (``segcore`` and the listed ``names`` in scope), after which
    ``forbidden`` is checked again. Returns ``{"names": the listed names, "listed": the
    modules imported after listing, "then": those after ``then``}``.

    Example::

        testing.check_lazy_encoder_listing("segcore_vgg", ["vgg11", "vgg13"], pattern="vgg*",
                                           forbidden=("torchvision", "timm"))
    """
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, segcore\n"
        f"names = segcore.list_encoders({pattern!r})\n"
        "listed = sorted(sys.modules)\n"
        f"{then or ''}\n"
        "print(json.dumps({'names': names, 'listed': listed, 'then': sorted(sys.modules)}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"listing encoders failed:\n{result.stderr}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    listed, wanted = set(report["names"]), set(names)
    if exact:
        assert listed == wanted, (
            f"list_encoders({pattern!r}) gives {sorted(listed)}, expected {sorted(wanted)}"
        )
    else:
        assert wanted <= listed, f"list_encoders({pattern!r}) lacks {sorted(wanted - listed)}"

    def within(modules: Iterable[str], roots: Iterable[str]) -> list[str]:
        return [m for m in modules if any(m == r or m.startswith(r + ".") for r in roots)]

    own = set(within(report["listed"], [package]))
    assert own <= {package, package + ".plugin"}, (
        f"listing imported {sorted(own - {package, package + '.plugin'})}: the plugin module "
        f"must not import the encoder code"
    )
    for stage in ("listed", "then"):
        imported = within(report[stage], forbidden)
        assert not imported, f"{stage}: {imported} imported (forbidden: {list(forbidden)})"
    return report


#: The preprocessing of ImageNet weights trained the torchvision way, and of those trained with
#: inputs in [-1, 1] (Inception, AdvProp, TF ports), as ``check_smp_hub_weights`` compares them.
IMAGENET_PREPROCESSING: Mapping[str, Any] = {
    "input_space": "RGB", "input_range": [0.0, 1.0],
    "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
}
HALF_PREPROCESSING: Mapping[str, Any] = {
    "input_space": "RGB", "input_range": [0.0, 1.0],
    "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
}


def documented_encoders(prefix: str = "") -> dict[str, tuple[str, tuple[str, ...], float]]:
    """The encoder names of SMP's documentation (the catalogue core ships) that start with
    ``prefix``: ``{name: (family, weight tags, parameters in millions)}``, for a plugin's tests
    to compare its specs with.

    Example: ``testing.documented_encoders("timm-skresne")["timm-skresnet18"][1]`` is
    ``("imagenet",)``.
    """
    from segcore import _catalog

    return {name: row for name, row in _catalog.documented_encoders().items()
            if name.startswith(prefix)}


def check_encoder_spec(name: str, *, tags: Sequence[str] | None = None,
                       **fields: Any) -> EncoderSpec:
    """The installed spec of ``name`` is called ``name``, has the weight tags ``tags`` (in this
    order: the default first) and each field of ``fields`` (sequences compared as tuples;
    ``pytest.approx`` values work). Returns the spec.

    Example::

        testing.check_encoder_spec("vgg11", tags=("imagenet",), family="VGG",
                                   params_millions=9, supports_dilation=False)
    """
    from segcore.factory import get_encoder_spec

    spec = get_encoder_spec(name)
    assert spec.name == name, f"the spec of {name!r} is called {spec.name!r}"
    if tags is not None:
        assert tuple(spec.weights) == tuple(tags), (
            f"{name}: weight tags {tuple(spec.weights)}, expected {tuple(tags)}"
        )
    for field, expected in fields.items():
        actual = getattr(spec, field)
        if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
            actual, expected = tuple(actual), tuple(expected)
        assert expected == actual, f"{name}: {field} is {actual!r}, expected {expected!r}"
    return spec


def _close(actual: Any, expected: Any) -> bool:
    """Equal, numbers within a relative 1e-6 (float rounding of fractions such as 124/255)."""
    if isinstance(actual, list | tuple) and isinstance(expected, list | tuple):
        return len(actual) == len(expected) and all(map(_close, actual, expected))
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return abs(actual - expected) <= 1e-6 * max(abs(actual), abs(expected))
    return bool(actual == expected)


def check_smp_hub_weights(
    name: str,
    preprocessing: Mapping[str, Any] | Callable[[str], Mapping[str, Any]],
    *,
    repositories: Mapping[str, str] | None = None,
    revisions: Mapping[str, str] | None = None,
) -> None:
    """Every weight source of ``name`` is a file of SMP's Hugging Face hub pinned to a commit.

    Checks, for each tag: the URL is ``https://huggingface.co/smp-hub/<repository>/resolve/
    <commit>/model.safetensors``, the repository ``repositories[tag]`` (default
    ``<name>.<tag>`` with ``+`` written ``-``, SMP's spelling) and the commit ``revisions[tag]``
    (when given; else any 40 hexadecimal digits); the cache file is
    ``<name>.<tag>.safetensors``; no sha256 (the hub reports the digest) and no delegate; the
    source's preprocessing and ``get_preprocessing_params(name, pretrained=tag)`` are
    ``preprocessing`` (or ``preprocessing(tag)``; numbers within a relative 1e-6).

    Example::

        testing.check_smp_hub_weights("resnet18", IMAGENET, repositories={"sswl": "resnet18.swsl"})
    """
    import re

    from segcore.factory import get_encoder_spec
    from segcore.preprocessing import get_preprocessing_params

    spec = get_encoder_spec(name)
    assert spec.weights, f"{name}: the spec has no weights"
    for tag, source in spec.weights.items():
        what = f"{name}, weights {tag!r}"
        repository = (repositories or {}).get(tag, f"{name}.{tag.replace('+', '-')}")
        commit = (revisions or {}).get(tag, "[0-9a-f]{40}")
        pattern = (f"https://huggingface.co/smp-hub/{re.escape(repository)}/resolve/{commit}"
                   "/model.safetensors")
        assert source.url is not None and re.fullmatch(pattern, source.url), (
            f"{what}: the URL {source.url!r} does not match {pattern!r}"
        )
        assert source.filename == f"{name}.{tag}.safetensors", (
            f"{what}: the cache file name is {source.filename!r}"
        )
        assert source.sha256 is None, f"{what}: a pinned hub file needs no sha256"
        assert not source.delegate, f"{what}: a hub file is downloaded by segcore, not delegated"
        expected = dict(preprocessing(tag) if callable(preprocessing) else preprocessing)
        for origin, values in (("the source", source.preprocessing.as_dict()),
                               ("get_preprocessing_params",
                                get_preprocessing_params(name, pretrained=tag))):
            assert values.keys() == expected.keys() and all(
                _close(values[key], value) for key, value in expected.items()
            ), f"{what}: {origin} gives the preprocessing {values}, expected {expected}"


def check_revisions_are_distinct(names: Iterable[str]) -> list[str]:
    """Each weight source of the encoders ``names`` is pinned at its own hub commit (a
    repository's commit, not one copied from another). Returns the commits, one per source.

    Example: ``assert len(testing.check_revisions_are_distinct(["vgg11", "vgg13"])) == 2``.
    """
    from segcore.factory import get_encoder_spec

    commits: dict[str, str] = {}
    for name in names:
        for tag, source in get_encoder_spec(name).weights.items():
            assert source.url is not None and "/resolve/" in source.url, (
                f"{name}, weights {tag!r}: {source.url!r} is not a pinned hub file"
            )
            commit = source.url.split("/resolve/")[1].split("/")[0]
            other = commits.setdefault(commit, f"{name}, weights {tag!r}")
            assert other == f"{name}, weights {tag!r}", (
                f"{name}, weights {tag!r}: the commit {commit} is also that of {other}"
            )
    return list(commits)


def meta_encoder(name: str, **overrides: Any) -> nn.Module:
    """The module of encoder ``name`` built by its spec's factory on the meta device (depth 5,
    the spec's parameters, then ``overrides``): its structure without memory or initialisation.

    Example: ``sum(p.numel() for p in testing.meta_encoder("resnext101_32x48d").parameters())``.
    """
    from segcore.factory import get_encoder_spec
    from segcore.specs import load

    spec = get_encoder_spec(name)
    with torch.device("meta"):
        return load(spec.factory)(name=name, **{"depth": 5, **spec.params, **overrides})


def agrees_with_documented_size(millions: float, documented: float, *,
                                tolerance: float = 0.0) -> bool:
    """Whether a parameter count (in millions) is the documented figure: its truncation to whole
    millions (8.56M is "8M"), or within ``tolerance`` (a fraction: 0.02 is 2%) of it."""
    if abs(millions - documented) <= tolerance * documented:
        return True
    return documented >= 1 and float(documented).is_integer() and \
        math.floor(millions) == documented


def check_parameter_count(
    name: str,
    *,
    count: int | None = None,
    documented_millions: float | None = None,
    tolerance: float = 0.0,
    no_keys_starting_with: Sequence[str] = (),
) -> nn.Module:
    """``name`` built on the meta device (``meta_encoder``) has the size and outputs its spec and
    the documentation give.

    Checks: exactly ``count`` parameters (when given); a size that agrees with
    ``documented_millions`` (``agrees_with_documented_size`` with ``tolerance``); the spec's
    ``out_channels``; and no state-dict key starting with one of ``no_keys_starting_with`` (the
    classifier's). Returns the module.

    Example::

        testing.check_parameter_count("vgg16", documented_millions=14,
                                      no_keys_starting_with=("classifier.",))
    """
    from segcore.factory import get_encoder_spec

    encoder = meta_encoder(name)
    parameters = sum(p.numel() for p in encoder.parameters())
    if count is not None:
        assert parameters == count, f"{name}: {parameters} parameters, expected {count}"
    if documented_millions is not None:
        millions = parameters / 1e6
        assert agrees_with_documented_size(millions, documented_millions, tolerance=tolerance), (
            f"{name}: {millions:.3f}M parameters, documented {documented_millions}M"
        )
    spec_channels = get_encoder_spec(name).out_channels
    assert spec_channels is None or tuple(encoder.out_channels) == tuple(spec_channels), (
        f"{name}: out_channels {tuple(encoder.out_channels)}, the spec says {spec_channels}"
    )
    keys = [k for k in encoder.state_dict() if k.startswith(tuple(no_keys_starting_with))]
    assert not keys, f"{name}: unexpected keys {keys[:5]}"
    return encoder


def check_torchscript(module: nn.Module, x: torch.Tensor, *, rtol: float | None = None,
                      atol: float | None = None) -> None:
    """``torch.jit.script(module)`` gives the module's outputs on ``x`` (eval mode; torch's
    deprecation warning of TorchScript is silenced). Features lists are compared one by one.

    Example: ``testing.check_torchscript(segcore.get_encoder("resnet18", depth=4), x)``.
    """
    import warnings

    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.x
        scripted = torch.jit.script(module)
    with torch.no_grad():
        assert_same_outputs(scripted(x), module(x), what="torch.jit.script", rtol=rtol,
                            atol=atol)


def check_scripted_and_exported(module: nn.Module, x: torch.Tensor, *,
                                rtol: float | None = None, atol: float | None = None) -> None:
    """Both export paths of an encoder: ``check_torchscript`` and ``check_export`` on ``x``.

    Example: ``testing.check_scripted_and_exported(segcore.get_encoder("resnet18"), x)``.
    """
    check_torchscript(module, x, rtol=rtol, atol=atol)
    check_export(module, x, rtol=rtol, atol=atol)


#: the architectures (with the options each needs) an encoder plugin builds its encoder in with
#: ``check_encoder_in_architecture``: a U-Net, a pyramid and a dilated DeepLabV3+.
ENCODER_TEST_ARCHITECTURES: Sequence[tuple[str, Mapping[str, Any]]] = (
    ("unet", {}), ("fpn", {}), ("deeplabv3plus", {"encoder_output_stride": 16}),
)


def check_encoder_in_architecture(architecture: str, encoder: str, *, in_channels: int = 3,
                                  size: tuple[int, int] = (64, 64), classes: int = 2,
                                  **options: Any) -> nn.Module:
    """``segcore.build(architecture, encoder=encoder, encoder_weights=None, ...)`` with
    ``in_channels``, ``classes`` and ``options`` gives finite masks ``(1, classes, *size)`` on a
    ``(1, in_channels, *size)`` input (eval mode). Returns the model.

    Example: ``testing.check_encoder_in_architecture("fpn", "resnet18", in_channels=1)``.
    """
    from segcore.factory import build

    model = build(architecture, encoder=encoder, encoder_weights=None, in_channels=in_channels,
                  classes=classes, **options).eval()
    with torch.no_grad():
        mask = model(torch.randn(1, in_channels, *size))
    what = f"{architecture} with the encoder {encoder!r}"
    assert tuple(mask.shape) == (1, classes, *size), (
        f"{what}: masks of shape {tuple(mask.shape)}, expected {(1, classes, *size)}"
    )
    assert torch.isfinite(mask).all(), f"{what}: the masks are not finite"
    return model


def check_undilated_encoder_in_deeplabv3plus(encoder: str) -> nn.Module:
    """An encoder that cannot be dilated is refused by ``deeplabv3plus`` with its default
    ``encoder_output_stride`` (``EncoderCapabilityError``), and works at ``encoder_depth=4``
    (the deepest features at output stride 16, without dilation): masks ``(1, 2, 64, 64)``.
    Needs the ``segcore-deeplab`` plugin. Returns the depth-4 model.

    Example: ``testing.check_undilated_encoder_in_deeplabv3plus("vgg11")``.
    """
    from segcore.factory import build

    _expect_error(EncoderCapabilityError, "", lambda: build("deeplabv3plus", encoder=encoder,
                                                            encoder_weights=None),
                  f"deeplabv3plus with the undilatable encoder {encoder!r}")
    model = build("deeplabv3plus", encoder=encoder, encoder_weights=None, encoder_depth=4,
                  classes=2).eval()
    with torch.no_grad():
        mask = model(torch.randn(1, 3, 64, 64))
    assert tuple(mask.shape) == (1, 2, 64, 64), (
        f"deeplabv3plus with {encoder!r} at encoder_depth=4: mask shape {tuple(mask.shape)}"
    )
    return model


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
    mask shapes for each depth x classes x in_channels (no classification head without
    ``aux_params``); the aux head (``aux_params`` classes, pooling, dropout and activation
    applied; it reads the deepest encoder features); gradients reach every
    decoder parameter; ``from_config(model.config)``; ``save_pretrained``/``from_pretrained``
    give the same outputs; ``predict`` (eval mode, inference mode); ``freeze_encoder`` (no
    gradients, normalisation statistics kept) and ``unfreeze_encoder``; ``activation``
    ("sigmoid", "softmax", "logsoftmax", "tanh", a callable; "identity" and ``None`` give the
    logits); any input size (padding) and
    ``pad_inputs=False``.

    In detail, ``save_pretrained``/``from_pretrained`` (with and without the aux head) must give
    the same class, options, ``config.json`` equal to ``model.config`` and outputs; ``predict``
    leaves every module in eval mode and returns the aux labels too; after ``freeze_encoder``
    a ``train()`` keeps the encoder's normalisation layers in eval mode and the decoder and
    heads in training mode, a backward pass gives no encoder parameter a gradient and every
    trainable decoder parameter one, and the decoder's batch-norm statistics still move;
    ``unfreeze_encoder`` restores all of it. With the aux head every parameter outside the
    encoder (decoder, segmentation and classification heads) must receive a gradient.

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
            assert model.classification_head is None, (
                f"{name}: without aux_params there must be no classification_head"
            )
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
    _check_aux_runtime(name, model, batch, size)
    _check_aux_options(name, encoder, options, batch, size)

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

    x = torch.randn(batch, 3, size, size)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    with tempfile.TemporaryDirectory() as directory:
        check_save_load(model, x, directory)
    model.train()
    predicted = model.predict(x)
    assert not model.training, f"{name}: predict() must switch to eval mode"
    assert not any(m.training for m in model.modules()), (
        f"{name}: predict() left some modules in training mode"
    )
    assert predicted.is_inference(), f"{name}: predict() must run under inference_mode"
    torch.testing.assert_close(predicted, expected)

    model.freeze_encoder().train()
    assert all(not p.requires_grad for p in model.encoder.parameters()), (
        f"{name}: freeze_encoder left encoder parameters trainable"
    )
    encoder_norms = [m for m in model.encoder.modules() if _is_norm(m)]
    assert not any(m.training for m in encoder_norms), (
        f"{name}: after freeze_encoder, train() put encoder normalisation layers in training mode"
    )
    others = [(n, m) for n, m in model.named_modules() if n and not n.startswith("encoder")]
    assert all(m.training for _, m in others), (
        f"{name}: after freeze_encoder, train() left "
        f"{[n for n, m in others if not m.training]} in eval mode"
    )
    statistics = {k: v.clone() for k, v in model.encoder.state_dict().items() if "running" in k}
    decoder_norms = {n: m.running_mean.clone() for n, m in model.decoder.named_modules()
                     if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None}
    model.zero_grad(set_to_none=True)
    model(x * 3 + 1).mean().backward()
    for key, value in model.encoder.state_dict().items():
        if key in statistics:
            assert torch.equal(value, statistics[key]), (
                f"{name}: freeze_encoder must keep normalisation statistics ({key} changed)"
            )
    assert all(p.grad is None for p in model.encoder.parameters()), (
        f"{name}: a frozen encoder received gradients"
    )
    missing = [n for n, p in model.decoder.named_parameters()
               if p.requires_grad and p.grad is None]
    assert not missing, (
        f"{name}: with a frozen encoder, decoder parameters {missing} got no gradient"
    )
    unchanged = [n for n, m in model.decoder.named_modules()
                 if n in decoder_norms and torch.equal(m.running_mean, decoder_norms[n])]
    assert not unchanged, (
        f"{name}: with a frozen encoder the decoder's batch norms {unchanged} no longer learn"
    )
    model.zero_grad(set_to_none=True)
    model.unfreeze_encoder().train()
    assert all(p.requires_grad for p in model.encoder.parameters()), (
        f"{name}: unfreeze_encoder did not make the encoder trainable again"
    )
    assert all(m.training for m in encoder_norms), (
        f"{name}: after unfreeze_encoder, train() left encoder normalisation layers in eval mode"
    )


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._NormBase)


def _check_aux_runtime(name: str, model: Any, batch: int, size: int) -> None:
    """With the aux head: gradients reach every non-encoder parameter; predict and save/load."""
    import tempfile

    x = torch.randn(batch, 3, size, size)
    model.train()
    mask, labels = model(x)
    (mask.mean() + labels.mean()).backward()
    missing = [n for n, p in model.named_parameters()
               if not n.startswith("encoder.") and p.requires_grad and p.grad is None]
    assert not missing, f"{name} with aux_params: parameters {missing} received no gradient"
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    model.train()
    predicted = model.predict(x)
    assert isinstance(predicted, tuple) and len(predicted) == 2, (
        f"{name}: predict() with aux_params must return (mask, labels)"
    )
    assert all(p.is_inference() for p in predicted), f"{name}: predict() must use inference_mode"
    assert_same_outputs(predicted, expected, what=f"{name}: predict() with aux_params")
    with tempfile.TemporaryDirectory() as directory:
        check_save_load(model, x, directory)


def _check_aux_options(name: str, encoder: str, options: Mapping[str, Any], batch: int,
                       size: int) -> None:
    """``aux_params`` reach the head (pooling, dropout, activation); it reads the deepest
    encoder features."""
    from segcore.factory import build

    model = build(name, encoder=encoder, classes=3, **options,
                  aux_params={"classes": 4, "pooling": "max", "dropout": 0.1,
                              "activation": "softmax"}).eval()
    layers = list(model.classification_head.modules())
    assert any(isinstance(m, nn.AdaptiveMaxPool2d) for m in layers), (
        f"{name}: aux_params pooling='max' not applied"
    )
    assert any(isinstance(m, nn.Dropout) and m.p == 0.1 for m in layers), (
        f"{name}: aux_params dropout=0.1 not applied"
    )
    linear = [m for m in layers if isinstance(m, nn.Linear)]
    deepest = tuple(model.encoder.out_channels)[-1]
    assert linear and linear[0].in_features == deepest, (
        f"{name}: the aux head must read the deepest encoder features ({deepest} channels)"
    )
    with torch.no_grad():
        mask, labels = model(torch.randn(batch, 3, size, size))
    assert tuple(mask.shape) == (batch, 3, size, size), f"mask shape {tuple(mask.shape)}"
    assert tuple(labels.shape) == (batch, 4), f"labels shape {tuple(labels.shape)}"
    torch.testing.assert_close(labels.sum(1), torch.ones(batch),
                               msg=lambda m: f"{name}: aux activation 'softmax': {m}")


def _check_activations(name: str, encoder: str, options: Mapping[str, Any], batch: int,
                       size: int) -> None:
    """``activation`` is applied to the mask (which differs from the logits); "identity" and
    ``None`` give the logits."""
    from segcore.factory import build

    x = torch.randn(batch, 3, size, size)
    checks: list[tuple[Any, Callable[[torch.Tensor], bool]]] = [
        ("sigmoid", lambda m: bool(((m >= 0) & (m <= 1)).all())),
        ("softmax", lambda m: torch.allclose(m.sum(1), torch.ones_like(m[:, 0]), atol=1e-5)),
        ("logsoftmax", lambda m: torch.allclose(m.exp().sum(1), torch.ones_like(m[:, 0]),
                                                atol=1e-5)),
        ("tanh", lambda m: bool(((m >= -1) & (m <= 1)).all())),
        (nn.ReLU, lambda m: bool((m >= 0).all())),
    ]
    torch.manual_seed(0)
    logits_model = build(name, encoder=encoder, classes=3, **options).eval()
    with torch.no_grad():
        logits = logits_model(x)
        assert bool((logits < 0).any()), f"{name}: activation=None should give raw logits"
        for activation, check in checks:
            model = build(name, encoder=encoder, classes=3, activation=activation, **options)
            model.load_state_dict(logits_model.state_dict())
            mask = model.eval()(x)
            assert check(mask), f"{name}: activation={activation!r} not applied to the mask"
            assert not torch.allclose(mask, logits), (
                f"{name}: activation={activation!r} left the logits unchanged"
            )
        identity = build(name, encoder=encoder, classes=3, activation="identity", **options)
        identity.load_state_dict(logits_model.state_dict())
        torch.testing.assert_close(identity.eval()(x), logits,
                                   msg=lambda m: f"{name}: activation='identity' changed the "
                                   f"logits: {m}")


# -- helpers for an architecture plugin's own tests -------------------------------------------
def assert_same_outputs(actual: Any, expected: Any, *, what: str = "outputs",
                        rtol: float | None = None, atol: float | None = None) -> None:
    """Compare two model outputs: a mask, or a ``(mask, labels)`` pair, element by element."""
    actual = actual if isinstance(actual, tuple | list) else (actual,)
    expected = expected if isinstance(expected, tuple | list) else (expected,)
    assert len(actual) == len(expected), (
        f"{what}: {len(actual)} outputs, expected {len(expected)}"
    )
    for index, (a, e) in enumerate(zip(actual, expected)):
        torch.testing.assert_close(a, e, rtol=rtol, atol=atol,
                                   msg=lambda m, index=index: f"{what}, output {index}: {m}")


def check_save_load(model: nn.Module, x: torch.Tensor, directory: Any, *,
                    config: Mapping[str, Any] | None = None) -> Any:
    """``save_pretrained`` to ``directory`` and ``segcore.from_pretrained`` back.

    Checks that ``config.json`` holds ``model.config`` (and each entry of ``config``, such as
    ``{"_architecture": "unet"}``, when given), that the loaded model has the same class,
    options and state-dict keys and gives the same outputs on ``x`` (both in eval mode);
    returns the loaded model for further checks.
    """
    import json
    from pathlib import Path

    from segcore.model import from_pretrained

    model.eval()
    with torch.no_grad():
        expected = model(x)
    model.save_pretrained(directory)
    saved = json.loads((Path(directory) / "config.json").read_text())
    assert saved == model.saved_config(), (
        f"config.json {saved} differs from model.saved_config() {model.saved_config()}"
    )
    assert saved["_model_class"] == type(model).__name__, (
        "config.json must name the model class in '_model_class' (SMP's from_pretrained reads it)"
    )
    differing = {key: saved.get(key) for key, value in (config or {}).items()
                 if saved.get(key) != value}
    assert not differing, f"config.json has {differing}, expected {dict(config or {})}"
    loaded = from_pretrained(directory).eval()
    assert type(loaded) is type(model), (
        f"from_pretrained built a {type(loaded).__name__}, expected {type(model).__name__}"
    )
    assert loaded.options == model.options, (
        f"from_pretrained options {loaded.options} differ from {model.options}"
    )
    assert loaded.state_dict().keys() == model.state_dict().keys(), (
        "from_pretrained built a model with other parameters and buffers"
    )
    with torch.no_grad():
        assert_same_outputs(loaded(x), expected,
                            what=f"{type(model).__name__} after save_pretrained/from_pretrained")
    return loaded


def check_compile(model: nn.Module, x: torch.Tensor, *, backend: str = "eager") -> None:
    """``torch.compile(model, fullgraph=True)`` gives the model's outputs on ``x`` (eval mode).

    ``backend="eager"`` checks graph capture without compiling kernels.
    """
    model.eval()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    with torch.no_grad():
        assert_same_outputs(compiled(x), model(x), what="torch.compile(fullgraph=True)")


def check_export(model: nn.Module, x: torch.Tensor, *, rtol: float | None = None,
                 atol: float | None = None) -> None:
    """``torch.export.export(model, (x,))`` gives the model's outputs on ``x`` (eval mode)."""
    model.eval()
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert_same_outputs(exported.module()(x), model(x), what="torch.export", rtol=rtol,
                            atol=atol)


def check_channels_last(model: nn.Module, x: torch.Tensor, *, rtol: float = 1e-4,
                        atol: float = 1e-5) -> None:
    """The model in ``channels_last`` memory format gives the same outputs (eval mode)."""
    model.eval()
    with torch.no_grad():
        expected = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        actual = model_cl(x.contiguous(memory_format=torch.channels_last))
    assert_same_outputs(actual, expected, what="channels_last", rtol=rtol, atol=atol)


def check_stored_options(model: nn.Module, architecture: str, options_class: type,
                         config: Mapping[str, Any], *, every_option: bool = False) -> None:
    """``model.options`` is an ``options_class``, and ``model.config`` names ``architecture``
    and has each entry of ``config`` (of the same type: ``True`` is not ``1``); with
    ``every_option``, ``config`` must give every field of ``options_class``.

    Example::

        testing.check_stored_options(model, "fpn", FPNOptions, {"upsampling": 2, ...},
                                     every_option=True)
    """
    assert isinstance(model.options, options_class), (
        f"model.options is a {type(model.options).__name__}, expected {options_class.__name__}"
    )
    stored = model.config
    assert stored["architecture"] == architecture, (
        f"config names the architecture {stored['architecture']!r}, expected {architecture!r}"
    )
    differing = {key: stored.get(key) for key, value in config.items()
                 if type(stored.get(key)) is not type(value) or stored.get(key) != value}
    assert not differing, f"config stores {differing}, expected {dict(config)}"
    if every_option:
        unchecked = sorted(set(options_class.names()) - set(config))
        assert not unchecked, f"every_option: the options {unchecked} are not in config"


def check_sigmoid_outputs(model: nn.Module, in_channels: int, classes: int, *,
                          size: tuple[int, int] = (32, 32),
                          mask_size: tuple[int, int] | None = None,
                          aux_classes: int | None = None) -> None:
    """A model built with ``activation="sigmoid"`` (often from positional arguments) gives, on a
    ``(1, in_channels, *size)`` input in eval mode, a mask ``(1, classes, *mask_size)`` (default
    ``size``) with values in [0, 1] and, with ``aux_classes``, labels ``(1, aux_classes)``.

    Example: ``testing.check_sigmoid_outputs(Unet(TINY, 4, None, ..., 2, 3, "sigmoid"), 2, 3)``.
    """
    with torch.no_grad():
        outputs = model.eval()(torch.randn(1, in_channels, *size))
    mask, labels = outputs if aux_classes is not None else (outputs, None)
    expected = (1, classes, *(mask_size or size))
    assert tuple(mask.shape) == expected, f"mask shape {tuple(mask.shape)}, expected {expected}"
    assert bool(((mask >= 0) & (mask <= 1)).all()), "the mask is not in [0, 1]: no sigmoid"
    if labels is not None:
        assert tuple(labels.shape) == (1, aux_classes), (
            f"labels shape {tuple(labels.shape)}, expected {(1, aux_classes)}"
        )


def _decoder_convolutions(model: nn.Module) -> list[nn.Module]:
    """Every ``Conv2d`` of ``model.decoder``."""
    return [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)]


def check_decoder_batchnorm(model: nn.Module, norms: Iterable[nn.Module],
                            unbiased_convs: Iterable[nn.Module] | None = None) -> None:
    """A model built with the default (batch) normalisation: each of ``norms`` is a
    ``BatchNorm2d``, each convolution of ``unbiased_convs`` (those a norm follows; default:
    every ``Conv2d`` of the decoder) has no bias, and ``model.config`` stores
    ``decoder_use_norm=True``."""
    if unbiased_convs is None:
        unbiased_convs = _decoder_convolutions(model)
    norms, unbiased_convs = list(norms), list(unbiased_convs)
    assert norms and unbiased_convs, "no norms or convolutions given to check"
    wrong = sorted({type(n).__name__ for n in norms if not isinstance(n, nn.BatchNorm2d)})
    assert not wrong, f"expected BatchNorm2d at every norm, found {wrong}"
    biased = [conv for conv in unbiased_convs if conv.bias is not None]
    assert not biased, f"{len(biased)} convolutions before a batch norm have a bias"
    assert model.config["decoder_use_norm"] is True, (
        f"config stores decoder_use_norm={model.config['decoder_use_norm']!r}, expected True"
    )


def check_decoder_without_batchnorm(model: nn.Module,
                                    biased_convs: Iterable[nn.Module] | None = None) -> None:
    """A model built without normalisation (``decoder_use_batchnorm=False``): its decoder has
    no ``BatchNorm2d``, each convolution of ``biased_convs`` (default: every ``Conv2d`` of the
    decoder) has a bias instead, and ``model.options`` and ``model.config`` store
    ``decoder_use_norm=False``."""
    if biased_convs is None:
        biased_convs = _decoder_convolutions(model)
    batchnorms = [n for n, m in model.decoder.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert not batchnorms, f"the decoder still has batch norms {batchnorms[:5]}"
    biased_convs = list(biased_convs)
    assert biased_convs, "no convolutions given to check"
    unbiased = [conv for conv in biased_convs if conv.bias is None]
    assert not unbiased, f"{len(unbiased)} convolutions without a norm have no bias"
    stored = (model.options.decoder_use_norm, model.config["decoder_use_norm"])
    assert stored == (False, False), f"options and config store decoder_use_norm={stored}"


def check_unused_parameters_frozen(model: nn.Module, unused: nn.Module, x: torch.Tensor) -> None:
    """After a training step on ``x``, the parameters of ``unused`` (kept for SMP's state-dict
    layout, never applied) are frozen and have no gradient, and every trainable decoder
    parameter has one."""
    model.train()
    outputs = model(x)
    (outputs[0] if isinstance(outputs, tuple) else outputs).mean().backward()
    assert list(unused.parameters()), "the unused module has no parameters to check"
    active = [p for p in unused.parameters() if p.requires_grad or p.grad is not None]
    assert not active, f"{len(active)} parameters of the unused module are trainable"
    trainable = [p for p in model.decoder.parameters() if p.requires_grad]
    assert trainable, "the decoder has no trainable parameter"
    missing = [n for n, p in model.decoder.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"decoder parameters {missing[:5]} received no gradient"


def check_encoder_kwargs(name: str, **options: Any) -> nn.Module:
    """Extra keyword arguments of the documented class reach an encoder that takes them.

    Builds ``name``'s class with an encoder that accepts keyword arguments (the tiny encoder's
    layers) and ``drop_path_rate=0.1``; checks the factory received exactly that and that
    ``model.config["encoder_params"]`` stores it. Returns the model.
    """
    from segcore.factory import get_architecture_class

    received: dict[str, Any] = {}

    def factory(name: str, depth: int, **kwargs: Any) -> TinyEncoder:
        received.update(kwargs)
        return TinyEncoder(depth=depth)

    spec = EncoderSpec(name="segcore-testing-kwargs", family="Testing", factory=factory,
                       out_channels=_TINY_CHANNELS, accepts_kwargs=True, supports_dilation=True)
    model_class = get_architecture_class(name)
    with specs_installed(encoders=[spec]):
        model = model_class("segcore-testing-kwargs", encoder_weights=None, drop_path_rate=0.1,
                            **options)
    assert received == {"drop_path_rate": 0.1}, (
        f"{name}: the encoder factory received {received}, expected {{'drop_path_rate': 0.1}}"
    )
    assert model.config["encoder_params"] == {"drop_path_rate": 0.1}, (
        f"{name}: config['encoder_params'] is {model.config.get('encoder_params')!r}"
    )
    return model


def check_unknown_options(name: str, typo: str, suggestion: str,
                          encoder: str = TINY_ENCODER, **options: Any) -> None:
    """Unknown keyword arguments are refused with errors that teach.

    Through ``segcore.build`` and through the documented class, the misspelt option ``typo``
    raises ``UnknownOptionError`` (a ``TypeError``, as Python's own) naming it and the
    architecture, and asking "Did you mean ``suggestion``?"; an unknown non-decoder option
    (``colour_mode``) is refused, by the architecture or by ``encoder``, with an error that
    names it.
    """
    from segcore.errors import UnknownOptionError
    from segcore.factory import build, get_architecture_class

    model_class = get_architecture_class(name)
    attempts: list[tuple[str, Callable[[], Any]]] = [
        ("segcore.build", lambda: build(name, encoder=encoder, **options, **{typo: None})),
        (model_class.__name__,
         lambda: model_class(encoder, encoder_weights=None, **options, **{typo: None})),
    ]
    for via, attempt in attempts:
        try:
            attempt()
        except UnknownOptionError as error:
            assert isinstance(error, TypeError), "UnknownOptionError must be a TypeError"
            message = str(error)
            _, _, hint = message.partition("Did you mean")
            assert repr(typo) in message and repr(suggestion) in hint and name in message, (
                f"{name} via {via}: the error for {typo!r} should name it, the architecture "
                f"and suggest {suggestion!r}: {message}"
            )
        else:
            raise AssertionError(f"{name} via {via} accepted the unknown option {typo!r}")
    try:
        model_class(encoder, encoder_weights=None, colour_mode="rgb", **options)
    except UnknownOptionError as error:
        assert "'colour_mode'" in str(error), f"{name}: the error should name 'colour_mode'"
    else:
        raise AssertionError(f"{name}: {encoder!r} accepted the unknown option 'colour_mode'")


def check_default_weights(name: str, encoder: str = TINY_ENCODER, **options: Any) -> None:
    """``segcore.build`` defaults to ``encoder_weights=None``; the documented class keeps
    ``"imagenet"``, so with ``encoder`` (which has no such weights) it raises ``WeightsError``."""
    import inspect

    from segcore.errors import WeightsError
    from segcore.factory import build, get_architecture_class

    default = inspect.signature(build).parameters["encoder_weights"].default
    assert default is None, f"segcore.build must default to encoder_weights=None, not {default!r}"
    model_class = get_architecture_class(name)
    model = build(name, encoder=encoder, **options)
    assert isinstance(model, model_class), f"build({name!r}) gave a {type(model).__name__}"
    try:
        model_class(encoder, **options)
    except WeightsError:
        pass
    else:
        raise AssertionError(
            f"{model_class.__name__}({encoder!r}) should default to encoder_weights='imagenet' "
            f"(and fail: the encoder has no such weights)"
        )


def check_decoder_norm_option(
    name: str,
    norms: Callable[[nn.Module], Sequence[nn.Module]],
    *,
    batchnorm_option: str | None = "decoder_use_batchnorm",
    encoder: str = TINY_ENCODER,
    size: int = 64,
    **options: Any,
) -> None:
    """``decoder_use_norm`` puts the layer it names at every place ``norms(model)`` lists.

    Each value (``True``/``"batchnorm"``: ``BatchNorm2d``, ``False``/``"identity"``:
    ``Identity``, ``"layernorm"``: ``segcore.nn.LayerNorm2d``, ``"instancenorm"``:
    ``InstanceNorm2d``) gives exactly that layer type, is stored in ``model.config`` and the
    model runs; a dict passes its keywords to the layer (``eps``, ``momentum``); and
    ``decoder_use_norm`` wins over the older ``batchnorm_option`` when both are given
    (``batchnorm_option=None`` skips that).
    """
    from segcore.factory import build
    from segcore.nn import LayerNorm2d

    def layers(**extra: Any) -> tuple[nn.Module, list[nn.Module]]:
        model = build(name, encoder=encoder, **options, **extra)
        found = list(norms(model))
        assert found, f"{name}: norms(model) found no normalisation layer to check"
        return model, found

    values: list[tuple[Any, type[nn.Module]]] = [
        (True, nn.BatchNorm2d), (False, nn.Identity), ("batchnorm", nn.BatchNorm2d),
        ("identity", nn.Identity), ("layernorm", LayerNorm2d),
        ("instancenorm", nn.InstanceNorm2d),
    ]
    for value, layer_type in values:
        model, found = layers(decoder_use_norm=value)
        wrong = sorted({type(n).__name__ for n in found if type(n) is not layer_type})
        assert not wrong, (
            f"{name}: decoder_use_norm={value!r} should give {layer_type.__name__}, found {wrong}"
        )
        assert model.config["decoder_use_norm"] == value, (
            f"{name}: config stores decoder_use_norm={model.config['decoder_use_norm']!r}, "
            f"given {value!r}"
        )
        with torch.no_grad():
            mask = model.eval()(torch.randn(2, 3, size, size))
        assert tuple(mask.shape) == (2, 1, size, size), f"{name}: mask shape {tuple(mask.shape)}"

    _, found = layers(decoder_use_norm={"type": "layernorm", "eps": 1e-2})
    assert all(isinstance(n, LayerNorm2d) and n.eps == 1e-2 for n in found), (
        f"{name}: decoder_use_norm={{'type': 'layernorm', 'eps': 0.01}} not applied"
    )
    _, found = layers(decoder_use_norm={"type": "batchnorm", "momentum": 0.5})
    assert all(isinstance(n, nn.BatchNorm2d) and n.momentum == 0.5 for n in found), (
        f"{name}: decoder_use_norm={{'type': 'batchnorm', 'momentum': 0.5}} not applied"
    )
    if batchnorm_option is not None:
        _, found = layers(decoder_use_norm="batchnorm", **{batchnorm_option: False})
        assert all(isinstance(n, nn.BatchNorm2d) for n in found), (
            f"{name}: decoder_use_norm='batchnorm' must win over {batchnorm_option}=False"
        )
        _, found = layers(decoder_use_norm=False, **{batchnorm_option: True})
        assert all(isinstance(n, nn.Identity) for n in found), (
            f"{name}: decoder_use_norm=False must win over {batchnorm_option}=True"
        )


def _expect_error(error_type: type[BaseException], pattern: str, attempt: Callable[[], Any],
                  what: str) -> None:
    import re

    try:
        attempt()
    except error_type as error:
        assert re.search(pattern, str(error), re.DOTALL), (
            f"{what}: the {error_type.__name__} should match {pattern!r}: {error}"
        )
    else:
        raise AssertionError(f"{what}: no {error_type.__name__} raised")


def check_decoder_norm_errors(
    name: str,
    *,
    batchnorm_option: str | None = "decoder_use_batchnorm",
    encoder: str = TINY_ENCODER,
    **options: Any,
) -> None:
    """Bad ``decoder_use_norm`` values are refused with errors that teach.

    Unknown norms (``"groupnorm"``, ``3``, a dict with a wrong or no ``type``) raise
    ``InvalidOptionError`` naming the option and the valid values; a dict keyword the layer
    does not take is named; ``batchnorm_option`` (``None`` skips it) must be True, False or
    ``"inplace"``; and ``"inplace"`` without the ``inplace_abn`` package raises
    ``MissingDependencyError`` with the ``pip install`` line, from the documented class,
    before the encoder's (missing) ``"imagenet"`` weights are looked at.
    """
    import sys

    from segcore.errors import InvalidOptionError, MissingDependencyError
    from segcore.factory import build, get_architecture_class

    def attempt(**extra: Any) -> Callable[[], Any]:
        return lambda: build(name, encoder=encoder, **options, **extra)

    for value in ("groupnorm", 3, {"type": "batchnorm2d"}, {"eps": 1e-3}):
        _expect_error(InvalidOptionError, r"decoder_use_norm.*batchnorm",
                      attempt(decoder_use_norm=value), f"{name} decoder_use_norm={value!r}")
    _expect_error(InvalidOptionError, r"decoder_use_norm.*momentun",
                  attempt(decoder_use_norm={"type": "batchnorm", "momentun": 0.5}),
                  f"{name} decoder_use_norm with a keyword BatchNorm2d does not take")
    inplace: list[dict[str, Any]] = [{"decoder_use_norm": "inplace"}]
    if batchnorm_option is not None:
        for value in ("yes", None, 2.5):
            _expect_error(InvalidOptionError, rf"{batchnorm_option} must be True, False or",
                          attempt(**{batchnorm_option: value}),
                          f"{name} {batchnorm_option}={value!r}")
        inplace.append({batchnorm_option: "inplace"})
    model_class = get_architecture_class(name)
    saved = sys.modules.get("inplace_abn", _MISSING)
    sys.modules["inplace_abn"] = None  # type: ignore[assignment]  # the import fails
    try:
        for extra in inplace:
            _expect_error(MissingDependencyError, "pip install inplace-abn",
                          lambda extra=extra: model_class(encoder, **options, **extra),
                          f"{name} {extra} without inplace_abn")
    finally:
        if saved is _MISSING:
            del sys.modules["inplace_abn"]
        else:
            sys.modules["inplace_abn"] = saved


_MISSING = object()


def check_decoder_channels_errors(name: str, encoder: str = TINY_ENCODER,
                                  **options: Any) -> None:
    """A ``decoder_channels`` with one value per encoder stage is checked with errors that
    teach: the wrong length names the values to use (and the depth that would fit), the
    class's default does not fit a shallower ``encoder_depth``, and every entry must be a
    positive int."""
    from segcore.errors import InvalidOptionError
    from segcore.factory import get_architecture_class

    model_class = get_architecture_class(name)
    _expect_error(
        InvalidOptionError,
        r"^decoder_channels has 4 values but encoder_depth=5 needs 5\b.*"
        r"use \(256, 128, 64, 32, 16\).*encoder_depth=4",
        lambda: model_class(encoder, encoder_weights=None,
                            decoder_channels=(256, 128, 64, 32), **options),
        f"{name} with 4 decoder_channels at encoder_depth=5",
    )
    _expect_error(InvalidOptionError, r"encoder_depth=3 needs 3\b.*use \(256, 128, 64\)",
                  lambda: model_class(encoder, encoder_weights=None, encoder_depth=3, **options),
                  f"{name} with the default decoder_channels at encoder_depth=3")
    for value in ((0, 8, 8, 8, 8), (16.0, 8, 8, 8, 8), "abc", 16, None):
        _expect_error(InvalidOptionError, "decoder_channels",
                      lambda value=value: model_class(encoder, encoder_weights=None,
                                                      decoder_channels=value, **options),
                      f"{name} decoder_channels={value!r}")


def check_decoder_channel_dropout(model: nn.Module, dropout: float, x: torch.Tensor) -> None:
    """The decoder's output dropout (``Dropout2d`` at rate ``dropout``) zeroes whole channels
    in training mode only and scales the kept ones by ``1 / (1 - dropout)``; the decoder must
    have no batch statistics that training mode would change."""
    with torch.no_grad():
        features = model.encoder.eval()(x)
        torch.manual_seed(0)
        trained = model.decoder.train()(features)
        evaluated = model.decoder.eval()(features)
    if dropout == 0:
        torch.testing.assert_close(trained, evaluated)
        return
    dropped = trained.abs().sum(dim=(2, 3)) == 0  # (N, C): channels zeroed as a whole
    assert dropped.any() and not dropped.all(), (
        f"dropout={dropout}: expected some, not all, channels zeroed as a whole"
    )
    kept = ~dropped
    torch.testing.assert_close(trained[kept], evaluated[kept] / (1 - dropout))


def check_head_upsampling(model: nn.Module, upsampling: int, x: torch.Tensor, *,
                          decoder_reduction: int = 4) -> None:
    """A model built with ``upsampling``: the segmentation head ends with a bilinear
    ``Upsample`` (align_corners) by that factor (``Identity`` for 1), the mask has the
    decoder's size (``1 / decoder_reduction`` of ``x``'s) times ``upsampling``, and
    ``model.config`` stores it."""
    head_upsample = model.segmentation_head[1]
    if upsampling == 1:
        assert isinstance(head_upsample, nn.Identity), f"upsampling=1: {head_upsample}"
    else:
        assert isinstance(head_upsample, nn.Upsample), f"upsampling={upsampling}: {head_upsample}"
        assert head_upsample.scale_factor == upsampling, head_upsample
        assert head_upsample.mode == "bilinear" and head_upsample.align_corners, head_upsample
    with torch.no_grad():
        mask = model.eval()(x)
    expected = tuple(side // decoder_reduction * upsampling for side in x.shape[2:])
    assert tuple(mask.shape[2:]) == expected, (
        f"upsampling={upsampling}: mask size {tuple(mask.shape[2:])}, expected {expected}"
    )
    assert model.config["upsampling"] == upsampling


def randomise_weights(module: nn.Module, *, seed: int = 1, scale: float = 0.3) -> nn.Module:
    """Give ``module`` trained-looking values, so that comparisons with a reference mean
    something: every floating-point tensor of its state dict becomes ``N(0, scale²)`` noise,
    running variances ``U(0.5, 1.5)``. Seeds the global generator with ``seed``; returns
    ``module``."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                if name.endswith("running_var"):
                    tensor.copy_(torch.rand_like(tensor) + 0.5)
                else:
                    tensor.copy_(torch.randn_like(tensor) * scale)
    return module


def reference_conv_norm_relu(x: torch.Tensor, layer: Sequence[nn.Module]) -> torch.Tensor:
    """A hand-written conv -> norm -> ReLU, to check a ``(Conv2d, norm, ...)`` layer against:
    the convolution with the layer's padding, batch norm in eval mode by its formula (any
    other norm must be an ``Identity``), then ``max(x, 0)``."""
    import torch.nn.functional as F

    conv, norm = layer[0], layer[1]
    assert isinstance(conv, nn.Conv2d), f"expected a Conv2d first, got {type(conv).__name__}"
    x = F.conv2d(x, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding,
                 dilation=conv.dilation, groups=conv.groups)
    if isinstance(norm, nn.BatchNorm2d):
        x = (x - norm.running_mean[None, :, None, None]) / torch.sqrt(
            norm.running_var[None, :, None, None] + norm.eps
        ) * norm.weight[None, :, None, None] + norm.bias[None, :, None, None]
    else:
        assert isinstance(norm, nn.Identity), f"no reference for {type(norm).__name__}"
    return torch.clamp(x, min=0)


def check_option_changes_output(name: str, option: str, first: Any, second: Any, *,
                                encoder: str = TINY_ENCODER, size: int = 64,
                                **options: Any) -> None:
    """Two models that differ only in ``option`` (``first`` / ``second``) and share their
    weights give different masks: the option takes effect at run time, not just in the tree."""
    from segcore.factory import build

    torch.manual_seed(0)
    model_a = build(name, encoder=encoder, **options, **{option: first}).eval()
    model_b = build(name, encoder=encoder, **options, **{option: second}).eval()
    model_b.load_state_dict(model_a.state_dict())
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert not torch.allclose(model_a(x), model_b(x)), (
            f"{name}: {option}={first!r} and {option}={second!r} give the same output"
        )


def check_lazy_discovery(name: str, package: str) -> None:
    """Listing architectures (in a fresh interpreter) imports only ``package`` and its plugin
    module: no model code, no torch-heavy module of the plugin."""
    import subprocess
    import sys

    code = (
        "import sys, segcore\n"
        f"assert {name!r} in segcore.list_architectures()\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({package!r}))\n"
        f"assert loaded == [{package!r}, {package + '.plugin'!r}], loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


#: the defaults SMP's architecture classes share (``check_documented_signature`` adds them)
COMMON_ARCHITECTURE_DEFAULTS: Mapping[str, Any] = {
    "encoder_name": "resnet34", "encoder_weights": "imagenet", "in_channels": 3, "classes": 1,
    "activation": None, "aux_params": None,
}


class TinyTransformerLikeEncoder(TinyEncoder):
    """The tiny encoder with an empty (0-channel) level at reduction 2, the way
    transformer-style encoders (which start at reduction 4) report the missing level."""

    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        self._out_channels = (3, 0, *_TINY_CHANNELS[2:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = super().forward(x)
        if len(features) > 1:
            features[1] = features[1][:, :0]
        return features


def build_tiny_transformer_like_encoder(name: str, depth: int) -> TinyTransformerLikeEncoder:
    """The factory of ``tiny_encoder_spec(..., transformer_like=True)``."""
    return TinyTransformerLikeEncoder(depth=depth)


def tiny_encoder_spec(name: str, *, transformer_like: bool = False,
                      **fields: Any) -> EncoderSpec:
    """The spec of the tiny encoder under another ``name``, with other ``fields``
    (``deepest_feature_pooled=True`` as VGG, ``supports_dilation=False``); with
    ``transformer_like`` it has no features at reduction 2 (``TinyTransformerLikeEncoder``).
    Install it with ``specs_installed(encoders=[spec])``."""
    factory = ("segcore.testing:build_tiny_transformer_like_encoder" if transformer_like
               else "segcore.testing:build_tiny_encoder")
    out_channels = (3, 0, *_TINY_CHANNELS[2:]) if transformer_like else _TINY_CHANNELS
    return EncoderSpec(**{"name": name, "family": "Testing", "factory": factory,
                          "out_channels": out_channels, **fields})


def check_documented_signature(
    model_class: type,
    positional: Sequence[str],
    defaults: Mapping[str, Any],
    *,
    keyword_only: Sequence[str] = (),
    options_class: type[ArchitectureOptions] | None = None,
) -> None:
    """The documented class's signature is exactly ``positional`` (positional-or-keyword, in
    this order), then ``keyword_only`` (keyword-only, in this order), then ``**kwargs``.

    Every parameter but ``kwargs`` has the default that ``defaults`` gives it, or else
    ``COMMON_ARCHITECTURE_DEFAULTS`` (the same type and value, so ``True`` is not ``1``); the
    two name no other parameter. With ``options_class`` its fields default to the same values
    as the constructor's parameters of those names.
    """
    import inspect

    defaults = {**COMMON_ARCHITECTURE_DEFAULTS, **defaults}
    parameters = inspect.signature(model_class).parameters
    label = model_class.__name__
    expected = [*positional, *keyword_only, "kwargs"]
    assert list(parameters) == expected, (
        f"{label}: the parameters are {list(parameters)}, documented {expected}"
    )
    kinds = {
        **{name: inspect.Parameter.POSITIONAL_OR_KEYWORD for name in positional},
        **{name: inspect.Parameter.KEYWORD_ONLY for name in keyword_only},
        "kwargs": inspect.Parameter.VAR_KEYWORD,
    }
    wrong = [name for name, kind in kinds.items() if parameters[name].kind is not kind]
    assert not wrong, f"{label}: the parameters {wrong} are not of the documented kind"
    actual = {name: p.default for name, p in parameters.items() if name != "kwargs"}
    assert set(actual) == set(defaults), (
        f"{label}: the defaults to check name {sorted(defaults)}, the parameters are "
        f"{sorted(actual)}"
    )
    differ = {name: value for name, value in actual.items()
              if type(value) is not type(defaults[name]) or value != defaults[name]}
    assert not differ, (
        f"{label}: these defaults differ from the documented ones: {differ} "
        f"(documented {({name: defaults[name] for name in differ})})"
    )
    if options_class is not None:
        fields = options_class().as_dict()
        assert {name: actual[name] for name in fields} == fields, (
            f"{label}: {options_class.__name__} defaults {fields} differ from the constructor's"
        )


def check_encoder_depth_refused(name: str, depth: int, *, minimum: int = 3,
                                encoder: str = TINY_ENCODER, **options: Any) -> None:
    """The documented class refuses ``encoder_depth=depth`` (below ``minimum`` or above 5) with
    an ``InvalidOptionError`` that says it is too small (naming ``name``'s decoder and the
    ``minimum`` number of stages it needs) or too large."""
    from segcore.errors import InvalidOptionError
    from segcore.factory import get_architecture_class

    model_class = get_architecture_class(name)
    if depth < minimum:
        words = (f"encoder_depth={depth} is too small: the {name} decoder needs at least "
                 f"{minimum} encoder stages")
    else:
        assert depth > 5, f"encoder_depth={depth} is a valid depth, not one to refuse"
        words = f"encoder_depth={depth} is too large"
    try:
        model_class(encoder, encoder_weights=None, encoder_depth=depth, **options)
    except InvalidOptionError as error:
        assert words in str(error), f"{name}: the error should say {words!r}: {error}"
    else:
        raise AssertionError(f"{name} accepted encoder_depth={depth}")


def check_input_divisor(model: nn.Module, divisor: int, size: tuple[int, int]) -> None:
    """``model.input_divisor()`` is ``divisor``. An input of ``size`` (not a multiple of it)
    gives a mask of that size (padded and cropped back); with ``model.pad_inputs = False`` it is
    refused with an ``InputShapeError`` that names the divisor, the size, the nearest valid
    size and the size to pad to, while the padded size runs. The model's masks must have its
    input's size; ``pad_inputs`` is restored afterwards."""
    height, width = size
    assert height % divisor or width % divisor, f"{size} is a multiple of {divisor}"
    assert model.input_divisor() == divisor, (
        f"input_divisor() is {model.input_divisor()}, expected {divisor}"
    )

    def nearest(side: int) -> int:
        return max(divisor, round(side / divisor) * divisor)

    def up(side: int) -> int:
        return max(divisor, -(-side // divisor) * divisor)

    channels = model.encoder.in_channels
    model.eval()
    with torch.no_grad():
        mask = model(torch.randn(1, channels, height, width))
        assert tuple(mask.shape[2:]) == size, f"{size} gave a mask of {tuple(mask.shape[2:])}"
        padded = (up(height), up(width))
        saved = model.pad_inputs
        model.pad_inputs = False  # SMP's strict behaviour
        try:
            mask = model(torch.randn(1, channels, *padded))
            assert tuple(mask.shape[2:]) == padded, f"{padded}: mask {tuple(mask.shape[2:])}"
            _expect_error(
                InputShapeError,
                rf"divisible by {divisor}, got {height}x{width}\. The nearest valid size is "
                rf"{nearest(height)}x{nearest(width)}; pad the images to {padded[0]}x{padded[1]}",
                lambda: model(torch.randn(1, channels, height, width)),
                f"pad_inputs=False with a {height}x{width} input",
            )
        finally:
            model.pad_inputs = saved


def reference_scse(x: torch.Tensor, attention: nn.Module) -> torch.Tensor:
    """A hand-written ``segcore.nn.SCSEModule`` (``Identity`` returns ``x``), to check a
    decoder's attention against: ``x * channel_gate + x * spatial_gate``."""
    import torch.nn.functional as F

    if isinstance(attention, nn.Identity):
        return x
    pooled = x.mean(dim=(2, 3), keepdim=True)
    hidden = torch.clamp(F.conv2d(pooled, attention.cSE[1].weight, attention.cSE[1].bias),
                         min=0)
    channel_gate = torch.sigmoid(F.conv2d(hidden, attention.cSE[3].weight,
                                          attention.cSE[3].bias))
    spatial_gate = torch.sigmoid(F.conv2d(x, attention.sSE[0].weight, attention.sSE[0].bias))
    return x * channel_gate + x * spatial_gate


def _options_for_depth(options: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """Trim a ``decoder_channels`` sequence to the depth when it has one entry per stage."""
    result = dict(options)
    channels = result.get("decoder_channels")
    if isinstance(channels, list | tuple) and len(channels) == 5:
        result["decoder_channels"] = tuple(channels[:depth])
    return result


# -- helpers for an encoder plugin's weights tests ---------------------------------------------
def random_state_dict(
    source: nn.Module | Mapping[str, torch.Tensor],
    *,
    seed: int = 0,
    positive: Sequence[str] = ("running_var",),
) -> dict[str, torch.Tensor]:
    """A state dict with the keys, shapes and dtypes of ``source`` (a module or a state dict)
    and new values everywhere, so that a test can tell loaded weights from initial ones.

    Floating-point tensors are uniform in [-0.5, 0.5), or in [0.5, 1.5) when the key contains
    one of ``positive`` (variances must stay positive); integer tensors (counters such as
    ``num_batches_tracked``) are the source's plus 7; boolean ones are negated. The values
    come from a generator seeded with ``seed`` (the global one is left alone).

    Example: ``state = testing.random_state_dict(segcore.get_encoder("resnet18"))``.
    """
    state = source.state_dict() if isinstance(source, nn.Module) else source
    generator = torch.Generator().manual_seed(seed)
    result: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=generator, dtype=value.dtype) + 0.5
            result[key] = noise if any(part in key for part in positive) else noise - 1.0
        elif value.dtype == torch.bool:
            result[key] = ~value
        else:
            result[key] = value.clone() + 7
    return result


def assert_same_state(actual: nn.Module | Mapping[str, torch.Tensor],
                      expected: Mapping[str, torch.Tensor], *, what: str = "state dict") -> None:
    """``actual`` (a module's state dict, or a state dict) has exactly the keys of ``expected``
    and, for each, a tensor of the same shape, dtype and values (no tolerance).

    Example: ``testing.assert_same_state(segcore.get_encoder(name, weights=path), state)``.
    """
    state = actual.state_dict() if isinstance(actual, nn.Module) else actual
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    assert not missing and not unexpected, (
        f"{what}: the keys differ; missing {len(missing)} {missing[:5]}, unexpected "
        f"{len(unexpected)} {unexpected[:5]}"
    )
    for key, value in expected.items():
        found = state[key]
        assert found.shape == value.shape and found.dtype == value.dtype, (
            f"{what}: {key!r} is {found.dtype} {tuple(found.shape)}, expected {value.dtype} "
            f"{tuple(value.shape)}"
        )
        if not torch.equal(found, value):
            difference = (found.double() - value.double()).abs().max().item()
            raise AssertionError(
                f"{what}: {key!r} differs from the expected tensor (largest difference "
                f"{difference:g})"
            )


@attrs.define
class LoopbackServer:
    """A web server on 127.0.0.1 started by ``serve_files`` or ``serve_bytes``.

    Attributes:
        base_url: ``http://127.0.0.1:<port>``.
        url: the address of the first file served (of the payload of ``serve_bytes``).
        files: path -> bytes; answered to GET (and HEAD without the body), any other path with
            404. The test may change it while the server runs.
        headers: sent with every file (e.g. ``ETag``); may be changed too.
        calls: the requests received, ``(method, path)`` in order.
    """

    base_url: str
    url: str
    files: dict[str, bytes]
    headers: dict[str, str]
    calls: list[tuple[str, str]] = attrs.field(factory=list)

    @property
    def requests(self) -> list[str]:
        """The paths requested, in order (every method)."""
        return [path for _, path in self.calls]

    def url_of(self, path: str) -> str:
        """The address of ``path`` (which starts with ``/``) on this server."""
        return self.base_url + path


class _LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    loopback: LoopbackServer


class _LoopbackHandler(http.server.BaseHTTPRequestHandler):
    server: _LoopbackHTTPServer

    def _answer(self, body: bool) -> None:
        loopback = self.server.loopback
        loopback.calls.append((self.command, self.path))
        data = loopback.files.get(self.path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        for name, value in loopback.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a test's output is no place for an access log


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Set (a string) or remove (``None``) environment variables within the block; restore
    what was there before afterwards."""
    saved = {name: os.environ.get(name) for name in values}

    def apply(settings: Mapping[str, str | None]) -> None:
        for name, value in settings.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    try:
        apply(values)
        yield
    finally:
        apply(saved)


@contextlib.contextmanager
def serve_files(files: Mapping[str, bytes], *,
                headers: Mapping[str, str] | None = None) -> Iterator[LoopbackServer]:
    """Serve ``files`` (path -> bytes) over HTTP on 127.0.0.1 (a free port) within the block.

    The server runs in a daemon thread and is shut down, closed and joined at the end of the
    block. ``no_proxy``/``NO_PROXY`` name 127.0.0.1 and localhost meanwhile (a proxy from the
    environment would not reach the loopback address) and are restored afterwards.

    Example::

        with testing.serve_files({"/a.bin": b"a", "/b.bin": b"b"}) as server:
            urllib.request.urlopen(server.url_of("/b.bin")).read()  # b"b"
            assert server.requests == ["/b.bin"]
    """
    for path in files:
        assert path.startswith("/"), f"serve_files: the path {path!r} must start with '/'"
    httpd = _LoopbackHTTPServer(("127.0.0.1", 0), _LoopbackHandler)
    base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    first = next(iter(files), "/")
    server = LoopbackServer(base_url=base_url, url=base_url + first, files=dict(files),
                            headers=dict(headers or {}))
    httpd.loopback = server
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"segcore-testing-server-{base_url}", daemon=True)
    thread.start()
    try:
        with _environment(no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost"):
            yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve_bytes(payload: bytes, *, path: str = "/model.safetensors",
                headers: Mapping[str, str] | None = None
                ) -> contextlib.AbstractContextManager[LoopbackServer]:
    """Serve ``payload`` at ``path`` on 127.0.0.1 within the block (see ``serve_files``);
    ``server.url`` is its address and ``server.requests`` the paths requested.

    Example::

        with testing.serve_bytes(path.read_bytes()) as server:
            source = attrs.evolve(source, url=server.url, sha256=sha256_of(path))
            ...
        assert server.requests == ["/model.safetensors"]  # downloaded once
    """
    return serve_files({path: payload}, headers=headers)


def _first_conv_keys(keys: str | Sequence[str]) -> tuple[str, ...]:
    return (keys,) if isinstance(keys, str) else tuple(keys)


def _adapted_kernel(key: str, kernel: torch.Tensor, in_channels: int) -> tuple[torch.Tensor, str]:
    """The RGB kernel ``key`` of a first convolution adapted to ``in_channels``, and the rule
    in words."""
    assert kernel.dim() == 4 and kernel.shape[1] == 3, (
        f"{key!r} has shape {tuple(kernel.shape)}, not that of a convolution of an RGB input: "
        f"is it the first convolution?"
    )
    if in_channels == 3:
        return kernel, "unchanged"
    if in_channels == 1:
        return kernel.sum(1, keepdim=True), "the sum of the RGB kernels"
    cycle = [channel % 3 for channel in range(in_channels)]
    return kernel[:, cycle] * (3 / in_channels), (
        f"the RGB kernels cycled {cycle} and scaled by 3/{in_channels}"
    )


def _adapted_state(state: Mapping[str, torch.Tensor], keys: Sequence[str],
                   in_channels: int) -> dict[str, torch.Tensor]:
    """``state`` with its first-convolution kernels adapted to ``in_channels``."""
    missing = [key for key in keys if key not in state]
    assert not missing, f"the first-convolution keys {missing} are not in the expected state"
    assert keys or in_channels == 3, (
        f"in_channels={in_channels}: name the first convolution's kernel (first_conv_keys) so "
        f"that the expected state can be adapted"
    )
    return {**state, **{key: _adapted_kernel(key, state[key], in_channels)[0] for key in keys}}


def check_first_conv_adaptation(
    encoder_name: str,
    weights: Any,
    state: Mapping[str, torch.Tensor],
    first_conv_keys: str | Sequence[str],
    in_channels: int,
    *,
    out_channels: Sequence[int] | None = None,
    conv_reference: Mapping[str, Any] | None = None,
    size: int = 32,
    **encoder_kwargs: Any,
) -> nn.Module:
    """An encoder built with ``in_channels`` and ``weights`` (a file, or a tag) derives its
    first convolution from the RGB kernel of ``state`` (the expected state at 3 channels).

    Checks: each kernel of ``first_conv_keys`` is the sum of the RGB kernels for one channel
    and the kernels cycled (R, G, B, R, ...) and scaled by ``3 / in_channels`` for more; every
    other tensor is ``state``'s (exactly); ``out_channels[0]`` is ``in_channels``, and with
    ``out_channels`` (at 3 channels, depth 5) the rest is that; with ``conv_reference``
    (keyword arguments of ``F.conv2d``: ``{"stride": 2, "padding": 3}``) the adapted
    convolution computes ``F.conv2d`` with the expected kernel (and the state's bias); and a
    forward pass on ``size`` x ``size`` inputs follows the encoder contract. Returns the encoder.

    Example::

        testing.check_first_conv_adaptation("resnet18", path, state, "conv1.weight", 4,
                                            conv_reference={"stride": 2, "padding": 3})
    """
    import torch.nn.functional as F

    from segcore.factory import get_encoder

    keys = _first_conv_keys(first_conv_keys)
    assert keys, "check_first_conv_adaptation needs the key of the first convolution's kernel"
    what = f"{encoder_name} with in_channels={in_channels}"
    encoder = get_encoder(encoder_name, in_channels=in_channels, weights=weights,
                          **encoder_kwargs)
    actual = encoder.state_dict()
    expected_state = _adapted_state(state, keys, in_channels)
    for key in keys:
        expected, found = expected_state[key], actual.get(key)
        assert found is not None and found.shape == expected.shape, (
            f"{what}: {key!r} should have shape {tuple(expected.shape)}, got "
            f"{None if found is None else tuple(found.shape)}"
        )
        assert torch.equal(found, expected), (
            f"{what}: {key!r} should be {_adapted_kernel(key, state[key], in_channels)[1]} "
            f"(largest difference {(found - expected).abs().max().item():g})"
        )
    assert_same_state(actual, expected_state, what=what)
    channels = tuple(encoder.out_channels)
    assert channels[0] == in_channels, f"{what}: out_channels {channels} should start with it"
    if out_channels is not None:
        wanted = (in_channels, *tuple(out_channels)[1: len(channels)])
        assert channels == wanted, f"{what}: out_channels {channels}, expected {wanted}"
    generator = torch.Generator().manual_seed(0)
    if conv_reference is not None:
        module_name = keys[0].rsplit(".", 1)[0]
        conv = encoder.get_submodule(module_name)
        x = torch.randn(1, in_channels, size, size, generator=generator)
        with torch.no_grad():
            reference = F.conv2d(x, expected_state[keys[0]], state.get(module_name + ".bias"),
                                 **conv_reference)
            torch.testing.assert_close(
                conv(x), reference, atol=1e-5, rtol=1e-5,
                msg=lambda message: f"{what}: {module_name} differs from F.conv2d with the "
                f"expected kernel and {dict(conv_reference)}: {message}")
    with torch.no_grad():
        check_encoder_features(encoder.eval(),
                               torch.randn(2, in_channels, size, size, generator=generator),
                               encoder.depth, encoder_kwargs.get("output_stride", 32))
    return encoder


def _base_spec(encoder_name: str, spec: EncoderSpec | None) -> EncoderSpec:
    """``spec``, or the installed spec of ``encoder_name``."""
    from segcore.factory import get_encoder_spec

    if spec is None:
        return get_encoder_spec(encoder_name)
    assert spec.name == encoder_name, (
        f"the spec given is {spec.name!r}'s, not {encoder_name!r}'s"
    )
    return spec


def _test_spec(spec: EncoderSpec, tag: str, name: str, url: str, sha256: str) -> EncoderSpec:
    """``spec`` under ``name`` with the one tag ``tag``, its source at ``url``/``sha256``."""
    assert tag in spec.weights, (
        f"encoder {spec.name!r} has no weights {tag!r} (it has {sorted(spec.weights)})"
    )
    source = attrs.evolve(spec.weights[tag], url=url, sha256=sha256)
    aliases = {alias: target for alias, target in spec.weight_aliases.items() if target == tag}
    return attrs.evolve(spec, name=name, weights={tag: source}, weight_aliases=aliases)


def check_weights_download(
    encoder_name: str,
    tag: str,
    weights_file: str | os.PathLike[str],
    expected_state: Mapping[str, torch.Tensor],
    cache_dir: str | os.PathLike[str],
    *,
    first_conv_keys: str | Sequence[str] = (),
    in_channels: tuple[int, int] = (3, 1),
    requested: tuple[Any, Any] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    spec: EncoderSpec | None = None,
    installed_as: str | None = None,
    url_path: str = "/model.safetensors",
    cache_filename: str | None = None,
) -> None:
    """The chain tag -> source -> download -> cache -> module, against a loopback server.

    ``weights_file`` is served on 127.0.0.1; the encoder's spec (``spec``, default the
    installed ``encoder_name``'s) is installed as ``installed_as`` (default
    ``<name>-download-test``) with the one tag ``tag`` pointing at it (its sha256 the file's),
    ``SEGCORE_CACHE`` is ``cache_dir`` and ``SEGCORE_OFFLINE`` unset for the duration. Checks:
    the first build (``weights=requested[0]``, default the tag; ``in_channels[0]`` channels)
    downloads the file once and loads ``expected_state`` exactly (the first convolution,
    ``first_conv_keys``, adapted when the channels are not 3); the file is then in the cache
    as ``cache_dir/<installed_as>/<cache_filename>`` (default ``<name>.<tag>.safetensors``)
    with the file's digest; the second build (``requested[1]``, ``in_channels[1]``) loads it
    from the cache without a request; and ``get_preprocessing_params`` gives the values of
    ``preprocessing`` (each key given).

    Example::

        testing.check_weights_download("resnet18", "sswl", path, state, tmp_path / "cache",
                                       first_conv_keys="conv1.weight", requested=("swsl", True))
    """
    from segcore.factory import get_encoder
    from segcore.preprocessing import get_preprocessing_params

    base = _base_spec(encoder_name, spec)
    name = installed_as or f"{base.name}-download-test"
    keys = _first_conv_keys(first_conv_keys)
    payload = Path(weights_file).read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    cached = Path(cache_dir) / name / (cache_filename or f"{base.name}.{tag}.safetensors")
    assert not cached.exists(), f"{cached} exists before the download: use an empty cache_dir"
    builds = zip(requested or (tag, tag), in_channels, ("downloading", "from the cache"))
    with _environment(SEGCORE_CACHE=str(cache_dir), SEGCORE_OFFLINE=None), \
            serve_bytes(payload, path=url_path) as server:
        with specs_installed(encoders=[_test_spec(base, tag, name, server.url, digest)]):
            for weights, channels, how in builds:
                what = f"{name} built with weights={weights!r}, in_channels={channels} ({how})"
                encoder = get_encoder(name, weights=weights, in_channels=channels)
                assert server.requests == [url_path], (
                    f"{what}: expected one request of {url_path}, the server had "
                    f"{server.requests}"
                )
                assert_same_state(encoder, _adapted_state(expected_state, keys, channels),
                                  what=what)
                assert cached.is_file(), f"{what}: the file is not in the cache at {cached}"
                assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest, (
                    f"{what}: the cached file {cached} differs from the served one"
                )
            if preprocessing is not None:
                params = get_preprocessing_params(name, pretrained=tag)
                differing = {key: params.get(key) for key, value in preprocessing.items()
                             if params.get(key) != value}
                assert not differing, (
                    f"{name}: get_preprocessing_params(pretrained={tag!r}) gives {differing}, "
                    f"expected {({key: preprocessing[key] for key in differing})}"
                )


def check_wrong_digest_refused(
    encoder_name: str,
    tag: str,
    weights_file: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    *,
    spec: EncoderSpec | None = None,
    installed_as: str | None = None,
    url_path: str = "/model.safetensors",
) -> None:
    """A download whose bytes do not match the source's sha256 is refused.

    ``weights_file`` is served on 127.0.0.1 and ``encoder_name``'s spec (or ``spec``) is
    installed as ``installed_as`` (default ``<name>-bad-digest``) with the tag ``tag`` pointing
    at it and another digest; ``SEGCORE_CACHE`` is ``cache_dir``, ``SEGCORE_OFFLINE`` unset.
    Checks that building it raises ``ChecksumError`` after requesting the file once, and that
    nothing is left in the encoder's cache folder.

    Example: ``testing.check_wrong_digest_refused("resnet18", "imagenet", path, tmp_path)``.
    """
    from segcore.errors import ChecksumError
    from segcore.factory import get_encoder

    base = _base_spec(encoder_name, spec)
    name = installed_as or f"{base.name}-bad-digest"
    payload = Path(weights_file).read_bytes()
    wrong = "0" * 64 if hashlib.sha256(payload).hexdigest() != "0" * 64 else "1" * 64
    folder = Path(cache_dir) / name
    with _environment(SEGCORE_CACHE=str(cache_dir), SEGCORE_OFFLINE=None), \
            serve_bytes(payload, path=url_path) as server:
        with specs_installed(encoders=[_test_spec(base, tag, name, server.url, wrong)]):
            try:
                get_encoder(name, weights=tag)
            except ChecksumError:
                pass
            else:
                raise AssertionError(
                    f"{name}: weights {tag!r} whose file does not match the sha256 {wrong} "
                    f"were accepted (expected ChecksumError)"
                )
    assert server.requests == [url_path], (
        f"{name}: expected one request of {url_path} before the refusal, the server had "
        f"{server.requests}"
    )
    left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    assert not left, f"{name}: the refused download left {left} in {folder}"


def _save_state(state: Mapping[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """Save ``state`` as safetensors (a ``.safetensors`` path) or with ``torch.save``."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(dict(state), str(path))
    else:
        torch.save(dict(state), path)


def check_unexpected_keys_refused(
    encoder_name: str,
    state: Mapping[str, torch.Tensor],
    unexpected: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
) -> None:
    """A weights file with keys the encoder neither has nor drops is refused.

    Saves ``state`` plus ``unexpected`` at ``path`` (as ``check_classifier_file_loads``) and
    checks that ``get_encoder(encoder_name, weights=path)`` raises ``WeightsError`` naming
    each unexpected key.

    Example::

        testing.check_unexpected_keys_refused("resnet18", state,
                                              {"head.fc.weight": torch.zeros(2)},
                                              tmp_path / "extra.safetensors")
    """
    from segcore.errors import WeightsError
    from segcore.factory import get_encoder

    _save_state({**state, **unexpected}, path)
    try:
        get_encoder(encoder_name, weights=path)
    except WeightsError as error:
        unnamed = [key for key in unexpected if key not in str(error)]
        assert not unnamed, f"{encoder_name}: the error does not name {unnamed}: {error}"
    else:
        raise AssertionError(
            f"{encoder_name}: a file with the unexpected keys {sorted(unexpected)} was accepted "
            f"(expected WeightsError)"
        )


def weights_fixtures(
    encoder_name: str,
    *,
    extra: Mapping[str, torch.Tensor] | None = None,
    filename: str = "weights.safetensors",
    file_scope: str = "function",
    positive: Sequence[str] = ("running_var",),
    **encoder_kwargs: Any,
) -> tuple[Any, Any]:
    """The two pytest fixtures of an encoder plugin's weights tests, ``state`` and
    ``weights_file``; assign them at the top of the test module.

    ``state`` (module scope) is ``random_state_dict`` of ``encoder_name`` built with
    ``encoder_kwargs`` (``positive`` as there): every tensor new, BN statistics included.
    ``weights_file`` is that state, plus the ``extra`` tensors (a classifier the encoder
    drops, as published files have it), saved as ``filename`` in a temporary directory of
    ``file_scope``.

    Example::

        state, weights_file = testing.weights_fixtures("vgg11_bn")

        def test_file_loads_exactly(weights_file, state):
            encoder = segcore.get_encoder("vgg11_bn", weights=weights_file)
            testing.assert_same_state(encoder, state)
    """
    import pytest

    from segcore.factory import get_encoder

    @pytest.fixture(scope="module", name="state")
    def state_fixture() -> dict[str, torch.Tensor]:
        """A random state dict of the encoder (BN statistics included)."""
        return random_state_dict(get_encoder(encoder_name, **encoder_kwargs), positive=positive)

    @pytest.fixture(scope=file_scope, name="weights_file")
    def weights_file_fixture(tmp_path_factory: pytest.TempPathFactory,
                             state: dict[str, torch.Tensor]) -> Path:
        """``state`` (and the extra tensors) saved in a new temporary directory."""
        path = tmp_path_factory.mktemp("weights") / filename
        _save_state({**state, **(extra or {})}, path)
        return path

    return state_fixture, weights_file_fixture


def check_classifier_file_loads(
    encoder_name: str,
    state: Mapping[str, torch.Tensor],
    classifier: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    *,
    saved: Mapping[str, torch.Tensor] | None = None,
) -> nn.Module:
    """A classification checkpoint loads into the encoder without its classifier.

    Saves ``saved`` (default ``state``; another key naming of it, such as an older release's)
    plus the ``classifier`` tensors at ``path`` (safetensors for a ``.safetensors`` path, else
    ``torch.save``). Checks that ``get_encoder(encoder_name, weights=path)`` has exactly
    ``state`` and that ``remap_state_dict`` gives exactly ``state``'s keys. Returns the encoder.

    Example::

        testing.check_classifier_file_loads("resnet18", state, {"fc.weight": torch.randn(10, 512),
                                            "fc.bias": torch.randn(10)}, tmp_path / "r18.pth")
    """
    from segcore.factory import get_encoder

    checkpoint = {**(state if saved is None else saved), **classifier}
    _save_state(checkpoint, path)
    encoder = get_encoder(encoder_name, weights=path)
    assert_same_state(encoder, state, what=f"{encoder_name} loaded from {Path(path).name}")
    remapped = set(encoder.remap_state_dict(dict(checkpoint)))
    assert remapped == set(state), (
        f"{encoder_name}: remap_state_dict keeps {sorted(remapped - set(state))[:5]} and loses "
        f"{sorted(set(state) - remapped)[:5]}"
    )
    return encoder


class EncoderWeightsSuite:
    """The weights tests every encoder plugin shares, as a base class of a ``Test*`` class.

    Set the class attributes below; the test module provides the ``state`` and
    ``weights_file`` fixtures (``weights_fixtures``). The tests: ``weights_file`` loads as
    exactly ``state``; the first convolution (``first_conv_keys``) is derived from the RGB
    kernel for each of ``adapted_in_channels`` (``check_first_conv_adaptation``, with
    ``out_channels``, ``conv_reference`` and ``adapted_size``); the ``tag`` goes tag -> source
    -> download -> cache -> module (``check_weights_download`` with ``download_in_channels``,
    ``requested`` and ``preprocessing``); a wrong digest is refused
    (``check_wrong_digest_refused``); a classification file (``state`` plus ``classifier``,
    saved as ``classifier_filename``) loads without its classifier
    (``check_classifier_file_loads``; with no ``classifier``, the plain state saved that way);
    and a file with ``unexpected_keys`` (default: one key no encoder has) is refused
    (``check_unexpected_keys_refused``). ``spec``, when set, is the spec these checks use
    instead of the installed one.

    Example::

        state, weights_file = testing.weights_fixtures("vgg11_bn")

        class TestVGGWeights(testing.EncoderWeightsSuite):
            encoder_name = "vgg11_bn"
            first_conv_keys = "features.0.weight"
            out_channels = (3, 128, 256, 512, 512, 512)
    """

    encoder_name: str
    first_conv_keys: str | Sequence[str]
    out_channels: Sequence[int] | None = None
    conv_reference: Mapping[str, Any] | None = None
    adapted_size: int = 32
    adapted_in_channels: Sequence[int] = (1, 4)
    tag: str = "imagenet"
    download_in_channels: tuple[int, int] = (3, 1)
    requested: tuple[Any, Any] | None = None
    preprocessing: Mapping[str, Any] | None = None
    spec: EncoderSpec | None = None
    classifier: Mapping[str, torch.Tensor] = {}
    classifier_filename: str = "classifier.pth"
    unexpected_keys: Mapping[str, torch.Tensor] = {"segcore_testing.unexpected": torch.zeros(1)}

    def test_weights_file_loads_exactly(self, weights_file: Path,
                                        state: Mapping[str, torch.Tensor]) -> None:
        """The file saved from ``state`` gives an encoder with exactly ``state``."""
        from segcore.factory import get_encoder

        with self._spec_installed():
            encoder = get_encoder(self.encoder_name, weights=str(weights_file))
        assert_same_state(encoder, state)

    def test_first_conv_is_derived_from_the_rgb_kernel(
            self, weights_file: Path, state: Mapping[str, torch.Tensor]) -> None:
        """Each of ``adapted_in_channels`` adapts the first convolution of the file."""
        for in_channels in self.adapted_in_channels:
            with self._spec_installed():
                encoder = check_first_conv_adaptation(
                    self.encoder_name, weights_file, state, self.first_conv_keys, in_channels,
                    out_channels=self.out_channels, conv_reference=self.conv_reference,
                    size=self.adapted_size)
            assert encoder.in_channels == in_channels, (
                f"{self.encoder_name}: in_channels {encoder.in_channels}, expected {in_channels}"
            )

    def test_tag_is_downloaded_verified_cached_and_adapted(
            self, weights_file: Path, state: Mapping[str, torch.Tensor], tmp_path: Path) -> None:
        """The tag downloads, verifies, caches and loads the file (first conv adapted)."""
        check_weights_download(self.encoder_name, self.tag, weights_file, state,
                               tmp_path / "cache", first_conv_keys=self.first_conv_keys,
                               in_channels=self.download_in_channels, requested=self.requested,
                               preprocessing=self.preprocessing, spec=self.spec)

    def test_download_with_a_wrong_digest_is_refused(self, weights_file: Path,
                                                     tmp_path: Path) -> None:
        """A download whose sha256 differs from the source's is refused."""
        check_wrong_digest_refused(self.encoder_name, self.tag, weights_file,
                                   tmp_path / "cache", spec=self.spec)

    def test_classifier_file_loads_without_the_classifier(
            self, state: Mapping[str, torch.Tensor], tmp_path: Path) -> None:
        """``state`` plus ``classifier`` loads as exactly ``state``; remapping drops the rest."""
        with self._spec_installed():
            check_classifier_file_loads(self.encoder_name, state, self.classifier,
                                        tmp_path / self.classifier_filename)

    def test_unexpected_keys_are_refused(self, state: Mapping[str, torch.Tensor],
                                         tmp_path: Path) -> None:
        """A file with ``unexpected_keys`` (keys the encoder neither has nor drops) is refused,
        naming them."""
        with self._spec_installed():
            check_unexpected_keys_refused(self.encoder_name, state, self.unexpected_keys,
                                          tmp_path / "unexpected.safetensors")

    def _spec_installed(self) -> contextlib.AbstractContextManager[None]:
        """``spec`` installed for the block when set; otherwise nothing changes."""
        if self.spec is None:
            return contextlib.nullcontext()
        return specs_installed(encoders=[self.spec])


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
