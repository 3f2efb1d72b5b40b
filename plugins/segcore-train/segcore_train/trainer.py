"""The training loop: ``train(config)`` from Python, ``segcore train CONFIG`` from the shell.

One run, from a ``RunConfig`` (``segcore_train.config``):

1. the dataset is scanned and validated up front (``scan``); the input normalisation comes
   from the encoder's pretrained weights, else from the dataset's mean and std;
2. the model is ``segcore.build(architecture, encoder=..., classes=..., in_channels=...,
   **options)``, the loss ``segcore.build_loss`` (a weighted sum for ``[[loss.terms]]``),
   the optimizer AdamW (fused or foreach where available) with a per-step linear warm-up and
   cosine decay;
3. each step runs under autocast (``train.amp``), in ``channels_last``, with gradient
   accumulation and clipping; the loss and the training counts stay on the device, and the
   host synchronises only every ``train.log_every_steps`` steps (progress bar or log lines);
   on CPU, freed activation memory stays in the process for the next step
   (``train.keep_freed_memory``, ``segcore_train.host``);
4. each validation counts a confusion matrix on the device (per-class IoU and F1 from it)
   (merged over processes), appends to ``metrics.csv``, draws ``curves.png``,
   ``predictions.png`` and ``confusion.png``, and keeps ``best.pt`` / ``best/``
   (``save_pretrained``, with ``normalization.json``) by ``train.best_metric``;
5. ``last.pt`` is written atomically at the end of each epoch (and every
   ``train.checkpoint_every_steps`` optimizer steps): model, optimizer, scheduler, scaler, RNG
   states and the position in the epoch, so ``train(config, resume=RUN)`` continues where the
   run stopped, skipping exactly the batches already done.

Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) the run is data-parallel:
``DistributedDataParallel``, a ``DistributedSampler``, BatchNorm statistics over the global
batch (``train.sync_batchnorm``), metrics merged over processes; only rank 0 writes files and
logs. ``train.batch_size`` is per process.

Example::

    from segcore_train import load_config, train
    result = train(load_config("train.toml", overrides=["train.epochs=5"]))
    print(result.best_value, result.run_dir)
    model = segcore.from_pretrained(result.run_dir / "best")
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import inspect
import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from segcore.errors import InvalidOptionError
from segcore_train.augment import (
    Normalization,
    build_eval_transform,
    build_train_transform,
    resolve_normalization,
)
from segcore_train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from segcore_train.config import LossConfig, RunConfig, dump_config, load_config
from segcore_train.errors import CheckpointError
from segcore_train.host import keep_freed_memory, resolve_amp
from segcore_train.layout import TRAIN_SPLIT, VAL_SPLIT

__all__ = ["StepInfo", "TrainResult", "TrainStep", "build_criterion", "train"]

#: Files of a run folder.
CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.csv"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
BEST_MODEL_DIR = "best"
NORMALIZATION_FILE = "normalization.json"
CHECKPOINT_FORMAT = 1
#: The environment variable with an ``init_method`` for the process group (default ``env://``,
#: what torchrun sets up); ``segcore.distributed_testing.run_ranks`` sets a ``file://`` one.
INIT_METHOD_VARIABLE = "SEGCORE_DIST_INIT_METHOD"


@attrs.frozen
class StepInfo:
    """Where a run is: ``epoch`` (0-based), micro-batches done in it, optimizer steps in all."""

    epoch: int
    steps_done: int
    steps_in_epoch: int
    global_step: int


@attrs.frozen
class TrainResult:
    """What ``train`` returns.

    Attributes:
        run_dir: the run folder (``config.toml``, ``metrics.csv``, ``last.pt``, ``best/``...).
        best_metric: the metric that chose the best model (``train.best_metric``).
        best_value: its best value (``None`` when no validation ran).
        best_epoch: the epoch (1-based) of that value.
        history: the rows of ``metrics.csv`` (empty on ranks other than 0).
        config: the resolved configuration, as written to ``config.toml``.
    """

    run_dir: Path
    best_metric: str
    best_value: float | None
    best_epoch: int | None
    history: list[dict[str, Any]]
    config: RunConfig


# -- distributed ------------------------------------------------------------------------------
@attrs.define
class _Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_choice: str) -> _Distributed:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1)."""
    if dist.is_available() and dist.is_initialized():
        return _Distributed(dist.get_rank(), dist.get_world_size(),
                            int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Distributed()
    if not dist.is_available():
        raise InvalidOptionError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    init_method = os.environ.get(INIT_METHOD_VARIABLE, "env://")
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(minutes=10))
    return _Distributed(rank, world_size, local_rank, initialized_here=True)


def _device(choice: str, distributed: _Distributed) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("train.device = \"cuda\" but CUDA is not available; use "
                                 "\"auto\" or \"cpu\"")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", distributed.local_rank % max(torch.cuda.device_count(), 1))
    return torch.device("cpu")


def _all_reduce(tensor: torch.Tensor, distributed: _Distributed) -> torch.Tensor:
    if distributed.enabled:
        dist.all_reduce(tensor)
    return tensor


