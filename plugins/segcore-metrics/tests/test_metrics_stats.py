"""get_stats: hand-counted cases, a pixel-by-pixel reference on random inputs, every error."""

from __future__ import annotations

import pytest
import segcore_metrics.functional as functional
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from segcore_metrics import get_stats

from segcore.errors import InvalidOptionError, InvalidTargetError


def as_lists(stats):
    return [value.tolist() for value in stats]


def reference_stats(output, target, mode, num_classes=None, ignore_index=None, threshold=None):
    """Count every pixel in Python from the definitions (slow, obviously right)."""
    if mode == "multiclass":
        classes = num_classes
        images = output.reshape(output.shape[0], -1).tolist()
        labels = target.reshape(target.shape[0], -1).tolist()
        result = [[[0] * classes for _ in images] for _ in range(4)]
        for n, (predicted_row, label_row) in enumerate(zip(images, labels)):
            for predicted, label in zip(predicted_row, label_row):
                if label == ignore_index:
                    continue
                for c in range(classes):
                    p, t = predicted == c, label == c
                    key = 0 if p and t else 1 if p else 2 if t else 3
                    result[key][n][c] += 1
        return result
    batch, classes = output.shape[:2]
    out = output.reshape(batch, classes, -1).tolist()
    lab = target.reshape(batch, classes, -1).tolist()
    result = [[[0] * classes for _ in range(batch)] for _ in range(4)]
    for n in range(batch):
        for c in range(classes):
            limit = None
            if threshold is not None:
                limit = threshold[c] if isinstance(threshold, list) else threshold
            for value, label in zip(out[n][c], lab[n][c]):
                if label == ignore_index:
                    continue
                p = value >= limit if limit is not None else value == 1
                t = label == 1
                key = 0 if p and t else 1 if p else 2 if t else 3
                result[key][n][c] += 1
    return result


# --- hand-counted cases -----------------------------------------------------------------------


def test_multiclass_counts_by_hand():
    output = torch.tensor([[0, 1, 1, 2]])
    target = torch.tensor([[0, 1, 2, 2]])
    # class 0: hit at pixel 0; class 1: hit at 1, false alarm at 2; class 2: hit at 3, missed at 2
    assert as_lists(get_stats(output, target, "multiclass", num_classes=3)) == [
        [[1, 1, 1]], [[0, 1, 0]], [[0, 0, 1]], [[3, 2, 2]],
    ]


def test_multiclass_ignore_index_drops_pixels_from_every_count():
    output = torch.tensor([[0, 1, 1, 2]])
    target = torch.tensor([[0, 1, 255, 2]])  # the wrong pixel is ignored
    tp, fp, fn, tn = get_stats(output, target, "multiclass", num_classes=3, ignore_index=255)
    assert as_lists((tp, fp, fn, tn)) == [[[1, 1, 1]], [[0, 0, 0]], [[0, 0, 0]], [[2, 2, 2]]]
    assert (tp + fp + fn + tn).tolist() == [[3, 3, 3]]


def test_multiclass_perfect_all_wrong_and_empty_class():
    target = torch.tensor([[[0, 0], [1, 1]], [[1, 1], [1, 1]]])  # class 2 never appears
    tp, fp, fn, tn = get_stats(target.clone(), target, "multiclass", num_classes=3)
    assert tp.tolist() == [[2, 2, 0], [0, 4, 0]]
    assert fp.sum() == 0 and fn.sum() == 0
    assert tn.tolist() == [[2, 2, 4], [4, 0, 4]]

    wrong = (target + 1) % 2  # 0 <-> 1
    tp, fp, fn, tn = get_stats(wrong, target, "multiclass", num_classes=3)
    assert tp.sum() == 0
    assert fp.tolist() == [[2, 2, 0], [4, 0, 0]]
    assert fn.tolist() == [[2, 2, 0], [0, 4, 0]]
    assert tn.tolist() == [[0, 0, 4], [0, 0, 4]]


