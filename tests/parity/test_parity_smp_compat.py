"""``segcore.smp`` against SMP 0.6.0 itself: the public surface (every public name is served or
explicitly not served, with a message), the signatures (parameter names and defaults), the
``losses._functional`` helpers on random inputs, and an SMP-style script run through both.

Where segcore.smp deliberately differs (docs/smp.md), the test says so in a comment.
"""

from __future__ import annotations

import inspect
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

real = pytest.importorskip("segmentation_models_pytorch")
real_functional = pytest.importorskip("segmentation_models_pytorch.losses._functional")
for _package in ("segcore_unet", "segcore_resnet", "segcore_losses", "segcore_metrics",
                 "segcore_timm"):
    pytest.importorskip(_package)

import segcore.smp as smp  # noqa: E402
from segcore.smp.losses import _functional as ours_functional  # noqa: E402

EMPTY = inspect.Parameter.empty
KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _quiet(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SMP's and timm's deprecation warnings
        return function(*args, **kwargs)


def _public(module: Any) -> set[str]:
    return {name for name in dir(module) if not name.startswith("_")}


# -- the public surface ------------------------------------------------------------------------
TOP_SERVED = {*smp.ARCHITECTURE_CLASSES, "MODEL_ARCHITECTURES_MAPPING", "create_model",
              "from_pretrained", "encoders", "losses", "metrics"}
TOP_NOT_SERVED = {"datasets", "decoders", "base"}
#: the documented names of smp.encoders (its __all__, and preprocess_input used by the docs)
ENCODERS_SERVED = {"get_encoder", "get_encoder_names", "get_preprocessing_fn",
                   "get_preprocessing_params", "preprocess_input"}
ENCODERS_NOT_SERVED = {"encoders", "TimmUniversalEncoder", "TimmViTEncoder"}
FUNCTIONAL = ("soft_dice_score", "soft_jaccard_score", "soft_tversky_score",
              "focal_loss_with_logits", "softmax_focal_loss_with_logits", "wing_loss",
              "label_smoothed_nll_loss", "to_tensor")


def test_top_level_surface() -> None:
    smp_names = _public(real) | set(real.__all__)
    assert smp_names <= TOP_SERVED | TOP_NOT_SERVED | {"__version__"}, (
        f"SMP names not classified: {sorted(smp_names - TOP_SERVED - TOP_NOT_SERVED)}"
    )
    for name in TOP_SERVED:
        assert getattr(smp, name) is not None, name
    for name in TOP_NOT_SERVED:
        with pytest.raises(AttributeError, match=r"docs/smp\.md"):
            getattr(smp, name)
    assert smp.__version__ == real.__version__ == "0.6.0"
    assert list(smp.MODEL_ARCHITECTURES_MAPPING) == list(real.MODEL_ARCHITECTURES_MAPPING)
    for key, model_class in real.MODEL_ARCHITECTURES_MAPPING.items():
        assert smp.MODEL_ARCHITECTURES_MAPPING[key].__name__ == model_class.__name__


def test_encoders_surface() -> None:
    assert set(real.encoders.__all__) <= ENCODERS_SERVED | ENCODERS_NOT_SERVED
    for name in ENCODERS_SERVED:
        assert callable(getattr(smp.encoders, name)), name
    for name in ENCODERS_NOT_SERVED:
        assert hasattr(real.encoders, name)
        with pytest.raises(AttributeError, match=r"docs/smp\.md"):
            getattr(smp.encoders, name)
    # every name SMP lists is a name segcore builds (SMP 0.6.0 lists no timm-regnet*...: it
    # turned them into tu- encoders; segcore keeps them as names)
    assert set(real.encoders.get_encoder_names()) <= set(smp.encoders.get_encoder_names())


def test_losses_and_metrics_surface() -> None:
    assert set(smp.losses.__all__) == set(real.losses.__all__)
    for name in real.losses.__all__:
        assert getattr(smp.losses, name) is not None, name
    for name in ("BINARY_MODE", "MULTICLASS_MODE", "MULTILABEL_MODE"):
        assert getattr(smp.losses.constants, name) == getattr(real.losses.constants, name)
    assert set(real_functional.__all__) <= set(FUNCTIONAL)
    for name in FUNCTIONAL:
        assert hasattr(real_functional, name) and callable(getattr(ours_functional, name))
    assert set(smp.metrics.__all__) == set(real.metrics.__all__)
    for name in real.metrics.__all__:
        assert callable(getattr(smp.metrics, name)) and callable(
            getattr(smp.metrics.functional, name))


# -- signatures ------------------------------------------------------------------------------
#: (parameter, SMP's default, segcore's default) that deliberately differ
KNOWN_DEFAULTS = {
    # None: follow decoder_use_batchnorm / psp_use_batchnorm (the documented older argument),
    # whose default True means SMP's "batchnorm": the same layers (tests/parity/test_parity_*)
    ("decoder_use_norm", "batchnorm", None),
}


def _check_signature(theirs: Callable[..., Any], ours: Callable[..., Any], what: str) -> None:
    """Every SMP parameter is accepted with the same default; SMP's keyword parameters keep
    their relative order among segcore's positional ones; segcore's extra parameters have
    defaults (so SMP calls never miss them)."""
    smp_params = inspect.signature(theirs).parameters
    our_params = inspect.signature(ours).parameters
    for name, parameter in smp_params.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            kinds = {p.kind for p in our_params.values()}
            assert parameter.kind in kinds, f"{what}: no {parameter.kind.description}"
            continue
        assert name in our_params, f"{what}: parameter {name!r} missing"
        mine = our_params[name]
        if (name, parameter.default, mine.default) in KNOWN_DEFAULTS:
            continue
        assert mine.default == parameter.default or mine.default is parameter.default, (
            f"{what}: {name} defaults to {mine.default!r}, SMP {parameter.default!r}"
        )
    positional = [n for n, p in our_params.items()
                  if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and n in smp_params]
    smp_order = [n for n in smp_params if n in positional]
    assert positional == smp_order, f"{what}: positional order {positional} vs SMP {smp_order}"
    for name, mine in our_params.items():
        if name not in smp_params and mine.kind in KEYWORD:
            assert mine.default is not EMPTY, f"{what}: extra parameter {name!r} is required"


def test_create_model_signature() -> None:
    assert inspect.signature(smp.create_model).parameters.keys() == \
        inspect.signature(real.create_model).parameters.keys()
    _check_signature(real.create_model, smp.create_model, "create_model")


@pytest.mark.parametrize("name", list(smp.ARCHITECTURE_CLASSES))
def test_class_signatures(name: str) -> None:
    _check_signature(getattr(real, name).__init__, getattr(smp, name).__init__, name)


@pytest.mark.parametrize("name", [n for n in real.losses.__all__ if n.endswith("Loss")])
def test_loss_signatures(name: str) -> None:
    # MCCLoss has two keyword-only additions with defaults (mode, from_logits): docs/losses.md
    _check_signature(getattr(real.losses, name).__init__, getattr(smp.losses, name).__init__,
                     name)


@pytest.mark.parametrize("name", real.metrics.__all__)
def test_metric_signatures(name: str) -> None:
    _check_signature(getattr(real.metrics, name), getattr(smp.metrics, name), name)


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_functional_signatures(name: str) -> None:
    _check_signature(getattr(real_functional, name), getattr(ours_functional, name), name)


@pytest.mark.parametrize("name", sorted(ENCODERS_SERVED - {"preprocess_input"}))
def test_encoder_function_signatures(name: str) -> None:
    _check_signature(getattr(real.encoders, name), getattr(smp.encoders, name), name)


# -- the functional helpers give SMP's numbers -----------------------------------------------
def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dims", [None, (0, 2), 2])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_overlap_scores(seed: int, dims: Any, smooth: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    output = torch.rand(2, 3, 50, generator=generator)
    target = torch.rand(2, 3, 50, generator=generator).round()
    target[:, 2] = torch.rand(2, 50, generator=generator)  # soft targets too
    for name in ("soft_dice_score", "soft_jaccard_score"):
        _close(getattr(ours_functional, name)(output, target, smooth, 1e-7, dims),
               getattr(real_functional, name)(output, target, smooth, 1e-7, dims))
    _close(ours_functional.soft_tversky_score(output, target, 0.3, 0.7, smooth, dims=dims),
           real_functional.soft_tversky_score(output, target, 0.3, 0.7, smooth, dims=dims))


FOCAL_OPTIONS = [
    {}, {"gamma": 0.5, "alpha": None}, {"alpha": 0.8, "normalized": True},
    {"reduced_threshold": 0.5}, {"reduction": "sum"}, {"reduction": "none"},
    {"reduction": "batchwise_mean", "gamma": 3.0},
]


@pytest.mark.parametrize("options", FOCAL_OPTIONS, ids=str)
def test_focal_helpers(options: dict[str, Any]) -> None:
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(4, 3, 16, generator=generator) * 3
    labels = torch.rand(4, 3, 16, generator=generator).round()
    _close(ours_functional.focal_loss_with_logits(logits, labels, **options),
           real_functional.focal_loss_with_logits(logits, labels, **options))
    classes = torch.randint(0, 3, (4, 16), generator=generator)
    softmax_options = {k: v for k, v in options.items() if k != "alpha"}
    _close(ours_functional.softmax_focal_loss_with_logits(logits, classes, **softmax_options),
           real_functional.softmax_focal_loss_with_logits(logits, classes, **softmax_options))


@pytest.mark.parametrize(("reduction", "ignore_index"),
                         list(itertools.product(["mean", "sum", "none"], [None, 2])))
def test_other_helpers(reduction: str, ignore_index: int | None) -> None:
    generator = torch.Generator().manual_seed(3)
    output = torch.randn(3, 20, generator=generator) * 6
    target = torch.randn(3, 20, generator=generator) * 6
    _close(ours_functional.wing_loss(output, target, reduction=reduction),
           real_functional.wing_loss(output, target, reduction=reduction))
    lprobs = torch.randn(2, 4, 5, generator=generator).log_softmax(1)
    labels = torch.randint(0, 4, (2, 5), generator=generator)
    ours = ours_functional.label_smoothed_nll_loss(lprobs, labels, 0.1, ignore_index,
                                                   reduction, dim=1)
    theirs = real_functional.label_smoothed_nll_loss(lprobs, labels, 0.1, ignore_index,
                                                     reduction, dim=1)
    if ignore_index is not None and reduction == "none":
        theirs = theirs.squeeze(1)  # SMP keeps the class axis there; segcore drops it
    _close(ours, theirs)
    for value in ([1, 2], [1.5, 2.5], (3,)):
        assert torch.equal(ours_functional.to_tensor(value), real_functional.to_tensor(value))
        assert ours_functional.to_tensor(value).dtype == real_functional.to_tensor(value).dtype


# -- binary losses on (N, 1, L) and (N, 1, 1, L): SMP's values ---------------------------------
@pytest.mark.parametrize("name", ["DiceLoss", "JaccardLoss", "TverskyLoss", "FocalLoss",
                                  "LovaszLoss", "MCCLoss"])
@pytest.mark.parametrize(("output_shape", "target_shape"), [
    ((2, 1, 32), (2, 1, 1, 32)), ((2, 1, 1, 32), (2, 1, 32)), ((2, 1, 32, 1), (2, 32)),
    ((2, 1, 32), (2, 1, 32)),
])
def test_binary_flattening_matches_smp(name: str, output_shape: tuple[int, ...],
                                       target_shape: tuple[int, ...]) -> None:
    generator = torch.Generator().manual_seed(5)
    output = torch.randn(output_shape, generator=generator)
    target = torch.rand(target_shape, generator=generator).round()
    if name == "MCCLoss":
        output = output.sigmoid()
        ours, theirs = smp.losses.MCCLoss(), real.losses.MCCLoss()
    else:
        ours, theirs = getattr(smp.losses, name)("binary"), getattr(real.losses, name)("binary")
    _close(ours(output, target), theirs(output, target))


# -- a script through both -------------------------------------------------------------------
def _script(library: Any, model: torch.nn.Module, steps: int = 2) -> dict[str, torch.Tensor]:
    """Score with get_stats and four metrics, then train a few steps with Dice + Focal.

    Scoring comes first: after Adam steps the two models differ by float rounding, which can
    flip the argmax of near-tied pixels (the losses are compared after each step instead)."""
    generator = torch.Generator().manual_seed(11)
    images = torch.rand(2, 3, 64, 64, generator=generator)
    masks = torch.randint(0, 3, (2, 64, 64), generator=generator)
    values: dict[str, torch.Tensor] = {}
    model.eval()
    with torch.no_grad():
        logits = model(images)
    values["logits"] = logits
    stats = library.metrics.get_stats(logits.argmax(1), masks, mode="multiclass",
                                      num_classes=3)
    for metric in ("iou_score", "f1_score", "accuracy", "recall"):
        for reduction in ("micro", "macro", "micro-imagewise"):
            values[f"{metric}-{reduction}"] = getattr(library.metrics, metric)(
                *stats, reduction=reduction)

    dice = library.losses.DiceLoss(library.losses.MULTICLASS_MODE)
    focal = library.losses.FocalLoss(library.losses.MULTICLASS_MODE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step in range(steps):
        logits = model(images)
        loss = dice(logits, masks) + 0.5 * focal(logits, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values[f"loss{step}"] = loss.detach()
    return values


def test_script_through_both_gives_the_same_values() -> None:
    torch.manual_seed(0)
    theirs = _quiet(real.Unet, "resnet18", encoder_weights=None, classes=3,
                    decoder_channels=(64, 32, 16, 16, 8))
    ours = smp.Unet("resnet18", encoder_weights=None, classes=3,
                    decoder_channels=(64, 32, 16, 16, 8))
    ours.load_state_dict(theirs.state_dict())
    expected = _quiet(_script, real, theirs)
    actual = _script(smp, ours)
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key].float(), expected[key].float(), atol=1e-4,
                                   rtol=1e-4, msg=lambda text, key=key: f"{key}: {text}")


def test_smp_folder_loads_through_compat(tmp_path) -> None:
    torch.manual_seed(0)
    theirs = _quiet(real.create_model, "fpn", encoder_name="resnet18", encoder_weights=None,
                    classes=2).eval()
    _quiet(theirs.save_pretrained, tmp_path, metrics={"iou": 0.5}, dataset="toy")
    ours = smp.from_pretrained(tmp_path)
    assert type(ours).__name__ == "FPN" and not ours.training
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_tu_preprocessing_params() -> None:
    assert smp.encoders.get_preprocessing_params("tu-resnet18") == \
        real.encoders.get_preprocessing_params("tu-resnet18")


# -- the capability flags ----------------------------------------------------------------------
FLAGS = ("_is_torch_scriptable", "_is_torch_compilable", "_is_torch_exportable")


@pytest.mark.parametrize("name", list(smp.ARCHITECTURE_CLASSES))
def test_model_flags(name: str) -> None:
    for flag in FLAGS:
        assert getattr(getattr(smp, name), flag) is getattr(getattr(real, name), flag), flag


@pytest.mark.parametrize("encoder", ["resnet18", "dpn68", "tu-resnet18"])
def test_encoder_flags(encoder: str) -> None:
    """Every capability SMP's encoder claims, ours has; ours may have more (segcore's DPN
    scripts, SMP's does not), which tests/integration/test_smp_compat.py checks by scripting."""
    ours = smp.encoders.get_encoder(encoder, weights=None)
    theirs = _quiet(real.encoders.get_encoder, encoder, weights=None)
    for flag in FLAGS:
        assert getattr(ours, flag) or not getattr(theirs, flag), flag