class _AllReduceSum(torch.autograd.Function):
    """``all_reduce(SUM)`` with its gradient (the sum of the gradients of every process)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, gradient: torch.Tensor) -> torch.Tensor:
        total = gradient.clone()
        dist.all_reduce(total)
        return total


class _GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover the batches of every process.

    ``torch.nn.SyncBatchNorm`` runs on GPUs only; this one works with any backend (gloo on
    CPU): two differentiable all-reduces per layer (sum and count, then the centred squares).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(input)
        all_reduce = _AllReduceSum.apply
        dims = [0, 2, 3]
        count = torch.full((1,), input.numel() // input.shape[1], dtype=input.dtype,
                           device=input.device)
        totals = all_reduce(torch.cat([input.sum(dims), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centred = input - mean.view(1, -1, 1, 1)
        var = all_reduce(centred.square().sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None and self.running_var is not None
                self.num_batches_tracked.add_(1)
                momentum = (self.momentum if self.momentum is not None
                            else 1.0 / float(self.num_batches_tracked))
                unbiased = var.detach() * (n / torch.clamp(n - 1, min=1))
                self.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased * momentum)
        output = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            output = output * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return output


def _convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` (exactly that type) by ``_GlobalBatchNorm2d``."""
    if type(module) is nn.BatchNorm2d:
        converted = _GlobalBatchNorm2d(module.num_features, module.eps, module.momentum,
                                       module.affine, module.track_running_stats)
        converted.load_state_dict(module.state_dict())
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        replaced = _convert_global_batchnorm(child)
        if replaced is not child:
            setattr(module, name, replaced)
    return module


# -- samplers ---------------------------------------------------------------------------------
class ResumableSampler(Sampler[int]):
    """A ``DistributedSampler`` (shuffled by ``seed + epoch``) that can skip the first batches.

    ``set_epoch(epoch, skip_batches)`` chooses the epoch's order and leaves out the batches a
    resumed run has already done; the order is a function of ``(seed, epoch)`` only.
    """

    def __init__(self, dataset: Any, batch_size: int, *, rank: int, world_size: int,
                 seed: int) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                        shuffle=True, seed=seed, drop_last=False)
        self.batch_size = batch_size
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.skip = skip_batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip:])

    def __len__(self) -> int:
        return max(len(self.inner) - self.skip, 0)


class _ShardSampler(Sampler[int]):
    """Every ``world_size``-th index from ``rank``, no padding (each image counted once)."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# -- loss, optimizer, schedule ----------------------------------------------------------------
def build_criterion(config: LossConfig, *, multilabel: bool,
                    ignore_index: int | None) -> nn.Module:
    """The loss of ``[loss]``: mode (multiclass/multilabel) and ``ignore_index`` filled in
    for the terms that take them; several terms make a ``WeightedSumLoss``."""
    from segcore.objectives import WeightedSumLoss

    mode = "multilabel" if multilabel else "multiclass"
    if not config.terms:
        return _build_loss_term(config.name, config.options, mode, ignore_index, "loss")
    losses: dict[str, nn.Module] = {}
    weights: dict[str, float] = {}
    for index, term in enumerate(config.terms):
        key = term.name if term.name not in losses else f"{term.name}_{index}"
        losses[key] = _build_loss_term(term.name, term.options, mode, ignore_index,
                                       f"loss.terms[{index}]")
        weights[key] = term.weight
    return WeightedSumLoss(losses, weights)


def _build_loss_term(name: str, options: Mapping[str, Any], mode: str,
                     ignore_index: int | None, where: str) -> nn.Module:
    import segcore
    from segcore.objectives import get_loss_class

    try:
        parameters = inspect.signature(get_loss_class(name)).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    arguments = dict(options)
    if "mode" in parameters and "mode" not in arguments:
        arguments["mode"] = mode
    if ignore_index is not None and "ignore_index" not in arguments:
        if parameters and "ignore_index" not in parameters:
            raise InvalidOptionError(
                f"{where}: loss {name!r} cannot leave out pixels, but data.ignore_index = "
                f"{ignore_index}; choose a loss that takes ignore_index (dice, focal, "
                "jaccard, lovasz, soft_ce, tversky...)")
        arguments["ignore_index"] = ignore_index
    try:
        return segcore.build_loss(name, **arguments)
    except InvalidOptionError as error:
        raise type(error)(f"{where}: {error}") from None


def _build_optimizer(config: RunConfig, parameters: list[nn.Parameter],
                     device: torch.device) -> torch.optim.Optimizer:
    settings = config.optimizer
    if settings.name == "sgd":
        return torch.optim.SGD(parameters, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay, foreach=True)
    fused = device.type in ("cuda", "cpu")
    try:
        return torch.optim.AdamW(parameters, lr=settings.lr, betas=settings.betas,
                                 eps=settings.eps, weight_decay=settings.weight_decay,
                                 fused=fused)
    except (RuntimeError, TypeError):  # an older torch without fused AdamW on this device
        return torch.optim.AdamW(parameters, lr=settings.lr, betas=settings.betas,
                                 eps=settings.eps, weight_decay=settings.weight_decay,
                                 foreach=True)


def _lr_factor(config: RunConfig, total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    schedule = config.schedule
    lr = config.optimizer.lr
    floor = min(schedule.min_lr / lr, 1.0)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule.name == "constant":
            return 1.0
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _build_scheduler(config: RunConfig, optimizer: torch.optim.Optimizer,
                     steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    schedule = config.schedule
    warmup = (schedule.warmup_steps if schedule.warmup_steps is not None
              else round(schedule.warmup_epochs * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(config, steps_per_epoch * config.train.epochs, warmup))


class TrainStep:
    """One training step exactly as ``train`` runs it (the benchmark times this).

    ``step(images, masks, boundary=True)`` moves the batch to the device (``channels_last``
    when set), runs forward under autocast and the loss in float32, back-propagates ``loss /
    accumulate`` (through the GradScaler for fp16), counts tp/fp/fn on the device when
    ``train_metrics``, and on a ``boundary`` (the last batch of an accumulation) clips, steps
    the optimizer and the schedule. Returns the detached loss and the ``(3, K)`` counts (or
    ``None``); nothing synchronises with the host: the losses' per-call check of the target
    values (``check_target_values``, one host synchronisation each) is switched off, since
    ``train`` validates every mask up front (``scan``).

    Example::

        step = TrainStep.from_config(config, model, classes=4, steps_per_epoch=100)
        for images, masks in loader:
            loss, counts = step(images, masks)
    """

    def __init__(self, model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: Any, *, classes: int, device: torch.device,
                 multilabel: bool = False, ignore_index: int | None = None,
                 accumulate: int = 1, clip_grad_norm: float | None = None, amp: str = "no",
                 channels_last: bool = True, train_metrics: bool = True,
                 forward: nn.Module | None = None, ddp: Any = None) -> None:
        self.model = model
        self.forward = forward if forward is not None else model
        self.ddp = ddp
        self.criterion = criterion
        for module in criterion.modules():
            if hasattr(module, "check_target_values"):
                module.check_target_values = False
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.classes = classes
        self.device = device
        self.multilabel = multilabel
        self.ignore_index = ignore_index
        self.accumulate = accumulate
        self.clip_grad_norm = clip_grad_norm
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.train_metrics = train_metrics
        self.optimizer_steps = 0

    @classmethod
    def from_config(cls, config: RunConfig, model: nn.Module, *, classes: int,
                    steps_per_epoch: int, device: torch.device | str = "cpu") -> TrainStep:
        """The step of ``config`` for ``model`` (moved to ``device`` and its memory format).

        On CPU with ``train.keep_freed_memory`` the process keeps freed memory from now on, as
        in ``train`` (``segcore_train.host.keep_freed_memory``).
        """
        device = torch.device(device)
        settings = config.train
        _keep_freed_memory_on_cpu(settings.keep_freed_memory, device)
        amp = resolve_amp(settings.amp, device)
        model.to(device)
        if settings.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        criterion = build_criterion(config.loss, multilabel=config.data.multilabel,
                                    ignore_index=config.data.ignore_index).to(device)
        optimizer = _build_optimizer(config, list(model.parameters()), device)
        scheduler = _build_scheduler(config, optimizer, steps_per_epoch)
        return cls(model, criterion, optimizer, scheduler, classes=classes, device=device,
                   multilabel=config.data.multilabel, ignore_index=config.data.ignore_index,
                   accumulate=settings.accumulate, clip_grad_norm=settings.clip_grad_norm,
                   amp=amp, channels_last=settings.channels_last,
                   train_metrics=settings.train_metrics)

    def autocast(self) -> Any:
        """The autocast context of the forward pass (a null context without AMP)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def __call__(self, images: torch.Tensor, masks: torch.Tensor, boundary: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        images = images.to(self.device, non_blocking=True).contiguous(
            memory_format=self.memory_format)
        masks = masks.to(self.device, non_blocking=True)
        sync = (contextlib.nullcontext() if boundary or self.ddp is None
                else self.ddp.no_sync())
        with sync:
            with self.autocast():
                logits = self.forward(images)
            loss = self.criterion(logits.float(), masks)
            scaled = loss / self.accumulate
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
        counts = (_batch_counts(logits.detach(), masks, self.classes, self.multilabel,
                                self.ignore_index) if self.train_metrics else None)
        if boundary:
            self.optimizer_step()
        return loss.detach(), counts

    def optimizer_step(self) -> None:
        """Clip (unscaled), step the optimizer (through the scaler), zero grads, step the lr."""
        clip = self.clip_grad_norm
        if self.scaler is not None:
            if clip is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip, foreach=True)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip, foreach=True)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer_steps += 1


