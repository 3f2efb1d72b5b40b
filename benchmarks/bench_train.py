"""segcore-train's training step vs a plain hand-written SMP 0.6.0 loop: images per second.

Run with ``nox -s bench`` (or ``python benchmarks/bench_train.py --steps 10``). Each side
trains a Unet/resnet18 (random initialisation, 4 classes) on the same in-memory batches (batch
8, 3x128x128), on CPU with 2 threads, each in its own process (as each would run):

* segcore: ``segcore_train.trainer.TrainStep`` built from the default configuration, the
  very code ``segcore train`` runs each step (channels_last, fused AdamW, cosine schedule,
  the dice loss, IoU/F1 counted on the device, no host synchronisation), in a process set up
  as ``segcore train`` sets up its own on CPU (``train.keep_freed_memory``: glibc keeps freed
  memory for the next step, see ``segcore_train.host``);
* SMP: ``smp.Unet`` with ``torch.optim.AdamW`` and ``smp.losses.DiceLoss``, the usual loop
  (``zero_grad``, forward, loss, backward, step, ``loss.item()`` for the running loss), in a
  plain process;
* SMP, kept memory: the same SMP loop in a process with the same allocator setting, to show
  how much of the difference is the allocator (an SMP user can get it with jemalloc or
  glibc's ``MALLOC_*`` variables);
* segcore, bf16 (only on a CPU that computes bfloat16 natively): the segcore side with
  ``train.amp = "bf16"``, what ``"auto"`` picks there; other arithmetic, so it is printed for
  information and kept out of the ratio.

The processes take turns (interleaved rounds, medians; one runs while the others wait), so
machine load affects all alike. Then, unless ``--no-data``, one epoch of ``train()`` on a
synthetic dataset folder (workers=2) reports the share of step time spent waiting for data
(the goal is under 10%).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import multiprocessing
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import torch
from segcore_train.host import native_bf16

HAS_SMP = importlib.util.find_spec("segmentation_models_pytorch") is not None
CLASSES = 4


def _batches(count: int, batch: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, 3, size, size, generator=generator),
             torch.randint(0, CLASSES, (batch, size, size), generator=generator))
            for _ in range(count)]


def segcore_step(batches: list[tuple[torch.Tensor, torch.Tensor]],
                 amp: str = "no") -> Callable[[], None]:
    from segcore_train.config import RunConfig
    from segcore_train.trainer import TrainStep

    import segcore

    torch.manual_seed(0)
    model = segcore.build("unet", encoder="resnet18", classes=CLASSES).train()
    # every other key: the defaults
    config = RunConfig.from_dict({"data": {"root": "unused"}, "train": {"amp": amp}})
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


def _side(name: str, batch: int, size: int) -> Callable[[], None]:
    """The step function of one side, in the process that runs it."""
    batches = _batches(4, batch, size)
    if name == "segcore":
        return segcore_step(batches)
    if name == "segcore, bf16":
        return segcore_step(batches, amp="bf16")
    if name == "smp, kept memory":
        from segcore_train.host import keep_freed_memory

        keep_freed_memory()
    return smp_step(batches)


def _serve(connection: Connection, name: str, batch: int, size: int, threads: int) -> None:
    """Child process: build one side, warm it up, then time ``steps`` steps per request."""
    torch.set_num_threads(threads)
    function = _side(name, batch, size)
    for _ in range(2):  # warm-up: allocator, oneDNN primitives
        function()
    connection.send("ready")
    while (steps := connection.recv()) is not None:
        started = time.perf_counter()
        for _ in range(steps):
            function()
        connection.send(time.perf_counter() - started)


def step_throughput(steps: int, rounds: int, batch: int, size: int, threads: int,
                    bf16: bool = False) -> dict[str, float]:
    """Images per second of each side: median over rounds of ``steps`` steps."""
    names = ["segcore", *(["smp", "smp, kept memory"] if HAS_SMP else []),
             *(["segcore, bf16"] if bf16 else [])]
    context = multiprocessing.get_context("spawn")
    sides = {}
    try:
        for name in names:
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, name, batch, size, threads))
            process.start()
            sides[name] = (process, parent)
            if parent.recv() != "ready":
                raise RuntimeError(f"the {name} process did not start")
        samples: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(rounds):
            for name in names if round_index % 2 == 0 else names[::-1]:
                connection = sides[name][1]
                connection.send(steps)
                samples[name].append(steps * batch / connection.recv())
    finally:
        for process, connection in sides.values():
            if process.is_alive():
                connection.send(None)
            process.join()
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

    bf16 = native_bf16("cpu")
    rates = step_throughput(arguments.steps, arguments.rounds, arguments.batch, arguments.size,
                            arguments.threads, bf16=bf16)
    print(f"training throughput, Unet/resnet18, batch {arguments.batch}, "
          f"{arguments.size}x{arguments.size}, CPU, {arguments.threads} threads (images/s):")
    print(f"  {'segcore-train':<32} {rates['segcore']:8.1f}")
    if "smp" in rates:
        kept = rates["smp, kept memory"]
        print(f"  {'SMP 0.6.0 loop':<32} {rates['smp']:8.1f}")
        print(f"  {'SMP 0.6.0 loop, kept memory':<32} {kept:8.1f}")
        print(f"  ratio {rates['segcore'] / rates['smp']:.2f}x (goal >= 1.2x); against the SMP "
              f"loop with the same allocator setting {rates['segcore'] / kept:.2f}x")
    else:
        print(f"  {'SMP 0.6.0 loop':<32} not installed")
    if bf16:
        print(f"  {'segcore-train, train.amp=bf16':<32} {rates['segcore, bf16']:8.1f}  (this "
              "CPU computes bfloat16 natively: what train.amp = \"auto\" picks; other "
              "arithmetic, not compared with the float32 loops)")
    if not arguments.no_data:
        rate, share = data_pipeline(64, arguments.size, arguments.batch, workers=2)
        print(f"train() on 64 synthetic images, workers=2: {rate:.1f} images/s, "
              f"data time {100 * share:.1f}% of the epoch (goal < 10%)")


if __name__ == "__main__":
    main()
