"""Any input size, for every architecture (issue: "Every architecture", any-size property).

For random heights and widths in [32, 300] each architecture gives a mask of the input's size
(it pads to the next size its encoder can reduce and crops back), or, below the smallest size
it can pad to a working one, an ``InputShapeError`` naming that size. Where the size is a
multiple of 32, which SMP 0.6.0 accepts, the output is SMP's (its state dict loaded strictly).

One module for all architectures: a newly installed architecture must be added to
``smp_pairs.MODELS`` (a test fails otherwise).
"""

from __future__ import annotations

import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from smp_pairs import MODELS  # noqa: E402

import segcore  # noqa: E402
from segcore.errors import InputShapeError  # noqa: E402

TOLERANCE = 1e-4
SIDES = (32, 300)
CLASSES = 2
_PAIRS: dict[str, tuple[torch.nn.Module, torch.nn.Module]] = {}


def _pair(architecture: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """SMP's model and ours with SMP's state dict (random init, eval mode), built once."""
    if architecture not in _PAIRS:
        package, class_name, encoder, options = MODELS[architecture]
        ours_class = getattr(pytest.importorskip(package), class_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            reference = getattr(smp, class_name)(encoder_name=encoder, encoder_weights=None,
                                                 classes=CLASSES, **options).eval()
            ours = ours_class(encoder_name=encoder, encoder_weights=None, classes=CLASSES,
                              **options)
        ours.load_state_dict(reference.state_dict(), strict=True)
        _PAIRS[architecture] = reference, ours.eval()
    return _PAIRS[architecture]


def _smallest_side(model: torch.nn.Module) -> int:
    """The smallest square side the model takes: 1 when it takes a 1x1 input (padding brings
    it to a working size), else the size its refusal names (``<side>x<side>``)."""
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 1, 1))
    except InputShapeError as refusal:
        sides = [int(word.split("x")[0]) for word in str(refusal).replace(".", " ").split()
                 if "x" in word and all(part.isdigit() for part in word.split("x"))]
        assert sides, f"the refusal does not name the smallest size: {refusal}"
        return max(sides)
    return 1


def test_every_installed_architecture_is_covered() -> None:
    assert set(segcore.list_architectures()) <= set(MODELS), (
        "add the new architecture to MODELS in tests/parity/smp_pairs.py")


sides = st.integers(*SIDES)
multiples_of_32 = st.integers(1, SIDES[1] // 32).map(lambda k: 32 * k)
_settings = settings(max_examples=8, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("architecture", list(MODELS))
@_settings
@given(height=sides, width=sides)
def test_any_size_gives_a_mask_of_that_size(architecture: str, height: int, width: int) -> None:
    _, ours = _pair(architecture)
    smallest = _smallest_side(ours)
    x = torch.randn(1, 3, height, width)
    if min(height, width) < smallest:
        with pytest.raises(InputShapeError, match=f"{smallest}x{smallest}"), torch.no_grad():
            ours(x)
        return
    with torch.no_grad():
        mask = ours(x)
    assert mask.shape == (1, CLASSES, height, width)
    assert torch.isfinite(mask).all()


@pytest.mark.parametrize("architecture", list(MODELS))
@_settings
@given(height=multiples_of_32, width=multiples_of_32)
def test_sizes_divisible_by_32_give_smp_output(architecture: str, height: int,
                                               width: int) -> None:
    reference, ours = _pair(architecture)
    x = torch.randn(1, 3, height, width)
    try:
        with torch.no_grad():
            expected = reference(x)
    except RuntimeError:
        # SMP refuses sizes whose deepest features are too small (PAN below 128): so do we
        with pytest.raises(InputShapeError), torch.no_grad():
            ours(x)
        return
    with torch.no_grad():
        actual = ours(x)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=TOLERANCE, rtol=TOLERANCE)
