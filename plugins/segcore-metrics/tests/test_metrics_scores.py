"""The 17 scores and the reductions against hand computations from their definitions."""

from __future__ import annotations

import math
import warnings

import pytest
import segcore_metrics as M
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from segcore.errors import InvalidOptionError, InvalidTargetError

NAN = float("nan")


def divide(numerator: float, denominator: float) -> float:
    """IEEE division in plain Python: 0/0 is undefined (NaN), x/0 is infinite."""
    if math.isnan(numerator) or math.isnan(denominator):
        return NAN
    if denominator == 0:
        return NAN if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / denominator


# The definitions (https://en.wikipedia.org/wiki/Confusion_matrix), in plain Python.
DEFINITIONS = {
    "iou_score": lambda tp, fp, fn, tn: divide(tp, tp + fp + fn),
    "f1_score": lambda tp, fp, fn, tn: divide(2 * tp, 2 * tp + fp + fn),
    "fbeta_score": lambda tp, fp, fn, tn: divide(5 * tp, 5 * tp + 4 * fn + fp),  # beta = 2
    "accuracy": lambda tp, fp, fn, tn: divide(tp + tn, tp + fp + fn + tn),
    "precision": lambda tp, fp, fn, tn: divide(tp, tp + fp),
    "positive_predictive_value": lambda tp, fp, fn, tn: divide(tp, tp + fp),
    "recall": lambda tp, fp, fn, tn: divide(tp, tp + fn),
    "sensitivity": lambda tp, fp, fn, tn: divide(tp, tp + fn),
    "specificity": lambda tp, fp, fn, tn: divide(tn, tn + fp),
    "balanced_accuracy": lambda tp, fp, fn, tn: (divide(tp, tp + fn) + divide(tn, tn + fp)) / 2,
    "negative_predictive_value": lambda tp, fp, fn, tn: divide(tn, tn + fn),
    "false_negative_rate": lambda tp, fp, fn, tn: divide(fn, fn + tp),
    "false_positive_rate": lambda tp, fp, fn, tn: divide(fp, fp + tn),
    "false_discovery_rate": lambda tp, fp, fn, tn: divide(fp, fp + tp),
    "false_omission_rate": lambda tp, fp, fn, tn: divide(fn, fn + tn),
    "positive_likelihood_ratio": lambda tp, fp, fn, tn: divide(
        divide(tp, tp + fn), divide(fp, fp + tn)
    ),
    "negative_likelihood_ratio": lambda tp, fp, fn, tn: divide(
        divide(fn, fn + tp), divide(tn, tn + fp)
    ),
}
RATIOS = ("positive_likelihood_ratio", "negative_likelihood_ratio")
REDUCTIONS = ["micro", "macro", "weighted", "micro-imagewise", "macro-imagewise",
              "weighted-imagewise", "none", None]

# Two images x three classes of eight pixels; class 2 is absent from image 1 (IoU 0/0 there).
TP = [[2, 0, 1], [0, 3, 0]]
FP = [[1, 0, 2], [1, 0, 0]]
FN = [[0, 1, 1], [2, 0, 0]]
TN = [[5, 7, 4], [5, 5, 8]]
WEIGHTS = [1.0, 2.0, 1.0]


def score(name, options=None):
    function = M.METRICS[name]
    if name == "fbeta_score":
        return lambda *stats, **kwargs: function(*stats, beta=2.0, **kwargs)
    return function


