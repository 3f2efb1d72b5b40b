"""Benchmark: ``get_stats`` + ``iou_score`` on a multiclass batch, segcore-metrics vs SMP 0.6.0.

    python benchmarks/bench_metrics.py [--runs 5] [--threads 1]

The batch is the prediction of a 21-class model on 8 images of 256x256: logits (8, 21, 256, 256)
reduced to class indices ``output = logits.argmax(1)`` (8, 256, 256) before timing, as both APIs
take class indices; ``target`` holds random class indices. Two cases are measured: no ignored
pixels, and 10% of the target set to ``ignore_index=255``.

Time: median wall time of ``--runs`` calls after one warm-up call, with one torch thread by
default (``--threads 0`` keeps torch's default). These calls take a few milliseconds; on a
shared or busy machine, multi-threaded runs of such short kernels are dominated by threads
waiting for each other (we saw 4 ms or 900 ms for the same call on 2 busy cores), so one
thread gives numbers that can be compared.

Peak memory: the highest total size of the torch tensors alive during one call, above what
existed before it. Measured with ``torch.profiler`` (``profile_memory=True``), which records
every allocation and free of torch's CPU allocator with a timestamp; the running sum of those
events gives the peak. This counts tensor memory only (not Python objects or allocator slack),
the same way for both libraries; ``tracemalloc`` cannot see torch's CPU tensors at all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

# Quiet the profiler's own log lines (it is used only to read tensor allocations).
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

import torch
from torch.profiler import ProfilerActivity, profile

NUM_CLASSES = 21
BATCH, HEIGHT, WIDTH = 8, 256, 256
IGNORE_INDEX = 255


def make_batch(ignored_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(BATCH, NUM_CLASSES, HEIGHT, WIDTH, generator=generator)
    output = logits.argmax(1)
    del logits
    target = torch.randint(0, NUM_CLASSES, (BATCH, HEIGHT, WIDTH), generator=generator)
    if ignored_fraction:
        mask = torch.rand(target.shape, generator=generator) < ignored_fraction
        target[mask] = IGNORE_INDEX
    return output, target


def median_seconds(call: Callable[[], object], runs: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_tensor_bytes(call: Callable[[], object]) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    events = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]"
    )
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def pipeline(metrics: object, output: torch.Tensor, target: torch.Tensor,
             ignore_index: int | None) -> Callable[[], torch.Tensor]:
    def call() -> torch.Tensor:
        tp, fp, fn, tn = metrics.get_stats(
            output, target, mode="multiclass", num_classes=NUM_CLASSES, ignore_index=ignore_index
        )
        return metrics.iou_score(tp, fp, fn, tn, reduction="micro")

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed calls per case (median)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import segcore_metrics

    try:
        import segmentation_models_pytorch as smp

        libraries = {"segcore-metrics": segcore_metrics, f"SMP {smp.__version__}": smp.metrics}
    except ImportError:
        smp = None
        libraries = {"segcore-metrics": segcore_metrics}

    print(
        f"get_stats + iou_score(micro), multiclass, output {BATCH}x{HEIGHT}x{WIDTH} "
        f"(argmax of {BATCH}x{NUM_CLASSES}x{HEIGHT}x{WIDTH}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), median of {args.runs} runs"
    )
    if smp is None:
        print("SMP not installed: segcore-metrics only")
    print(f"{'case':<22}{'library':<18}{'time (ms)':>12}{'peak tensor memory (MiB)':>27}")
    for case, fraction, ignore_index in (
        ("no ignore_index", 0.0, None),
        ("10% ignore_index=255", 0.1, IGNORE_INDEX),
    ):
        output, target = make_batch(fraction)
        results = {}
        for name, metrics in libraries.items():
            call = pipeline(metrics, output, target, ignore_index)
            results[name] = call()
            seconds = median_seconds(call, args.runs)
            peak = peak_tensor_bytes(call)
            print(f"{case:<22}{name:<18}{seconds * 1e3:>12.1f}{peak / 2**20:>27.2f}")
        values = [float(value) for value in results.values()]
        if max(values) - min(values) > 1e-6:
            print(f"  WARNING: the libraries disagree: {dict(zip(results, values))}")


if __name__ == "__main__":
    main()