def _keep_freed_memory_on_cpu(wanted: bool, device: torch.device) -> None:
    if wanted and device.type == "cpu":
        keep_freed_memory()


# -- metrics ----------------------------------------------------------------------------------
def _batch_counts(logits: torch.Tensor, target: torch.Tensor, classes: int, multilabel: bool,
                  ignore_index: int | None) -> torch.Tensor:
    """``(3, K)`` tp, fp, fn of one batch, on the device, without a host synchronisation."""
    if multilabel:
        predicted = logits > 0
        truth = target > 0.5
        tp = (predicted & truth).sum((0, 2, 3))
        fp = (predicted & ~truth).sum((0, 2, 3))
        fn = (~predicted & truth).sum((0, 2, 3))
        return torch.stack([tp, fp, fn]).long()
    predicted = logits.argmax(1).reshape(-1)
    truth = target.reshape(-1).long()
    index = truth * classes + predicted
    valid = (truth >= 0) & (truth < classes)
    if ignore_index is not None:
        valid &= truth != ignore_index
    index = torch.where(valid, index, torch.full_like(index, classes * classes))
    confusion = torch.zeros(classes * classes + 1, dtype=torch.long, device=logits.device)
    confusion.scatter_add_(0, index, torch.ones_like(index))
    matrix = confusion[:-1].view(classes, classes)
    tp = matrix.diagonal()
    return torch.stack([tp, matrix.sum(0) - tp, matrix.sum(1) - tp])