def expected_by_hand(definition, tp, fp, fn, tn, reduction, weights, zero_division):
    """Reduce ``definition`` with explicit loops, as the documentation describes."""
    fill = 0.0 if zero_division == "warn" else zero_division

    def value(*counts):
        result = definition(*counts)
        return fill if math.isnan(result) else result

    images, classes = len(tp), len(tp[0])
    cells = [[(tp[n][c], fp[n][c], fn[n][c], tn[n][c]) for c in range(classes)]
             for n in range(images)]
    total = sum(weights) if weights else 1.0
    if reduction == "micro":
        return value(*(sum(cell[k] for row in cells for cell in row) for k in range(4)))
    per_class = [value(*(sum(cells[n][c][k] for n in range(images)) for k in range(4)))
                 for c in range(classes)]
    if reduction == "macro":
        return sum(per_class) / classes
    if reduction == "weighted":
        return sum(w / total * s for w, s in zip(weights, per_class))
    matrix = [[value(*cells[n][c]) for c in range(classes)] for n in range(images)]
    if reduction == "micro-imagewise":
        return sum(value(*(sum(cell[k] for cell in row) for k in range(4)))
                   for row in cells) / images
    if reduction == "macro-imagewise":
        return sum(sum(row) / classes for row in matrix) / images
    if reduction == "weighted-imagewise":
        return sum(sum(w / total * s for w, s in zip(weights, row)) for row in matrix) / images
    return matrix


def flat(matrix):
    return [value for row in matrix for value in row]


def tensors(*lists):
    return [torch.tensor(values) for values in lists]


# --- literal values, worked out on paper ------------------------------------------------------


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("micro", 3 / 7),  # 6 / (6 + 4 + 4)
        ("macro", 4 / 9),  # mean(2/6, 3/4, 1/4)
        ("weighted", 0.25 / 3 + 0.5 * 0.75 + 0.25 * 0.25),
        ("micro-imagewise", (3 / 8 + 3 / 6) / 2),
        ("macro-imagewise", (11 / 36 + 2 / 3) / 2),  # image 1 class 2 is 0/0 -> 1
        ("weighted-imagewise", (11 / 48 + 0.75) / 2),
    ],
)
def test_iou_worked_example(reduction, expected):
    weights = WEIGHTS if "weighted" in reduction else None
    result = M.iou_score(*tensors(TP, FP, FN, TN), reduction=reduction, class_weights=weights)
    assert result.shape == ()
    assert float(result) == pytest.approx(expected, abs=1e-6)


def test_iou_without_reduction_is_per_image_and_class():
    result = M.iou_score(*tensors(TP, FP, FN, TN))
    assert result.shape == (2, 3)
    assert flat(result.tolist()) == pytest.approx([2 / 3, 0.0, 0.25, 0.0, 1.0, 1.0])
    assert M.iou_score(*tensors(TP, FP, FN, TN), reduction="none").tolist() == result.tolist()


# --- every metric x every reduction x zero_division -------------------------------------------


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_division", [1.0, 0.0, 0.5])
def test_every_metric_and_reduction_against_definitions(name, reduction, zero_division):
    weights = WEIGHTS if reduction in ("weighted", "weighted-imagewise") else None
    expected = expected_by_hand(DEFINITIONS[name], TP, FP, FN, TN, reduction, weights,
                                zero_division)
    result = score(name)(*tensors(TP, FP, FN, TN), reduction=reduction, class_weights=weights,
                         zero_division=zero_division)
    if reduction in ("none", None):
        assert result.shape == (2, 3)
        assert flat(result.tolist()) == pytest.approx(flat(expected), abs=1e-6)
    else:
        assert result.shape == ()
        assert float(result) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_perfect_prediction(name):
    target = torch.tensor([[0, 0, 1, 2], [2, 2, 1, 0]])
    stats = M.get_stats(target, target, "multiclass", num_classes=3)
    perfect = {"false_negative_rate": 0.0, "false_positive_rate": 0.0,
               "false_discovery_rate": 0.0, "false_omission_rate": 0.0,
               "positive_likelihood_ratio": math.inf, "negative_likelihood_ratio": 0.0}
    assert float(score(name)(*stats, reduction="macro")) == perfect.get(name, 1.0)


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_all_wrong_binary(name):
    target = torch.tensor([[[1, 1, 0, 0]]])
    stats = M.get_stats(1 - target, target, "binary")  # tp = tn = 0, fp = fn = 2
    all_wrong = {"false_negative_rate": 1.0, "false_positive_rate": 1.0,
                 "false_discovery_rate": 1.0, "false_omission_rate": 1.0,
                 "positive_likelihood_ratio": 0.0, "negative_likelihood_ratio": math.inf}
    assert float(score(name)(*stats, reduction="micro")) == all_wrong.get(name, 0.0)


