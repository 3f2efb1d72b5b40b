"""MetricAccumulator: batches add up to the whole dataset, in one process and across two."""

from __future__ import annotations

from pathlib import Path

import pytest
import segcore_metrics as M
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from segcore.distributed_testing import assert_ranks_succeeded, run_ranks
from segcore.errors import (
    InvalidOptionError,
    InvalidTargetError,
    UnknownNameError,
    UnknownOptionError,
)

WEIGHTS = [1.0, 3.0, 0.5]


def random_batches(seed, sizes, classes=3, mode="multiclass"):
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for size in sizes:
        if mode == "multiclass":
            output = torch.randint(0, classes, (size, 5, 4), generator=generator)
            target = torch.randint(0, classes, (size, 5, 4), generator=generator)
            target[torch.rand(target.shape, generator=generator) < 0.2] = -1
        else:
            output = torch.rand(size, classes, 5, 4, generator=generator)
            target = torch.randint(0, 2, (size, classes, 5, 4), generator=generator)
        batches.append((output, target))
    return batches


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    reduction=st.sampled_from(M.REDUCTIONS),
    name=st.sampled_from(sorted(M.METRICS)),
)
def test_batches_add_up_to_the_concatenation(seed, sizes, reduction, name):
    accumulator = M.MetricAccumulator("multiclass", num_classes=3, ignore_index=-1)
    batches = random_batches(seed, sizes)
    for output, target in batches:
        accumulator.update(output, target)
    output = torch.cat([o for o, _ in batches])
    target = torch.cat([t for _, t in batches])
    stats = M.get_stats(output, target, "multiclass", num_classes=3, ignore_index=-1)
    options = {"class_weights": WEIGHTS} if reduction and "weighted" in reduction else {}
    expected = M.METRICS[name](*stats, reduction=reduction, **options)
    assert torch.allclose(accumulator.compute(name, reduction=reduction, **options), expected,
                          equal_nan=True)
    assert accumulator.num_images == sum(sizes)


@pytest.mark.parametrize("reduction", ["micro", "macro", "weighted"])
def test_totals_only_mode_gives_the_same_dataset_scores(reduction):
    batches = random_batches(0, [2, 1, 3], mode="multilabel")
    full = M.MetricAccumulator("multilabel", threshold=0.5)
    totals = M.MetricAccumulator("multilabel", threshold=0.5, per_image=False)
    for output, target in batches:
        full.update(output, target)
        totals.update(output, target)
    options = {"class_weights": WEIGHTS} if reduction == "weighted" else {}
    assert torch.allclose(full.compute("f1_score", reduction=reduction, **options),
                          totals.compute("f1_score", reduction=reduction, **options))
    assert totals.stats()[0].shape == (1, 3)
    with pytest.raises(InvalidOptionError, match="per_image=True"):
        totals.compute("f1_score", reduction="macro-imagewise")


def test_update_returns_the_batch_stats_and_reset_forgets():
    accumulator = M.MetricAccumulator("binary", threshold=0.5)
    output = torch.tensor([[[0.9, 0.1]]])
    target = torch.tensor([[[1, 1]]])
    tp, fp, fn, tn = accumulator.update(output, target)
    assert (tp.item(), fp.item(), fn.item(), tn.item()) == (1, 0, 1, 0)
    accumulator.update(output, target)
    assert float(accumulator.compute("recall")) == 0.5
    assert accumulator.num_images == 2
    accumulator.reset()
    assert accumulator.num_images == 0
    assert accumulator.stats()[0].shape == (0, 1)
    accumulator.update(torch.tensor([[[0.9, 0.9]]]), target)
    assert float(accumulator.compute("recall")) == 1.0


def test_compute_options_lists_and_callables():
    accumulator = M.MetricAccumulator("multiclass", num_classes=3, ignore_index=-1)
    for output, target in random_batches(1, [2, 2]):
        accumulator.update(output, target)
    stats = accumulator.stats()
    scores = accumulator.compute(["iou_score", "fbeta_score"], reduction="macro", beta=2.0)
    assert torch.allclose(scores["iou_score"], M.iou_score(*stats, reduction="macro"))
    assert torch.allclose(scores["fbeta_score"],
                          M.fbeta_score(*stats, beta=2.0, reduction="macro"))
    assert torch.allclose(accumulator.compute(M.accuracy, reduction=None), M.accuracy(*stats))
    assert "num_classes=3" in repr(accumulator)


def test_accumulator_errors():
    with pytest.raises(InvalidOptionError, match="num_classes"):
        M.MetricAccumulator("multiclass")
    with pytest.raises(InvalidOptionError, match="'binary', 'multiclass', 'multilabel'"):
        M.MetricAccumulator("segmentation")
    accumulator = M.MetricAccumulator("multilabel", threshold=0.5)
    accumulator.update(torch.rand(1, 3, 2, 2), torch.ones(1, 3, 2, 2, dtype=torch.long))
    with pytest.raises(InvalidTargetError, match="reset"):
        accumulator.update(torch.rand(1, 2, 2, 2), torch.ones(1, 2, 2, 2, dtype=torch.long))
    with pytest.raises(UnknownNameError, match="iou_score"):
        accumulator.compute("iou")


def test_no_sync_without_an_initialized_process_group():
    accumulator = M.MetricAccumulator("binary")
    accumulator.update(torch.ones(2, 1, 3, dtype=torch.long), torch.ones(2, 1, 3, dtype=torch.long))
    assert accumulator.stats()[0].tolist() == [[3], [3]]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_processes_merge_their_counts(tmp_path):
    # plain processes meeting through a file, single-threaded, generous timeouts, clean exit:
    # see segcore.distributed_testing (benchmarks/soak_distributed.sh runs this under CPU load)
    worker = Path(__file__).with_name("_distributed_worker.py")
    results = run_ranks(worker, 2, tmp_path / "ranks")
    assert_ranks_succeeded(results, expect_stdout="DISTRIBUTED OK")


def test_an_option_no_metric_takes_is_an_error():
    accumulator = M.MetricAccumulator("binary")
    accumulator.update(torch.ones(1, 1, 2, dtype=torch.long), torch.ones(1, 1, 2, dtype=torch.long))
    with pytest.raises(InvalidOptionError, match="betta"):
        accumulator.compute(["iou_score", "fbeta_score"], betta=2.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(mode="binary", threshold="0.5"), "threshold must be a finite number"),
        (dict(mode="binary", ignore_index=1), "valid binary label"),
        (dict(mode="multiclass", num_classes=0), "num_classes must be >= 1"),
        (dict(mode="multiclass", num_classes=3, threshold=0.5), "not used in 'multiclass'"),
        (dict(mode="multiclass", num_classes=3, ignore_index=2), "valid class index"),
        (dict(mode="binary", per_image="no"), "per_image must be True or False"),
        (dict(mode="binary", distributed=None), "distributed must be True or False"),
    ],
)
def test_accumulator_checks_its_options_when_created(options, message):
    # not at the first update, after a whole validation loop has started
    with pytest.raises(InvalidOptionError, match=message):
        M.MetricAccumulator(**options)


def test_a_misspelled_metric_option_gets_a_did_you_mean():
    accumulator = M.MetricAccumulator("binary")
    accumulator.update(torch.ones(1, 1, 2, dtype=torch.long), torch.ones(1, 1, 2, dtype=torch.long))
    with pytest.raises(UnknownOptionError, match=r"betta.*Did you mean 'beta'"):
        accumulator.compute("fbeta_score", betta=2.0)