def _scores(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> dict[str, Any]:
    """Per-class IoU and F1 (NaN for a class absent from truth and prediction) and means."""
    tp, fp, fn = (t.double().cpu() for t in (tp, fp, fn))
    iou_denominator = tp + fp + fn
    iou = torch.where(iou_denominator > 0, tp / iou_denominator.clamp(min=1),
                      torch.full_like(tp, math.nan))
    f1_denominator = 2 * tp + fp + fn
    f1 = torch.where(f1_denominator > 0, 2 * tp / f1_denominator.clamp(min=1),
                     torch.full_like(tp, math.nan))
    return {"miou": _nanmean(iou), "mf1": _nanmean(f1), "iou": iou.tolist(), "f1": f1.tolist()}


def _nanmean(values: torch.Tensor) -> float:
    defined = values[~torch.isnan(values)]
    return float(defined.mean()) if defined.numel() else math.nan


def _columns(classes: int) -> list[str]:
    return (["epoch", "split", "loss", "miou", "mf1"]
            + [f"iou_{k}" for k in range(classes)] + [f"f1_{k}" for k in range(classes)]
            + ["lr", "seconds", "images_per_second", "data_time_share"])


def _row(epoch: int, split: str, loss: float, scores: dict[str, Any], lr: float,
         seconds: float, images: int, data_share: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch, "split": split, "loss": loss,
                           "miou": scores["miou"], "mf1": scores["mf1"]}
    row.update({f"iou_{k}": v for k, v in enumerate(scores["iou"])})
    row.update({f"f1_{k}": v for k, v in enumerate(scores["f1"])})
    row.update({"lr": lr, "seconds": seconds,
                "images_per_second": images / seconds if seconds > 0 else math.nan,
                "data_time_share": data_share if data_share is not None else math.nan})
    return row


def _format_cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.csv`` (``[]`` if there is none), numbers parsed:
    ``epoch`` an int, ``split`` a str, every other column a float (NaN where empty).

    Example: ``[row["miou"] for row in read_metrics(run / "metrics.csv") if row["split"] ==
    "val"]``.
    """
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    result = []
    for row in rows:
        parsed: dict[str, Any] = {}
        for key, value in row.items():
            if key == "split":
                parsed[key] = value
            elif key == "epoch":
                parsed[key] = int(value)
            else:
                parsed[key] = float(value) if value not in ("", None) else math.nan
        result.append(parsed)
    return result


def _write_metrics(path: Path, columns: list[str], rows: Sequence[Mapping[str, Any]]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format_cell(row.get(column, math.nan)) for column in columns])
    os.replace(temporary, path)


# -- progress ---------------------------------------------------------------------------------
class _Progress:
    """A tqdm bar on a terminal, plain log lines otherwise (rank 0 only)."""

    def __init__(self, out: TextIO, enabled: bool, epoch: int, epochs: int, total: int,
                 initial: int) -> None:
        self.out = out
        self.enabled = enabled
        self.prefix = f"epoch {epoch + 1}/{epochs}"
        self.total = total
        self.bar = None
        if enabled and _is_tty(out):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=self.prefix, file=out,
                            dynamic_ncols=True, leave=True)

    def update(self, done: int, steps: int, values: Mapping[str, str]) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix(values, refresh=True)
        else:
            text = " ".join(f"{key} {value}" for key, value in values.items())
            print(f"{self.prefix} step {done}/{self.total} {text}", file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- the run ----------------------------------------------------------------------------------
def _as_config(config: RunConfig | str | os.PathLike[str] | Mapping[str, Any]) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    return load_config(config)


def _default_run_dir(config: RunConfig) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.model.architecture}-{config.model.encoder}-{stamp}"


def _broadcast(value: Any, distributed: _Distributed) -> Any:
    if not distributed.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _prepare_run_dir(config: RunConfig, resume: Path | None, distributed: _Distributed
                     ) -> Path:
    if resume is not None:
        if not (resume / LAST_CHECKPOINT).is_file():
            raise CheckpointError(
                f"cannot resume {resume}: it holds no {LAST_CHECKPOINT} (the run folder of a run "
                "that wrote at least one checkpoint is needed)")
        return resume
    run_dir = Path(config.output.run_dir) if config.output.run_dir else _default_run_dir(config)
    run_dir = Path(_broadcast(str(run_dir), distributed))
    if distributed.main:
        used = [name for name in (LAST_CHECKPOINT, CONFIG_FILE, METRICS_FILE)
                if (run_dir / name).exists()]
        if used and not config.output.overwrite:
            raise CheckpointError(
                f"the run folder {run_dir} already holds a run ({', '.join(used)}); continue it "
                f"with --resume {run_dir}, choose another folder (--run-dir), or start over "
                "with --set output.overwrite=true")
        if used:
            for name in (LAST_CHECKPOINT, BEST_CHECKPOINT, CONFIG_FILE, METRICS_FILE,
                         "curves.png", "predictions.png", "confusion.png"):
                with contextlib.suppress(FileNotFoundError):
                    (run_dir / name).unlink()
            shutil.rmtree(run_dir / BEST_MODEL_DIR, ignore_errors=True)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointError(f"cannot create the run folder {run_dir}: {error.strerror}"
                                  ) from error
    if distributed.enabled:
        dist.barrier()
    return run_dir


def _unnormalize(images: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """Back to [0, 1] images for the plots."""
    shape = [1, -1, 1, 1]
    images = images.float()
    if normalization.std is not None:
        images = images * torch.tensor(normalization.std).view(shape)
    if normalization.mean is not None:
        images = images + torch.tensor(normalization.mean).view(shape)
    low, high = normalization.input_range
    if (low, high) != (0.0, 1.0):
        images = (images - low) / (high - low)
    if normalization.input_space == "BGR":
        images = images.flip(1)
    return images.clamp(0.0, 1.0)


class _Run:
    """The state of one training run (built by ``train``)."""

    def __init__(self, config: RunConfig, resume: Path | None, callbacks: Sequence[Any],
                 out: TextIO) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.out = out
        settings = config.train
        self.distributed = _setup_distributed(settings.device)
        try:
            self._build(resume)
        except BaseException:
            self.close()
            raise

    # building ---------------------------------------------------------------------------
    def _build(self, resume: Path | None) -> None:
        import segcore
        from segcore_train.data import resolve_class_count, scan

        config, settings, distributed = self.config, self.config.train, self.distributed
        self.device = _device(settings.device, distributed)
        self.main = distributed.main
        self._previous_deterministic = torch.are_deterministic_algorithms_enabled()
        if settings.deterministic:
            if self.device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        _keep_freed_memory_on_cpu(settings.keep_freed_memory, self.device)
        self.amp = resolve_amp(settings.amp, self.device)
        if settings.amp == "auto" and self.main:
            precision = {"bf16": "bfloat16", "fp16": "float16"}.get(self.amp, "float32")
            print(f"note: train.amp = \"auto\" trains in {precision} on {self.device.type} "
                  f"(\"{self.amp}\")", file=self.out, flush=True)
        if self.amp == "fp16" and self.device.type != "cuda":
            raise InvalidOptionError(
                "train.amp = \"fp16\" needs CUDA (with a GradScaler); on CPU use \"bf16\" or "
                "\"no\"")

        # data
        data = config.data
        classes = resolve_class_count(
            data.root, data.classes,
            "set data.classes (the number of classes, background included)")
        self.classes = classes
        self.report = scan(data.root, classes, multilabel=data.multilabel,
                           ignore_index=data.ignore_index, channels=data.channels,
                           splits=data.splits, val_fraction=data.val_fraction, seed=data.seed)
        train_samples = self.report.splits.get(TRAIN_SPLIT, [])
        if not train_samples:
            raise InvalidOptionError(
                f"the dataset {data.root} has no {TRAIN_SPLIT!r} images (splits: "
                f"{self.report.splits_source}); add them to the splits file or lower "
                "data.val_fraction")
        channels = self.report.channels
        if config.model.encoder_weights is not None:
            self.normalization = resolve_normalization(
                config.model.encoder, config.model.encoder_weights, channels=channels)
        else:
            self.normalization = resolve_normalization(
                statistics=(self.report.mean, self.report.std), channels=channels)
        train_set = self.report.dataset(TRAIN_SPLIT, transform=build_train_transform(
            config.augment, self.normalization, ignore_index=data.ignore_index))
        global_batch = settings.batch_size * distributed.world_size
        if len(train_set) < global_batch:
            raise InvalidOptionError(
                f"the {TRAIN_SPLIT!r} split has {len(train_set)} images, fewer than one batch "
                f"(train.batch_size {settings.batch_size} x {distributed.world_size} "
                "process(es)); lower train.batch_size")
        pin = self.device.type == "cuda"
        self.sampler = ResumableSampler(train_set, settings.batch_size,
                                        rank=distributed.rank,
                                        world_size=distributed.world_size, seed=settings.seed)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.train_loader = DataLoader(
            train_set, batch_size=settings.batch_size, sampler=self.sampler, drop_last=True,
            num_workers=settings.workers, pin_memory=pin,
            persistent_workers=settings.workers > 0, generator=self.generator,
            worker_init_fn=_seed_worker if settings.workers > 0 else None,
            prefetch_factor=4 if settings.workers > 0 else None)
        # a DistributedSampler pads to a multiple of the processes; the loader drops the rest
        self.batches_per_epoch = (math.ceil(len(train_set) / distributed.world_size)
                                  // settings.batch_size)
        val_samples = self.report.splits.get(VAL_SPLIT, [])
        self.val_loader = None
        if val_samples:
            size = config.augment.size if data.val_resize else None
            val_set = self.report.dataset(VAL_SPLIT, transform=build_eval_transform(
                self.normalization, size=size, center_crop=config.augment.crop == "random",
                mask_fill=data.ignore_index if data.ignore_index is not None else 0))
            self.val_loader = DataLoader(
                val_set, batch_size=settings.batch_size if data.val_resize else 1,
                sampler=_ShardSampler(len(val_set), distributed.rank, distributed.world_size),
                num_workers=settings.workers, pin_memory=pin,
                persistent_workers=settings.workers > 0,
                generator=torch.Generator().manual_seed(settings.seed),
                worker_init_fn=_seed_worker if settings.workers > 0 else None)

        # the run folder (once the data is known to be good)
        self.run_dir = _prepare_run_dir(config, resume, distributed)
        state = load_checkpoint(self.run_dir / LAST_CHECKPOINT) if resume is not None else None

        # model
        random.seed(settings.seed)
        np.random.seed(settings.seed)
        torch.manual_seed(settings.seed)
        model = segcore.build(config.model.architecture, encoder=config.model.encoder,
                              encoder_weights=config.model.encoder_weights,
                              in_channels=channels, classes=classes, **config.model.options)
        if state is not None:
            model.load_state_dict(state["model"])
        if distributed.enabled and settings.sync_batchnorm:
            if self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                model = _convert_global_batchnorm(model)
                kept = sorted({type(module).__name__ for module in model.modules()
                               if isinstance(module, nn.modules.batchnorm._BatchNorm)
                               and not isinstance(module, _GlobalBatchNorm2d)})
                if kept and distributed.main:
                    print(f"note: {', '.join(kept)} layers keep per-process statistics (only "
                          "nn.BatchNorm2d is synchronised on CPU)", file=self.out, flush=True)
        model.to(self.device)
        self.memory_format = (torch.channels_last if settings.channels_last
                              else torch.contiguous_format)
        model.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        self.model = model
        forward: nn.Module = model
        if distributed.enabled:
            from torch.nn.parallel import DistributedDataParallel

            # find_unused_parameters: an encoder keeps the stages that encoder_depth leaves out
            forward = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        self.ddp = forward if distributed.enabled else None
        self.eval_forward: nn.Module = model
        if settings.compile:
            forward = torch.compile(forward)  # type: ignore[assignment]
            self.eval_forward = torch.compile(model)  # type: ignore[assignment]
        self.forward = forward

        self.criterion = build_criterion(config.loss, multilabel=data.multilabel,
                                         ignore_index=data.ignore_index).to(self.device)
        self.optimizer = _build_optimizer(config, list(model.parameters()), self.device)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / settings.accumulate)
        self.scheduler = _build_scheduler(config, self.optimizer, self.steps_per_epoch)
        self.step = TrainStep(
            model, self.criterion, self.optimizer, self.scheduler, classes=classes,
            device=self.device, multilabel=data.multilabel, ignore_index=data.ignore_index,
            accumulate=settings.accumulate, clip_grad_norm=settings.clip_grad_norm,
            amp=self.amp, channels_last=settings.channels_last,
            train_metrics=settings.train_metrics, forward=forward, ddp=self.ddp)
        self.scaler = self.step.scaler

        # position
        self.epoch = 0
        self.steps_done = 0
        self.global_step = 0
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.partial: dict[str, Any] | None = None
        self.rng_to_restore: dict[str, Any] | None = None
        if state is not None:
            self._restore(state)

        # the resolved configuration
        self.config = attrs.evolve(
            config,
            data=attrs.evolve(config.data, root=str(Path(config.data.root).resolve()),
                              classes=classes),
            output=attrs.evolve(config.output, run_dir=str(self.run_dir.resolve())))
        if self.main:
            dump_config(self.config, self.run_dir / CONFIG_FILE)
            rows = [row for row in read_metrics(self.run_dir / METRICS_FILE)
                    if row["epoch"] <= self.epoch]
            _write_metrics(self.run_dir / METRICS_FILE, _columns(classes), rows)

    def _restore(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{self.run_dir / LAST_CHECKPOINT} has format "
                                  f"{state.get('format')!r}; this version reads "
                                  f"{CHECKPOINT_FORMAT}")
        if state.get("batches_per_epoch") not in (None, self.batches_per_epoch):
            raise CheckpointError(
                f"cannot resume {self.run_dir}: its epochs had {state['batches_per_epoch']} "
                f"batches per process, this configuration has {self.batches_per_epoch} (the "
                "dataset, train.batch_size or the number of processes changed)")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.steps_done = int(state["steps_done"])
        self.global_step = int(state["global_step"])
        self.best_value = state.get("best_value")
        self.best_epoch = state.get("best_epoch")
        if state.get("generator") is not None:
            self.generator.set_state(state["generator"])
        if self.steps_done and self.distributed.main:  # the sums of every process
            self.partial = state.get("partial")
        states = state.get("rng") or []
        if len(states) == self.distributed.world_size:
            self.rng_to_restore = states[self.distributed.rank]

    # checkpoints ------------------------------------------------------------------------------
    def _gather_rng(self) -> list[dict[str, Any]]:
        mine = rng_state()
        if not self.distributed.enabled:
            return [mine]
        states: list[Any] = [None] * self.distributed.world_size
        dist.all_gather_object(states, mine)
        return states

    def _checkpoint_state(self, epoch: int, steps_done: int, partial: dict[str, Any] | None,
                          generator_state: torch.Tensor) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": self._gather_rng(),
            "generator": generator_state,
            "epoch": epoch,
            "steps_done": steps_done,
            "global_step": self.global_step,
            "batches_per_epoch": self.batches_per_epoch,
            "world_size": self.distributed.world_size,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "partial": partial,
            "config": self.config.to_dict() if self.main else None,
        }

    def _save_last(self, epoch: int, steps_done: int, partial: dict[str, Any] | None,
                   generator_state: torch.Tensor) -> None:
        state = self._checkpoint_state(epoch, steps_done, partial, generator_state)

        def write() -> None:
            path = save_checkpoint(state, self.run_dir / LAST_CHECKPOINT)
            info = StepInfo(epoch, steps_done, self.batches_per_epoch, self.global_step)
            for callback in self.callbacks:
                hook = getattr(callback, "on_checkpoint", None)
                if hook is not None:
                    hook(path, info)

        self._on_main(write, "last.pt")

    def _on_main(self, action: Callable[[], None], what: str) -> None:
        """Run ``action`` (a write into the run folder) on the main process only.

        Under DDP every process then learns whether it failed (one broadcast), so a failed
        write on rank 0 stops every rank at once with a ``CheckpointError`` instead of leaving
        the others waiting in the next collective until its timeout. Rank 0 raises the
        original error.
        """
        error: Exception | None = None
        if self.main:
            try:
                action()
            except Exception as caught:  # re-raised below, after the others are told
                error = caught
        if self.distributed.enabled:
            failure = _broadcast(None if error is None else f"{type(error).__name__}: {error}",
                                 self.distributed)
            if failure is not None and error is None:
                raise CheckpointError(
                    f"rank 0 failed writing {what} into the run folder ({failure}); this "
                    "process stops as well")
        if error is not None:
            raise error

    # the loop -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        settings = self.config.train
        start_epoch = self.epoch
        try:
            for epoch in range(start_epoch, settings.epochs):
                self.epoch = epoch
                train_row = self._train_epoch(epoch)
                rows = [train_row]
                last = epoch + 1 == settings.epochs
                val_row = None
                if self.val_loader is not None and ((epoch + 1) % settings.val_every == 0
                                                    or last):
                    val_row = self._validate(epoch)
                    rows.append(val_row)
                self._end_epoch(epoch, rows, val_row if self.val_loader is not None
                                else train_row)
        finally:
            self.close()
        history = read_metrics(self.run_dir / METRICS_FILE) if self.main else []
        if self.main:
            best = (f"best {settings.best_metric} {self.best_value:.4f} (epoch "
                    f"{self.best_epoch})" if self.best_value is not None else "no validation")
            print(f"done: {best}; run folder {self.run_dir}", file=self.out, flush=True)
        return TrainResult(self.run_dir, settings.best_metric, self.best_value, self.best_epoch,
                           history, self.config)

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        settings = self.config.train
        skip = self.steps_done
        self.sampler.set_epoch(epoch, skip)
        generator_state = self.generator.get_state()
        device = self.device
        classes = self.classes
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        counts = torch.zeros(3, classes, dtype=torch.long, device=device)
        images_seen = 0
        if self.partial is not None:
            loss_sum += self.partial["loss_sum"].to(device)
            counts += self.partial["counts"].to(device)
            images_seen = int(self.partial["images"])
            self.partial = None
        if self.rng_to_restore is not None:
            set_rng_state(self.rng_to_restore)
            self.rng_to_restore = None
        self.forward.train()
        self.model.train()
        total = self.batches_per_epoch
        progress = _Progress(self.out, self.main, epoch, settings.epochs, total, skip)
        interval_loss = torch.zeros((), dtype=torch.float64, device=device)
        interval_batches = interval_images = 0
        interval_data = 0.0
        interval_start = epoch_start = time.perf_counter()
        data_time_total = 0.0
        accumulate = settings.accumulate
        done = skip
        fetch_start = time.perf_counter()
        for images, masks in self.train_loader:
            data_time = time.perf_counter() - fetch_start
            interval_data += data_time
            data_time_total += data_time
            boundary = (done + 1) % accumulate == 0 or done + 1 == total
            loss, batch_counts = self.step(images, masks, boundary)
            batch = images.shape[0]
            detached = loss.double()
            loss_sum += detached * batch
            interval_loss += detached
            if batch_counts is not None:
                counts += batch_counts
            images_seen += batch
            interval_images += batch
            interval_batches += 1
            done += 1
            if boundary:
                self.global_step += 1
            info = StepInfo(epoch, done, total, self.global_step)
            for callback in self.callbacks:
                hook = getattr(callback, "on_step_end", None)
                if hook is not None:
                    hook(info)
            if (boundary and settings.checkpoint_every_steps and done < total
                    and self._steps_in_epoch(done) % settings.checkpoint_every_steps == 0):
                seen = torch.tensor([float(images_seen)], dtype=torch.float64, device=device)
                partial = {"loss_sum": _all_reduce(loss_sum.clone(), self.distributed).cpu(),
                           "counts": _all_reduce(counts.clone(), self.distributed).cpu(),
                           "images": int(_all_reduce(seen, self.distributed))}
                self._save_last(epoch, done, partial, generator_state)
            if done % settings.log_every_steps == 0 or done == total:
                now = time.perf_counter()
                elapsed = max(now - interval_start, 1e-9)
                mean_loss = float(interval_loss) / max(interval_batches, 1)  # host sync
                progress.update(done, interval_batches, {
                    "loss": f"{mean_loss:.4f}",
                    "lr": f"{self.optimizer.param_groups[0]['lr']:.2e}",
                    "img/s": f"{interval_images * self.distributed.world_size / elapsed:.1f}",
                    "data": f"{100 * interval_data / elapsed:.0f}%"})
                interval_loss.zero_()
                interval_batches = interval_images = 0
                interval_data = 0.0
                interval_start = time.perf_counter()
            fetch_start = time.perf_counter()
        progress.close()
        self.steps_done = 0
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - epoch_start
        totals = torch.cat([loss_sum.view(1), torch.tensor(
            [float(images_seen)], dtype=torch.float64, device=device)])
        _all_reduce(totals, self.distributed)
        _all_reduce(counts, self.distributed)
        loss_value = float(totals[0] / totals[1].clamp(min=1))
        scores = (_scores(counts[0], counts[1], counts[2]) if settings.train_metrics
                  else {"miou": math.nan, "mf1": math.nan, "iou": [math.nan] * classes,
                        "f1": [math.nan] * classes})
        epoch_images = (total - skip) * settings.batch_size * self.distributed.world_size
        return _row(epoch + 1, TRAIN_SPLIT, loss_value, scores,
                    self.optimizer.param_groups[0]["lr"], seconds, epoch_images,
                    data_time_total / seconds if seconds > 0 else None)

    def _steps_in_epoch(self, done: int) -> int:
        return math.ceil(done / self.config.train.accumulate)

    def _validate(self, epoch: int) -> dict[str, Any]:
        from segcore_train.evaluate import confusion_matrix, multilabel_confusion

        assert self.val_loader is not None
        config = self.config
        multilabel = config.data.multilabel
        device = self.device
        self.eval_forward.eval()
        self.model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        images_seen = 0
        # counted on the device: (K, K) truth x prediction, or (K, 2, 2) per label
        confusion = torch.zeros((self.classes, 2, 2) if multilabel
                                else (self.classes, self.classes), dtype=torch.long,
                                device=device)
        keep = config.output.plot_images if (self.main and config.output.plots) else 0
        shown: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        start = time.perf_counter()
        with torch.inference_mode(), self.step.autocast():
            for images, masks in self.val_loader:
                images = images.to(device, non_blocking=True).contiguous(
                    memory_format=self.memory_format)
                masks = masks.to(device, non_blocking=True)
                logits = self.eval_forward(images).float()
                loss_sum += self.criterion(logits, masks).double() * images.shape[0]
                images_seen += images.shape[0]
                if multilabel:
                    confusion += multilabel_confusion((logits > 0).long(), masks.long())
                else:
                    predictions = logits.argmax(1)
                    confusion += confusion_matrix(predictions, masks, self.classes,
                                                  config.data.ignore_index)
                    if keep > sum(item[0].shape[0] for item in shown):
                        shown.append((images.cpu(), masks.cpu(), predictions.cpu()))
        totals = torch.cat([loss_sum.view(1), torch.tensor([float(images_seen)],
                                                           dtype=torch.float64, device=device)])
        _all_reduce(totals, self.distributed)
        _all_reduce(confusion, self.distributed)
        if multilabel:
            tp, fp, fn = confusion[:, 1, 1], confusion[:, 0, 1], confusion[:, 1, 0]
        else:
            tp = confusion.diagonal()
            fp, fn = confusion.sum(0) - tp, confusion.sum(1) - tp
        scores = _scores(tp, fp, fn)
        seconds = time.perf_counter() - start
        row = _row(epoch + 1, VAL_SPLIT, float(totals[0] / totals[1].clamp(min=1)), scores,
                   self.optimizer.param_groups[0]["lr"], seconds, int(totals[1]), None)
        self._on_main(lambda: self._plot_validation(shown, None if multilabel else confusion),
                      "predictions.png and confusion.png")
        return row

    def _plot_validation(self, shown: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                         confusion: torch.Tensor | None) -> None:
        if not (self.main and self.config.output.plots):
            return
        from segcore_train.plots import plot_confusion, plot_predictions

        names = self.report.class_names
        if shown:
            count = self.config.output.plot_images
            images = torch.cat([item[0] for item in shown])[:count]
            targets = torch.cat([item[1] for item in shown])[:count]
            predictions = torch.cat([item[2] for item in shown])[:count]
            plot_predictions(_unnormalize(images, self.normalization), targets, predictions,
                             self.run_dir / "predictions.png", class_names=names,
                             ignore_index=self.config.data.ignore_index)
        if confusion is not None:
            plot_confusion(confusion.cpu(), self.run_dir / "confusion.png", class_names=names)

    def _end_epoch(self, epoch: int, rows: list[dict[str, Any]],
                   chosen: dict[str, Any] | None) -> None:
        settings = self.config.train
        improved = False
        if chosen is not None and chosen["split"] == (VAL_SPLIT if self.val_loader is not None
                                                      else TRAIN_SPLIT):
            value = chosen[settings.best_metric]
            if not math.isnan(value):
                better = (self.best_value is None
                          or (value < self.best_value if settings.best_metric == "loss"
                              else value > self.best_value))
                if better:
                    self.best_value, self.best_epoch, improved = float(value), epoch + 1, True

        def write_metrics() -> None:
            path = self.run_dir / METRICS_FILE
            history = read_metrics(path) + rows
            _write_metrics(path, _columns(self.classes), history)
            if self.config.output.plots:
                from segcore_train.plots import plot_curves

                plot_curves(path, self.run_dir / "curves.png")
            self._log_rows(rows)

        self._on_main(write_metrics, f"{METRICS_FILE} and curves.png")
        generator_state = self.generator.get_state()
        if improved:
            state = self._checkpoint_state(epoch + 1, 0, None, generator_state)

            def write_best() -> None:
                save_checkpoint(state, self.run_dir / BEST_CHECKPOINT)
                self._save_best_model()

            self._on_main(write_best, f"{BEST_CHECKPOINT} and {BEST_MODEL_DIR}/")
        self._save_last(epoch + 1, 0, None, generator_state)
        for callback in self.callbacks:
            hook = getattr(callback, "on_epoch_end", None)
            if hook is not None:
                hook(epoch, rows)

    def _save_best_model(self) -> None:
        target = self.run_dir / BEST_MODEL_DIR
        self.model.save_pretrained(target)  # type: ignore[operator]
        normalization = self.normalization
        (target / NORMALIZATION_FILE).write_text(json.dumps({
            "mean": list(normalization.mean) if normalization.mean is not None else None,
            "std": list(normalization.std) if normalization.std is not None else None,
            "input_space": normalization.input_space,
            "input_range": list(normalization.input_range),
            "source": normalization.source,
        }, indent=2) + "\n", encoding="utf-8")

    def _log_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            print(f"epoch {row['epoch']}/{self.config.train.epochs} {row['split']}: loss "
                  f"{row['loss']:.4f} mIoU {row['miou']:.4f} mF1 {row['mf1']:.4f} "
                  f"({row['images_per_second']:.1f} img/s)", file=self.out, flush=True)

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if hasattr(self, "_previous_deterministic"):
            torch.use_deterministic_algorithms(self._previous_deterministic)
        if self.distributed.initialized_here and dist.is_initialized():
            with contextlib.suppress(Exception):
                dist.barrier()
            dist.destroy_process_group()


def train(
    config: RunConfig | str | os.PathLike[str] | Mapping[str, Any],
    *,
    resume: str | os.PathLike[str] | None = None,
    callbacks: Sequence[Any] = (),
    out: TextIO | None = None,
) -> TrainResult:
    """Train a model as ``config`` says; returns a ``TrainResult``.

    Args:
        config: a ``RunConfig``, a TOML file or a ``{section: {key: value}}`` dict.
        resume: a run folder to continue from its ``last.pt`` (the position inside the
            epoch included); ``output.run_dir`` is then that folder.
        callbacks: objects with any of ``on_step_end(info: StepInfo)``,
            ``on_checkpoint(path, info)`` (rank 0), ``on_epoch_end(epoch, rows)``.
        out: where progress goes (default ``sys.stdout``); a terminal gets a tqdm bar,
            anything else plain log lines.

    Raises ``DataValidationError`` for bad data (before training), ``InvalidOptionError`` /
    ``UnknownOptionError`` for bad settings, ``CheckpointError`` for a run folder that cannot
    be written or resumed.

    Example::

        result = train({"data": {"root": "data", "classes": 4}, "train": {"epochs": 3},
                        "output": {"run_dir": "runs/a"}})
        result = train(result.config, resume="runs/a")   # after a crash
    """
    config = _as_config(config)
    resume_dir = Path(resume) if resume is not None else None
    if resume_dir is not None:
        config = attrs.evolve(config, output=attrs.evolve(config.output,
                                                          run_dir=str(resume_dir)))
    run = _Run(config, resume_dir, callbacks, out or sys.stdout)
    return run.run()


def resume_config(run_dir: str | os.PathLike[str], overrides: Sequence[str] = ()) -> RunConfig:
    """The configuration a run folder was started with (``RUN/config.toml``), with overrides."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"cannot resume {run_dir}: it holds no {CONFIG_FILE}; pass the "
                              "configuration file as well")
    return load_config(path, overrides)