def test_empty_class_uses_zero_division():
    # class 1 is neither predicted nor present: IoU is 0/0 for it
    output = target = torch.zeros(1, 4, dtype=torch.long)
    stats = M.get_stats(output, target, "multiclass", num_classes=2)
    assert M.iou_score(*stats).tolist() == [[1.0, 1.0]]
    assert M.iou_score(*stats, zero_division=0).tolist() == [[1.0, 0.0]]
    assert float(M.iou_score(*stats, reduction="macro", zero_division=0.25)) == 0.625
    with pytest.warns(M.UndefinedMetricWarning, match="0/0"):
        assert M.iou_score(*stats, zero_division="warn").tolist() == [[1.0, 0.0]]
    # micro over all pixels is defined (SMP leaves 0/0 as NaN in micro; here it is filled too)
    empty = [torch.zeros(1, 1, dtype=torch.long)] * 3 + [torch.full((1, 1), 5)]
    assert float(M.iou_score(*empty, reduction="micro")) == 1.0


def test_no_warning_when_every_score_is_defined():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.accuracy(*tensors(TP, FP, FN, TN), zero_division="warn")


def test_ignored_pixels_do_not_count():
    output = torch.tensor([[0, 1, 1, 0]])
    target = torch.tensor([[0, 1, -1, -1]])  # the two wrong... and one right pixel ignored
    stats = M.get_stats(output, target, "multiclass", num_classes=2, ignore_index=-1)
    assert float(M.accuracy(*stats, reduction="micro")) == 1.0
    assert float(M.iou_score(*stats, reduction="macro")) == 1.0


def test_float_stats_and_the_default_dtype():
    stats = tensors(TP, FP, FN, TN)
    assert M.iou_score(*stats).dtype == torch.float32
    doubles = [value.double() for value in stats]
    assert M.iou_score(*doubles, reduction="micro").dtype == torch.float64


def test_fbeta_with_beta_one_is_f1_and_small_beta_tends_to_precision():
    stats = tensors(TP, FP, FN, TN)
    assert torch.equal(M.fbeta_score(*stats, beta=1.0), M.f1_score(*stats))
    # where the precision is defined (tp + fp > 0), F-beta tends to it as beta goes to 0
    defined = tensors([[2, 1], [1, 3]], [[1, 2], [1, 1]], [[0, 1], [2, 0]], [[5, 4], [4, 4]])
    assert torch.allclose(M.fbeta_score(*defined, beta=1e-4), M.precision(*defined), atol=1e-6)


# --- properties on random counts --------------------------------------------------------------


@st.composite
def random_stats(draw, images=None, classes=None):
    images = images or draw(st.integers(1, 4))
    classes = classes or draw(st.integers(1, 4))
    pixels = draw(st.integers(1, 20))
    rows = []
    for _ in range(images * classes):
        tp = draw(st.integers(0, pixels))
        fp = draw(st.integers(0, pixels - tp))
        fn = draw(st.integers(0, pixels - tp - fp))
        rows.append((tp, fp, fn, pixels - tp - fp - fn))
    stats = torch.tensor(rows).view(images, classes, 4)
    return tuple(stats[..., k] for k in range(4))


@settings(max_examples=40, deadline=None)
@given(stats=random_stats(), name=st.sampled_from(sorted(DEFINITIONS)),
       reduction=st.sampled_from(REDUCTIONS))
def test_scores_lie_in_their_range(stats, name, reduction):
    classes = stats[0].shape[1]
    weights = [1.0] * classes if reduction in ("weighted", "weighted-imagewise") else None
    result = score(name)(*stats, reduction=reduction, class_weights=weights)
    if name in RATIOS:
        assert bool((result >= 0).all())  # may be +inf where the denominator rate is 0
    else:
        assert bool(((result >= 0) & (result <= 1)).all()), result


