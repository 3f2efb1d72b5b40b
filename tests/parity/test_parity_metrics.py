"""Parity of segcore-metrics with SMP 0.6.0 (``segmentation_models_pytorch.metrics``).

``get_stats`` in every mode (thresholds, ignore_index) must give the same counts, and every
score with every reduction the same value within 1e-5 on random inputs.

Where SMP crashes on a valid configuration or computes something other than its documentation
says, the test compares segcore with a computation by hand (or with SMP applied to an
equivalent input it handles) and says why in a comment. These cases are listed in
docs/metrics.md ("Differences from SMP").
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
M = pytest.importorskip("segcore_metrics")

SMP = smp.metrics
METRICS = sorted(M.METRICS)
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def assert_same_stats(ours, theirs):
    for name, a, b in zip(("tp", "fp", "fn", "tn"), ours, theirs):
        assert torch.equal(a, b.to(a.dtype)), (name, a, b)


def multiclass_batch(seed, classes=4, images=6, ignore_index=None, shape=(8, 8)):
    """Random predictions and targets where some classes are absent from some images."""
    generator = torch.Generator().manual_seed(seed)
    output = torch.randint(0, classes, (images, *shape), generator=generator)
    target = torch.randint(0, classes, (images, *shape), generator=generator)
    # images 0 and 1 only contain (and predict) classes 0 and 1: 0/0 scores for the others
    output[:2] %= 2
    target[:2] %= 2
    if ignore_index is not None:
        target[torch.rand(target.shape, generator=generator) < 0.2] = ignore_index
    return output, target


def label_batch(seed, classes, images=5, shape=(6, 7)):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(images, classes, *shape, generator=generator)
    target = torch.randint(0, 2, (images, classes, *shape), generator=generator)
    target[0] = 0  # an image with no positive pixel
    scores[0] *= 0.2
    return scores, target


# --- get_stats --------------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [2, 5, 21, 70])  # 70: the O(C) counting path
@pytest.mark.parametrize("ignore_index", [None, 255, -1])
def test_get_stats_multiclass(classes, ignore_index):
    output, target = multiclass_batch(classes, classes, ignore_index=ignore_index)
    ours = M.get_stats(output, target, "multiclass", num_classes=classes,
                       ignore_index=ignore_index)
    theirs = SMP.get_stats(output, target, "multiclass", num_classes=classes,
                           ignore_index=ignore_index)
    assert_same_stats(ours, theirs)


def test_get_stats_multiclass_volumes():
    output, target = multiclass_batch(3, classes=3, images=2, ignore_index=255, shape=(3, 4, 5))
    assert_same_stats(
        M.get_stats(output, target, "multiclass", num_classes=3, ignore_index=255),
        SMP.get_stats(output, target, "multiclass", num_classes=3, ignore_index=255),
    )


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
@pytest.mark.parametrize("threshold", [None, 0.5, 0.3, 1.0])
def test_get_stats_binary_and_multilabel(mode, threshold):
    # SMP also thresholds the target; for 0/1 targets that changes nothing when 0 < threshold
    # <= 1, so these thresholds compare like for like (threshold <= 0 is tested further down).
    scores, target = label_batch(7, 1 if mode == "binary" else 3)
    output = scores if threshold is not None else (scores > 0.5).long()
    assert_same_stats(M.get_stats(output, target, mode, threshold=threshold),
                      SMP.get_stats(output, target, mode, threshold=threshold))


# --- every score x every reduction ------------------------------------------------------------

# "weighted-imagewise" is compared by hand below (SMP divides it by the number of classes).
REDUCTIONS = ["micro", "macro", "weighted", "micro-imagewise", "macro-imagewise", "none", None]


def call(module, name, stats, **options):
    function = getattr(module, name)
    if name == "fbeta_score":
        options["beta"] = 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero_division="warn" warns in both libraries
        return function(*stats, **options)


@pytest.mark.parametrize(
    ("mode", "zero_division"),
    list(itertools.product(["multiclass", "multilabel", "binary"], [1.0, 0.0, "warn"])),
)
@pytest.mark.parametrize("name", METRICS)
def test_every_score_and_reduction(name, mode, zero_division):
    if mode == "multiclass":
        output, target = multiclass_batch(11, classes=4, ignore_index=255)
        stats = M.get_stats(output, target, mode, num_classes=4, ignore_index=255)
    else:
        scores, target = label_batch(5, 1 if mode == "binary" else 4)
        stats = M.get_stats(scores, target, mode, threshold=0.5)
    classes = stats[0].shape[1]
    for reduction in REDUCTIONS:
        options = {"reduction": reduction, "zero_division": zero_division}
        if reduction == "weighted":
            options["class_weights"] = [0.5, 1.0, 2.0, 4.0][:classes]
        ours = call(M, name, stats, **options)
        theirs = call(SMP, name, stats, **options)
        assert ours.shape == theirs.shape, reduction
        torch.testing.assert_close(ours, theirs, equal_nan=False, msg=reduction, **TOLERANCE)


# --- where SMP crashes or departs from its documentation: compared by hand --------------------


@pytest.mark.parametrize("name", ["iou_score", "f1_score", "accuracy", "specificity"])
def test_weighted_imagewise_is_the_documented_weighted_mean(name):
    # Documented: "compute weighted average score on each image over labels and average image
    # scores over dataset". SMP 0.6.0 computes mean_c(w_c * mean_n(score)) with w normalized to
    # sum 1, i.e. that weighted average divided by the number of classes C. segcore follows the
    # documentation; the check below also pins SMP's result to ours / C.
    output, target = multiclass_batch(2, classes=4, ignore_index=255)
    stats = M.get_stats(output, target, "multiclass", num_classes=4, ignore_index=255)
    weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    per_image_class = call(M, name, stats, reduction=None)  # (N, C), parity-tested above
    by_hand = (per_image_class * weights / weights.sum()).sum(1).mean()
    ours = call(M, name, stats, reduction="weighted-imagewise", class_weights=weights.tolist())
    torch.testing.assert_close(ours, by_hand, **TOLERANCE)
    theirs = call(SMP, name, stats, reduction="weighted-imagewise",
                  class_weights=weights.tolist())
    torch.testing.assert_close(theirs * 4, ours, **TOLERANCE)


def test_weighted_imagewise_with_one_class_agrees_with_smp():
    # With C = 1 SMP's division by C is a no-op, so the two agree exactly.
    scores, target = label_batch(3, 1)
    stats = M.get_stats(scores, target, "binary", threshold=0.5)
    for name in METRICS:
        torch.testing.assert_close(
            call(M, name, stats, reduction="weighted-imagewise", class_weights=[2.0]),
            call(SMP, name, stats, reduction="weighted-imagewise", class_weights=[2.0]),
            **TOLERANCE,
        )


def test_micro_fills_zero_division_too():
    # SMP 0.6.0 does not apply zero_division to the "micro" reduction and returns NaN when the
    # micro score is 0/0 (here: an empty mask predicted empty, IoU = 0 / 0). segcore applies
    # zero_division in every reduction, as documented ("the value to return when there is a
    # zero division").
    output = target = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    stats = M.get_stats(output, target, "binary")
    assert torch.isnan(SMP.iou_score(*stats, reduction="micro"))
    assert float(M.iou_score(*stats, reduction="micro")) == 1.0
    assert float(M.iou_score(*stats, reduction="micro", zero_division=0.0)) == 0.0


def test_macro_ignores_class_weights():
    # SMP 0.6.0 multiplies macro scores by the normalized class_weights and then takes the
    # *mean* (the weighted mean divided by C), although "macro" is documented as the plain
    # average that "does not take label imbalance into account". segcore's macro is the plain
    # mean and warns that class_weights are only used by the weighted reductions.
    output, target = multiclass_batch(4, classes=3)
    stats = M.get_stats(output, target, "multiclass", num_classes=3)
    per_class = M.iou_score(*(value.sum(0) for value in stats))
    with pytest.warns(UserWarning, match="weighted reductions"):
        ours = M.iou_score(*stats, reduction="macro", class_weights=[1.0, 2.0, 3.0])
    torch.testing.assert_close(ours, per_class.mean(), **TOLERANCE)
    torch.testing.assert_close(ours, SMP.iou_score(*stats, reduction="macro"), **TOLERANCE)


def test_per_class_thresholds():
    # The documented type of threshold is Optional[float, List[float]], but SMP 0.6.0 raises
    # TypeError ("'>=' not supported between 'Tensor' and 'list'") for a list. Reference: SMP on
    # each class separately with its scalar threshold.
    scores, target = label_batch(9, 3)
    thresholds = [0.2, 0.5, 0.8]
    with pytest.raises(TypeError):
        SMP.get_stats(scores, target, "multilabel", threshold=thresholds)
    ours = M.get_stats(scores, target, "multilabel", threshold=thresholds)
    per_class = [
        SMP.get_stats(scores[:, c:c + 1], target[:, c:c + 1], "multilabel", threshold=t)
        for c, t in enumerate(thresholds)
    ]
    assert_same_stats(ours, [torch.cat(parts, 1) for parts in zip(*per_class)])


def test_logits_with_threshold_zero():
    # SMP 0.6.0 thresholds the *target* too: with threshold=0.0 (logits), every target pixel
    # (0 or 1) is >= 0 and becomes positive, so all counts are wrong. segcore thresholds only
    # the output. Reference: SMP on the output binarized beforehand.
    scores, target = label_batch(1, 2)
    logits = torch.logit(scores, eps=1e-6)
    ours = M.get_stats(logits, target, "multilabel", threshold=0.0)
    reference = SMP.get_stats((logits >= 0).long(), target, "multilabel")
    assert_same_stats(ours, reference)
    smp_logits = SMP.get_stats(logits, target, "multilabel", threshold=0.0)
    assert int(smp_logits[1].sum() + smp_logits[3].sum()) == 0  # fp = tn = 0: no negative left


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_ignore_index_in_binary_and_multilabel(mode):
    # SMP 0.6.0 raises ValueError for ignore_index outside multiclass mode; segcore supports it.
    # Reference: SMP on each (image, class) with the ignored pixels removed.
    scores, target = label_batch(2, 1 if mode == "binary" else 3)
    target[torch.rand(target.shape, generator=torch.Generator().manual_seed(0)) < 0.25] = -1
    with pytest.raises(ValueError):
        SMP.get_stats(scores, target, mode, threshold=0.5, ignore_index=-1)
    ours = M.get_stats(scores, target, mode, threshold=0.5, ignore_index=-1)
    images, classes = target.shape[:2]
    reference = torch.zeros(4, images, classes, dtype=torch.long)
    for n in range(images):
        for c in range(classes):
            keep = target[n, c] != -1
            cell = SMP.get_stats(scores[n, c][keep].view(1, 1, -1),
                                 target[n, c][keep].view(1, 1, -1), "binary", threshold=0.5)
            reference[:, n, c] = torch.stack([value[0, 0] for value in cell])
    assert_same_stats(ours, reference)


def test_single_class_multiclass_with_ignored_pixels():
    # With num_classes=1 SMP's histc(min=0, max=0) falls back to the data range, which then
    # includes the ignored pixels (set to -1 internally): they are counted. By hand: with one
    # class every kept pixel is a true positive.
    target = torch.tensor([[0, 0, 255, 0], [255, 255, 0, 0]])
    output = torch.zeros_like(target)
    tp, fp, fn, tn = M.get_stats(output, target, "multiclass", num_classes=1, ignore_index=255)
    assert tp.tolist() == [[3], [2]]
    assert fp.sum() == fn.sum() == tn.sum() == 0
    smp_tp = SMP.get_stats(output, target, "multiclass", num_classes=1, ignore_index=255)[0]
    assert smp_tp.tolist() != tp.tolist()