def test_binary_threshold_and_integer_output():
    probabilities = torch.tensor([[[0.9, 0.2, 0.6, 0.4]]])
    target = torch.tensor([[[1, 0, 0, 1]]])
    expected = [[[1]], [[1]], [[1]], [[1]]]
    assert as_lists(get_stats(probabilities, target, "binary", threshold=0.5)) == expected
    assert as_lists(get_stats(torch.tensor([[[1, 0, 1, 0]]]), target, "binary")) == expected
    assert as_lists(get_stats(torch.tensor([[[True, False, True, False]]]), target.bool(),
                              "binary")) == expected
    # logits with threshold 0: only the output is thresholded, never the target
    logits = torch.tensor([[[2.0, -1.0, 0.5, -3.0]]])
    assert as_lists(get_stats(logits, target, "binary", threshold=0.0)) == expected


def test_binary_ignore_index():
    output = torch.tensor([[[1, 1, 0, 0]]])
    target = torch.tensor([[[1, -1, -1, 0]]])  # pixels 1 and 2 ignored
    assert as_lists(get_stats(output, target, "binary", ignore_index=-1)) == [
        [[1]], [[0]], [[0]], [[1]],
    ]


def test_multilabel_per_class_threshold():
    output = torch.tensor([[[0.3, 0.6], [0.3, 0.6]]])  # (1, 2 classes, 2 pixels)
    target = torch.tensor([[[0, 1], [1, 1]]])
    tp, fp, fn, tn = get_stats(output, target, "multilabel", threshold=[0.5, 0.2])
    assert as_lists((tp, fp, fn, tn)) == [[[1, 2]], [[0, 0]], [[0, 0]], [[1, 0]]]


def test_stats_are_long_on_the_input_device_and_shape_n_by_c():
    output = torch.randint(0, 4, (3, 5, 6))
    stats = get_stats(output, output, "multiclass", num_classes=4)
    assert all(s.dtype == torch.long and s.shape == (3, 4) for s in stats)
    stats = get_stats(torch.rand(2, 3, 4), torch.zeros(2, 3, 4, dtype=torch.long), "multilabel",
                      threshold=0.5)
    assert all(s.dtype == torch.long and s.shape == (2, 3) for s in stats)


def test_get_stats_does_not_track_gradients():
    scores = torch.rand(2, 1, 4, 4, requires_grad=True)
    stats = get_stats(scores, torch.ones(2, 1, 4, 4, dtype=torch.long), "binary", threshold=0.5)
    assert not any(s.requires_grad for s in stats)


# --- random inputs against the pixel-by-pixel reference ---------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    batch=st.integers(1, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    classes=st.integers(1, 5),
    chunk=st.sampled_from([1, 3, 7, 64, 1 << 16]),
    ignore=st.booleans(),
    confusion=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_multiclass_matches_reference(batch, height, width, classes, chunk, ignore, confusion,
                                      seed):
    generator = torch.Generator().manual_seed(seed)
    output = torch.randint(0, classes, (batch, height, width), generator=generator)
    target = torch.randint(0, classes, (batch, height, width), generator=generator)
    ignore_index = None
    if ignore:
        ignore_index = 255
        target[torch.rand(target.shape, generator=generator) < 0.3] = 255
    # ``chunk`` forces every chunking path: pieces of one image, one image, several images;
    # ``confusion`` both counting methods (confusion matrix or hits/misses + predictions).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(functional, "_CPU_CHUNK", chunk)
        patch.setattr(functional, "_MAX_CONFUSION_CLASSES", 64 if confusion else 0)
        got = get_stats(output, target, "multiclass", num_classes=classes,
                        ignore_index=ignore_index)
    assert as_lists(got) == reference_stats(output, target, "multiclass", classes, ignore_index)


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(["binary", "multilabel"]),
    batch=st.integers(1, 3),
    classes=st.integers(1, 4),
    pixels=st.integers(1, 12),
    kind=st.sampled_from(["int", "float", "per-class"]),
    ignore=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_binary_and_multilabel_match_reference(mode, batch, classes, pixels, kind, ignore, seed):
    classes = 1 if mode == "binary" else classes
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 2, (batch, classes, pixels), generator=generator)
    if kind == "int":
        output, threshold = torch.randint(0, 2, target.shape, generator=generator), None
    else:
        output = torch.rand(target.shape, generator=generator)
        threshold = 0.5 if kind == "float" else torch.rand(classes, generator=generator).tolist()
    ignore_index = None
    if ignore:
        ignore_index = -1
        target[torch.rand(target.shape, generator=generator) < 0.3] = -1
    got = get_stats(output, target, mode, ignore_index=ignore_index, threshold=threshold)
    expected = reference_stats(output, target, mode, ignore_index=ignore_index,
                               threshold=threshold)
    assert as_lists(got) == expected