@settings(max_examples=40, deadline=None)
@given(stats=random_stats(images=1), name=st.sampled_from(sorted(DEFINITIONS)))
def test_micro_over_one_image_equals_micro_imagewise(stats, name):
    micro = score(name)(*stats, reduction="micro")
    assert torch.allclose(micro, score(name)(*stats, reduction="micro-imagewise"))


@settings(max_examples=40, deadline=None)
@given(stats=random_stats(), name=st.sampled_from(sorted(DEFINITIONS)),
       weight=st.floats(0.1, 10))
def test_equal_class_weights_give_the_plain_mean(stats, name, weight):
    equal = [weight] * stats[0].shape[1]
    function = score(name)
    for plain, weighted in (("macro", "weighted"), ("macro-imagewise", "weighted-imagewise")):
        a = function(*stats, reduction=plain)
        b = function(*stats, reduction=weighted, class_weights=equal)
        assert torch.allclose(a, b, equal_nan=True), (plain, a, b)


@settings(max_examples=40, deadline=None)
@given(stats=random_stats(), name=st.sampled_from(sorted(DEFINITIONS)), data=st.data())
def test_one_hot_weights_select_one_class(stats, name, data):
    classes = stats[0].shape[1]
    chosen = data.draw(st.integers(0, classes - 1))
    weights = [1.0 if c == chosen else 0.0 for c in range(classes)]
    function = score(name)
    per_class = function(*(value.sum(0, keepdim=True) for value in stats))[0, chosen]
    weighted = function(*stats, reduction="weighted", class_weights=weights)
    assert torch.allclose(weighted, per_class, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(stats=random_stats(classes=1), name=st.sampled_from(sorted(DEFINITIONS)))
def test_binary_case_reductions_coincide(stats, name):
    # documented: for one class micro = macro = weighted, and the three imagewise ones agree
    function = score(name)
    micro = function(*stats, reduction="micro")
    assert torch.allclose(micro, function(*stats, reduction="macro"))
    assert torch.allclose(micro, function(*stats, reduction="weighted", class_weights=[3.0]))
    imagewise = function(*stats, reduction="micro-imagewise")
    assert torch.allclose(imagewise, function(*stats, reduction="macro-imagewise"))
    other = function(*stats, reduction="weighted-imagewise", class_weights=[3.0])
    assert torch.allclose(imagewise, other)


@settings(max_examples=30, deadline=None)
@given(stats=random_stats())
def test_aliases_agree(stats):
    assert torch.equal(M.precision(*stats), M.positive_predictive_value(*stats))
    assert torch.equal(M.recall(*stats), M.sensitivity(*stats))


# --- errors -----------------------------------------------------------------------------------


def test_unknown_reduction_lists_the_valid_ones():
    with pytest.raises(InvalidOptionError) as info:
        M.iou_score(*tensors(TP, FP, FN, TN), reduction="mean")
    for valid in ("'micro'", "'macro-imagewise'", "'weighted-imagewise'", "'none'", "None"):
        assert valid in str(info.value)


@pytest.mark.parametrize("reduction", ["weighted", "weighted-imagewise"])
def test_weighted_reductions_need_class_weights(reduction):
    with pytest.raises(InvalidOptionError, match="needs class_weights"):
        M.f1_score(*tensors(TP, FP, FN, TN), reduction=reduction)


@pytest.mark.parametrize(
    ("weights", "message"),
    [([1.0, 2.0], "one value per class \\(3\\), got 2"), ([1.0, -1.0, 1.0], ">= 0"),
     ([0.0, 0.0, 0.0], "not all be zero"), ([1.0, math.nan, 1.0], "finite")],
)
def test_bad_class_weights(weights, message):
    with pytest.raises(InvalidOptionError, match=message):
        M.iou_score(*tensors(TP, FP, FN, TN), reduction="weighted", class_weights=weights)


def test_class_weights_with_an_unweighted_reduction_warn():
    with pytest.warns(UserWarning, match="only used by the weighted reductions"):
        M.iou_score(*tensors(TP, FP, FN, TN), reduction="macro", class_weights=WEIGHTS)


@pytest.mark.parametrize("zero_division", ["zero", None, True])
def test_bad_zero_division(zero_division):
    with pytest.raises(InvalidOptionError, match="'warn'"):
        M.iou_score(*tensors(TP, FP, FN, TN), zero_division=zero_division)


def test_stats_of_different_shapes():
    tp, fp, fn, tn = tensors(TP, FP, FN, TN)
    with pytest.raises(InvalidTargetError, match="same shape"):
        M.iou_score(tp, fp[:1], fn, tn)
    with pytest.raises(InvalidTargetError, match=r"shape \(N, C\)"):
        M.iou_score(tp[0], fp[0], fn[0], tn[0], reduction="macro")


def test_bad_beta():
    with pytest.raises(InvalidOptionError, match="beta"):
        M.fbeta_score(*tensors(TP, FP, FN, TN), beta="2")


@pytest.mark.parametrize("beta", [-1, -0.5, 0, 0.0, NAN, math.inf, True, None, "2"])
def test_beta_must_be_a_positive_finite_number(beta):
    with pytest.raises(InvalidOptionError, match=r"beta must be a finite number > 0") as info:
        M.fbeta_score(*tensors(TP, FP, FN, TN), beta=beta)
    assert repr(beta) in str(info.value)


def test_beta_may_be_an_int():
    stats = tensors(TP, FP, FN, TN)
    assert torch.equal(M.fbeta_score(*stats, beta=2), M.fbeta_score(*stats, beta=2.0))


def test_a_misspelled_reduction_gets_a_did_you_mean():
    with pytest.raises(InvalidOptionError, match="Did you mean 'macro-imagewise'"):
        M.iou_score(*tensors(TP, FP, FN, TN), reduction="macro_imagewise")
    with pytest.raises(InvalidOptionError, match="unknown reduction \\['macro'\\]"):
        M.iou_score(*tensors(TP, FP, FN, TN), reduction=["macro"])


@pytest.mark.parametrize("zero_division", [NAN, math.inf, -math.inf, "Warn"])
def test_zero_division_must_be_finite_or_warn(zero_division):
    with pytest.raises(InvalidOptionError, match=r"finite number.*'warn'"):
        M.iou_score(*tensors(TP, FP, FN, TN), zero_division=zero_division)


def test_zero_division_typo_gets_a_did_you_mean():
    with pytest.raises(InvalidOptionError, match="Did you mean 'warn'"):
        M.iou_score(*tensors(TP, FP, FN, TN), zero_division="wran")


@pytest.mark.parametrize("weights", [["a", "b", "c"], "123", [[1.0, 2.0], [3.0]]])
def test_class_weights_that_are_not_numbers(weights):
    with pytest.raises(InvalidOptionError, match="class_weights must be a list or tensor of 3"):
        M.iou_score(*tensors(TP, FP, FN, TN), reduction="weighted", class_weights=weights)


@pytest.mark.parametrize("bad", [None, "tp", object(), torch.ones(2, 3, dtype=torch.bool)])
def test_counts_that_are_not_count_tensors(bad):
    tp, fp, _, tn = tensors(TP, FP, FN, TN)
    with pytest.raises(InvalidTargetError, match="fn must be a tensor of counts"):
        M.iou_score(tp, fp, bad, tn)


@pytest.mark.parametrize("reduction", ["macro-imagewise", "micro-imagewise",
                                       "weighted-imagewise"])
def test_imagewise_mean_over_no_image_is_zero_division(reduction):
    empty = torch.zeros(0, 3, dtype=torch.long)
    options = {"class_weights": WEIGHTS} if reduction.startswith("weighted") else {}
    value = M.iou_score(empty, empty, empty, empty, reduction=reduction, zero_division=0.25,
                        **options)
    assert value.dim() == 0 and value.item() == 0.25
    with pytest.warns(M.UndefinedMetricWarning):
        warned = M.iou_score(empty, empty, empty, empty, reduction=reduction,
                             zero_division="warn", **options)
    assert warned.item() == 0.0
