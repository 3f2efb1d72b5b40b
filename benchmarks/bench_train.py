"""segcore-train's training step vs a plain hand-written SMP 0.6.0 loop: images per second.

Run with ``nox -s bench`` (or ``python benchmarks/bench_train.py --steps 10``). Both sides
train a Unet/resnet18 (random initialisation, 4 classes) on the same in-memory batches (batch
8, 3x128x128), on CPU with 2 threads:

* segcore: ``segcore_train.trainer.TrainStep`` built from the default configuration, the
  very code ``segcore train`` runs each step (channels_last, fused AdamW, cosine schedule,
  the dice loss, IoU/F1 counted on the device, no host synchronisation);
* SMP: ``smp.Unet`` with ``torch.optim.AdamW`` and ``smp.losses.DiceLoss``, the usual loop
  (``zero_grad``, forward, loss, backward, step, ``loss.item()`` for the running loss).

Steps are timed in interleaved rounds (medians), so machine load affects both alike. Then,
unless ``--no-data``, one epoch of ``train()`` on a synthetic dataset folder (workers=2)
reports the share of step time spent waiting for data (the goal is under 10%).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

HAS_SMP = importlib.util.find_spec("segmentation_models_pytorch") is not None
CLASSES = 4


def _batches(count: int, batch: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, 3, size, size, generator=generator),
             torch.randint(0, CLASSES, (batch, size, size), generator=generator))
            for _ in range(count)]


def segcore_step(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
    from segcore_train.config import RunConfig
    from segcore_train.trainer import TrainStep

    import segcore

    torch.manual_seed(0)
    model = segcore.build("unet", encoder="resnet18", classes=CLASSES).train()
    config = RunConfig.from_dict({"data": {"root": "unused"}})  # every other key: the defaults
    step = TrainStep.from_config(config, model, classes=CLASSES, steps_per_epoch=1000)
    position = [0]

    def run() -> None:
        images, masks = batches[position[0] % len(batches)]
        position[0] += 1
        step(images, masks)

    return run


def smp_step(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smp.Unet("resnet18", encoder_weights=None, classes=CLASSES).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_function = smp.losses.DiceLoss("multiclass")
    position = [0]
    running = [0.0]

    def run() -> None:
        images, masks = batches[position[0] % len(batches)]
        position[0] += 1
        optimizer.zero_grad()
        loss = loss_function(model(images), masks)
        loss.backward()
        optimizer.step()
        running[0] += loss.item()

    return run


def step_throughput(steps: int, rounds: int, batch: int, size: int) -> dict[str, float]:
    """Images per second of each side: median over rounds of ``steps`` steps."""
    batches = _batches(4, batch, size)
    functions = {"segcore": segcore_step(batches)}
    if HAS_SMP:
        functions["smp"] = smp_step(batches)
    for function in functions.values():  # warm-up: allocator, oneDNN primitives
        for _ in range(2):
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    order = list(functions.items())
    for round_index in range(rounds):
        for name, function in order if round_index % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            for _ in range(steps):
                function()
            samples[name].append(steps * batch / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in samples.items()}


def data_pipeline(count: int, size: int, batch: int, workers: int) -> tuple[float, float]:
    """One epoch of ``train()`` on a synthetic folder: (images/s, data-time share)."""
    from segcore_train import train, write_synthetic_dataset

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "synth"
        write_synthetic_dataset(root, count=count, size=size, classes=CLASSES, seed=0)
        result = train({
            "data": {"root": str(root), "val_fraction": 0.1},
            "augment": {"size": [size, size]},
            "train": {"epochs": 1, "batch_size": batch, "workers": workers},
            "output": {"run_dir": str(Path(folder) / "run"), "plots": False},
        }, out=io.StringIO())
    row = next(row for row in result.history if row["split"] == "train")
    return row["images_per_second"], row["data_time_share"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="steps per round (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-data", action="store_true",
                        help="skip the data-pipeline epoch (needs tifffile and matplotlib)")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    rates = step_throughput(arguments.steps, arguments.rounds, arguments.batch, arguments.size)
    print(f"training throughput, Unet/resnet18, batch {arguments.batch}, "
          f"{arguments.size}x{arguments.size}, CPU, {arguments.threads} threads (images/s):")
    print(f"  {'segcore-train':<14} {rates['segcore']:8.1f}")
    if "smp" in rates:
        print(f"  {'SMP 0.6.0 loop':<14} {rates['smp']:8.1f}")
        print(f"  ratio {rates['segcore'] / rates['smp']:.2f}x (goal >= 1.2x)")
    else:
        print(f"  {'SMP 0.6.0 loop':<14} not installed")
    if not arguments.no_data:
        rate, share = data_pipeline(64, arguments.size, arguments.batch, workers=2)
        print(f"train() on 64 synthetic images, workers=2: {rate:.1f} images/s, "
              f"data time {100 * share:.1f}% of the epoch (goal < 10%)")


if __name__ == "__main__":
    main()