# --- errors -----------------------------------------------------------------------------------


def long_tensor(*shape):
    return torch.zeros(*shape, dtype=torch.long)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: get_stats(long_tensor(2, 4), long_tensor(2, 4), "multi-class", num_classes=3),
         InvalidOptionError, "'binary', 'multiclass', 'multilabel'"),
        (lambda: get_stats(long_tensor(2, 4), long_tensor(2, 4), "multiclass"),
         InvalidOptionError, "needs num_classes"),
        (lambda: get_stats(long_tensor(2, 4), long_tensor(2, 4), "multiclass", num_classes=0),
         InvalidOptionError, ">= 1"),
        (lambda: get_stats(long_tensor(2, 4), long_tensor(2, 4), "multiclass", num_classes=3,
                           threshold=0.5),
         InvalidOptionError, "argmax"),
        (lambda: get_stats(long_tensor(2, 4), long_tensor(2, 4), "multiclass", num_classes=3,
                           ignore_index=0),
         InvalidOptionError, "outside the classes"),
        (lambda: get_stats(torch.rand(2, 4), long_tensor(2, 4), "multiclass", num_classes=3),
         InvalidTargetError, "argmax(dim=1)"),
        (lambda: get_stats(torch.rand(2, 3, 4), long_tensor(2, 4), "multiclass", num_classes=3),
         InvalidTargetError, "argmax(dim=1)"),
        (lambda: get_stats(long_tensor(2, 4), long_tensor(2, 1, 4), "multiclass", num_classes=3),
         InvalidTargetError, "squeeze(1)"),
        (lambda: get_stats(long_tensor(2, 4), long_tensor(2, 5), "multiclass", num_classes=3),
         InvalidTargetError, "same shape"),
        (lambda: get_stats(long_tensor(2, 4), torch.zeros(2, 4), "multiclass", num_classes=3),
         InvalidTargetError, "integer tensor"),
        (lambda: get_stats(long_tensor(2, 4), torch.tensor([[0, 1, 3, 0], [0, 0, 0, 0]]),
                           "multiclass", num_classes=3),
         InvalidTargetError, "class indices in [0, 3)"),
        (lambda: get_stats(long_tensor(2, 4), torch.tensor([[0, 1, 255, -2], [0, 0, 0, 0]]),
                           "multiclass", num_classes=3, ignore_index=255),
         InvalidTargetError, "e.g. -2"),
        (lambda: get_stats(torch.tensor([[0, 5, 0, 0]]), long_tensor(1, 4), "multiclass",
                           num_classes=3),
         InvalidTargetError, "output holds 1 value"),
        (lambda: get_stats(torch.rand(2, 1, 4), long_tensor(2, 1, 4), "binary"),
         InvalidOptionError, "pass threshold"),
        (lambda: get_stats(torch.rand(2, 3, 4), long_tensor(2, 3, 4), "multilabel"),
         InvalidOptionError, "pass threshold"),
        (lambda: get_stats(torch.rand(2, 3, 4), long_tensor(2, 3, 4), "binary", threshold=0.5),
         InvalidTargetError, "(N, 1, ...)"),
        (lambda: get_stats(long_tensor(2, 4), long_tensor(2, 4), "binary"),
         InvalidTargetError, "(N, 1, ...)"),
        (lambda: get_stats(torch.rand(2), long_tensor(2), "binary", threshold=0.5),
         InvalidTargetError, "unsqueeze(1)"),
        (lambda: get_stats(torch.rand(2, 3, 4), long_tensor(2, 3, 5), "multilabel",
                           threshold=0.5),
         InvalidTargetError, "same shape"),
        (lambda: get_stats(torch.rand(2, 3, 4), long_tensor(2, 3, 4), "multilabel",
                           threshold=[0.5, 0.5]),
         InvalidOptionError, "one per class (3)"),
        (lambda: get_stats(torch.rand(2, 3, 4), long_tensor(2, 3, 4), "multilabel",
                           threshold=0.5, num_classes=4),
         InvalidOptionError, "num_classes=4"),
        (lambda: get_stats(torch.rand(2, 1, 4), long_tensor(2, 1, 4) + 2, "binary",
                           threshold=0.5),
         InvalidTargetError, "only 0 and 1"),
        (lambda: get_stats(long_tensor(2, 1, 4) + 3, long_tensor(2, 1, 4), "binary"),
         InvalidTargetError, "only 0 and 1"),
        (lambda: get_stats(torch.rand(2, 1, 4), long_tensor(2, 1, 4), "binary", threshold=0.5,
                           ignore_index=1),
         InvalidOptionError, "valid binary label"),
        (lambda: get_stats(torch.rand(2, 1, 4), torch.rand(2, 1, 4), "binary", threshold=0.5),
         InvalidTargetError, "target.long()"),
        (lambda: get_stats([[0, 1]], long_tensor(1, 2), "multiclass", num_classes=2),
         InvalidTargetError, "torch.Tensor"),
    ],
)
def test_get_stats_errors_say_what_was_expected(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_errors_are_value_errors_for_smp_compatible_code():
    with pytest.raises(ValueError):
        get_stats(long_tensor(2, 4), long_tensor(2, 4), "multiclass")


@pytest.mark.parametrize(
    ("threshold", "shown"),
    [("0.5", "got '0.5'"), (float("nan"), "got [nan]"), ([0.5, float("inf"), 0.5], "inf"),
     ([], "got no value"), (True, "got True"), ([["a"]], "got [['a']]")],
)
def test_threshold_must_hold_finite_numbers(threshold, shown):
    with pytest.raises(InvalidOptionError, match="threshold must be a finite number") as info:
        get_stats(torch.rand(2, 3, 4), long_tensor(2, 3, 4), "multilabel", threshold=threshold)
    assert shown in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(ignore_index=255.0), "ignore_index must be an int"),
        (dict(ignore_index="255"), "ignore_index must be an int"),
        (dict(num_classes=True), "num_classes must be an int"),
        (dict(num_classes=1.0), "num_classes must be an int"),
        (dict(num_classes=0), "num_classes must be >= 1"),
    ],
)
def test_binary_options_are_checked(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        get_stats(torch.rand(2, 1, 4), long_tensor(2, 1, 4), "binary", threshold=0.5, **options)


def test_a_misspelled_mode_gets_a_did_you_mean():
    with pytest.raises(InvalidOptionError, match="Did you mean 'multilabel'"):
        get_stats(torch.rand(2, 3, 4), long_tensor(2, 3, 4), "multi-label", threshold=0.5)
    with pytest.raises(InvalidOptionError, match="unknown mode None"):
        get_stats(torch.rand(2, 3, 4), long_tensor(2, 3, 4), None, threshold=0.5)


def test_output_and_target_on_different_devices():
    target = torch.zeros(2, 4, dtype=torch.long, device="meta")
    with pytest.raises(InvalidTargetError, match=r"different devices.*target.to\(output.device\)"):
        get_stats(long_tensor(2, 4), target, "multiclass", num_classes=3)
