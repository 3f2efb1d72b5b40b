"""Run by test_metrics_accumulator.py: two gloo processes on this machine merge their counts.

Each rank evaluates its own share of a dataset (different numbers of images per rank, and one
more batch on rank 0); every rank then checks that ``compute`` equals the scores of
``get_stats`` over the whole dataset, which each rank can rebuild from the shared seed.
Started once per rank by ``segcore.distributed_testing.run_ranks`` (which passes the rank, the
world size and a file rendezvous in the environment); each rank prints ``DISTRIBUTED OK`` last.
"""

from __future__ import annotations

import segcore_metrics as M
import torch

from segcore.distributed_testing import process_group

WORLD = 2
CLASSES = 4


def rank_batches(rank: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1234 + rank)
    sizes = [3, 2] if rank == 0 else [1, 2, 2]  # 5 images each, 2 vs 3 batches
    batches = []
    for size in sizes:
        output = torch.randint(0, CLASSES, (size, 6, 7), generator=generator)
        target = torch.randint(0, CLASSES, (size, 6, 7), generator=generator)
        target[torch.rand(target.shape, generator=generator) < 0.2] = 255
        batches.append((output, target))
    return batches


def worker(rank: int) -> None:
    per_image = M.MetricAccumulator("multiclass", num_classes=CLASSES, ignore_index=255)
    totals = M.MetricAccumulator("multiclass", num_classes=CLASSES, ignore_index=255,
                                 per_image=False)
    local_only = M.MetricAccumulator("multiclass", num_classes=CLASSES, ignore_index=255,
                                     distributed=False)
    for output, target in rank_batches(rank):
        for accumulator in (per_image, totals, local_only):
            accumulator.update(output, target)

    everything = [batch for r in range(WORLD) for batch in rank_batches(r)]
    output = torch.cat([o for o, _ in everything])
    target = torch.cat([t for _, t in everything])
    stats = M.get_stats(output, target, "multiclass", num_classes=CLASSES, ignore_index=255)
    weights = [1.0, 2.0, 3.0, 4.0]
    for reduction in M.REDUCTIONS:
        options = {"class_weights": weights} if reduction and "weighted" in reduction else {}
        expected = M.iou_score(*stats, reduction=reduction, **options)
        got = per_image.compute("iou_score", reduction=reduction, **options)
        assert torch.allclose(got, expected), (rank, reduction, got, expected)
        if reduction in ("micro", "macro", "weighted"):
            got = totals.compute("iou_score", reduction=reduction, **options)
            assert torch.allclose(got, expected), (rank, reduction, got, expected)
    merged = per_image.stats()
    assert merged[0].shape == (10, CLASSES)
    assert all(torch.equal(a, b) for a, b in zip(merged, stats))
    assert local_only.stats()[0].shape == (5, CLASSES)
    several = per_image.compute(["f1_score", "accuracy"], reduction="macro")
    assert set(several) == {"f1_score", "accuracy"}
    assert torch.allclose(several["f1_score"], M.f1_score(*stats, reduction="macro"))


if __name__ == "__main__":
    with process_group() as (rank, world_size):
        assert world_size == WORLD, world_size
        worker(rank)
    print("DISTRIBUTED OK")
