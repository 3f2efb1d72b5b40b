"""``train``: the run folder, the loop's settings, the errors, and ``segcore train``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import torch
from segcore_train import (
    CheckpointError,
    DataValidationError,
    TrainStep,
    load_checkpoint,
    load_config,
    train,
)
from segcore_train.config import RunConfig

import segcore
from segcore import cli
from segcore.errors import InvalidOptionError, UnknownNameError

MODEL = {"architecture": "unet", "encoder": "resnet18",
         "options": {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}}


@pytest.fixture(scope="module")
def data(small_synthetic_dataset) -> Path:
    """10 synthetic images of 3 classes (splits.json: 8 train, 2 val)."""
    return small_synthetic_dataset(seed=0)


def small(root: Path, run_dir: Path, **sections: dict) -> RunConfig:
    values = {"data": {"root": str(root)}, "augment": {"size": [32, 32]}, "model": MODEL,
              "train": {"epochs": 2, "batch_size": 4, "workers": 0, "log_every_steps": 1},
              "output": {"run_dir": str(run_dir)}}
    for name, settings in sections.items():
        values[name] = {**values.get(name, {}), **settings}
    return RunConfig.from_dict(values)


def test_a_run_writes_the_run_folder_and_a_loadable_best_model(data, tmp_path):
    out = io.StringIO()
    result = train(small(data, tmp_path / "run"), out=out)
    run = result.run_dir
    for name in ("config.toml", "metrics.csv", "curves.png", "predictions.png",
                 "confusion.png", "last.pt", "best.pt", "best/config.json",
                 "best/model.safetensors", "best/normalization.json"):
        assert (run / name).is_file(), name
    # the resolved config: absolute paths, the classes read from classes.txt
    assert load_config(run / "config.toml") == result.config
    assert result.config.data.classes == 3 and Path(result.config.data.root).is_absolute()

    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["epoch"], row["split"]) for row in rows] == [
        ("1", "train"), ("1", "val"), ("2", "train"), ("2", "val")]
    for column in ("loss", "miou", "mf1", "iou_0", "iou_2", "f1_1", "lr", "seconds",
                   "images_per_second"):
        assert rows[-1][column] != "", column
    assert 0.0 <= float(rows[-1]["miou"]) <= 1.0
    assert result.history[-1]["split"] == "val" and result.history[-1]["epoch"] == 2
    best = max(row["miou"] for row in result.history if row["split"] == "val")
    assert result.best_metric == "miou" and result.best_value == pytest.approx(best, abs=1e-6)
    # the cosine ends at min_lr after the last step
    assert float(rows[-2]["lr"]) == pytest.approx(1e-6)

    # plain log lines (not a terminal): progress with loss, lr, images/s, data share
    text = out.getvalue()
    assert "epoch 1/2 step 1/2 loss" in text and "img/s" in text and "data" in text
    assert "epoch 2/2 val: loss" in text and f"run folder {run}" in text

    # best/ is the model of best.pt
    model = segcore.from_pretrained(run / "best")
    saved = load_checkpoint(run / "best.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved["model"][key].contiguous()), key
    assert saved["epoch"] == result.best_epoch
    last = load_checkpoint(run / "last.pt")
    assert (last["epoch"], last["steps_done"], last["global_step"]) == (2, 0, 4)


def test_accumulation_weighted_loss_clipping_and_bf16(data, tmp_path):
    config = small(data, tmp_path / "run",
                   train={"epochs": 1, "batch_size": 2, "accumulate": 3, "clip_grad_norm": 0.5,
                          "amp": "bf16", "channels_last": False, "train_metrics": False,
                          "best_metric": "loss"},
                   loss={"terms": [{"name": "dice"},
                                   {"name": "soft_ce", "weight": 0.5,
                                    "options": {"smooth_factor": 0.1}}]},
                   optimizer={"name": "sgd", "lr": 0.01})
    result = train(config, out=io.StringIO())
    last = load_checkpoint(result.run_dir / "last.pt")
    assert last["global_step"] == 2  # 4 batches, a step every 3 batches and at the end
    train_row = result.history[0]
    assert train_row["split"] == "train" and train_row["miou"] != train_row["miou"]  # NaN: off
    assert result.best_metric == "loss"
    assert result.best_value == pytest.approx(result.history[1]["loss"], rel=1e-5)


def test_a_terminal_gets_a_progress_bar(data, tmp_path):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    train(small(data, tmp_path / "run", train={"epochs": 1}, output={"plots": False}), out=out)
    text = out.getvalue()
    assert "epoch 1/1: 100%" in text and "img/s=" in text and "loss=" in text


def test_errors_name_the_problem(data, tmp_path):
    run = tmp_path / "run"
    train(small(data, run, train={"epochs": 1}, output={"plots": False}), out=io.StringIO())
    with pytest.raises(CheckpointError, match=r"already holds a run.*--resume"):
        train(small(data, run, train={"epochs": 1}), out=io.StringIO())
    with pytest.raises(CheckpointError, match=r"holds no last\.pt"):
        train(small(data, run), resume=tmp_path / "nothing", out=io.StringIO())
    with pytest.raises(InvalidOptionError, match="fewer than one batch"):
        train(small(data, tmp_path / "b", train={"batch_size": 9}), out=io.StringIO())
    with pytest.raises(InvalidOptionError, match="'mcc' cannot leave out pixels"):
        train(small(data, tmp_path / "c", data={"ignore_index": 255}, loss={"name": "mcc"}),
              out=io.StringIO())
    with pytest.raises(UnknownNameError, match="dicee"):
        train(small(data, tmp_path / "d", loss={"name": "dicee"}), out=io.StringIO())
    with pytest.raises(DataValidationError, match="missing-folder"):
        train(small(tmp_path / "no-data", tmp_path / "f", data={"classes": 3}),
              out=io.StringIO())
    assert not (tmp_path / "f").exists(), "bad data must fail before the run folder is made"
    with pytest.raises(InvalidOptionError, match="needs CUDA"):
        train(small(data, tmp_path / "e", train={"amp": "fp16", "device": "cpu"}),
              out=io.StringIO())


def test_the_cli_reports_a_bad_config(tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text('[data]\nroot = "x"\n[train]\nepoch = 3\n')
    assert cli.main(["train", str(config)], out=io.StringIO()) == 2
    assert "unknown key 'epoch' in [train]. Did you mean 'epochs'?" in capsys.readouterr().err
    assert cli.main(["train"], out=io.StringIO()) == 2
    assert "pass a configuration file" in capsys.readouterr().err


def test_segcore_train_from_the_command_line(data, tmp_path):
    config = tmp_path / "train.toml"
    config.write_text(f"""
[data]
root = "{data.as_posix()}"

[augment]
size = [32, 32]

[model]
options = {{encoder_depth = 3, decoder_channels = [16, 8, 8]}}

[train]
epochs = 1
batch_size = 4
workers = 1
""")
    run = tmp_path / "runs" / "cli"
    out = io.StringIO()
    status = cli.main(["train", str(config), "--set", "train.seed=3", "--run-dir", str(run)],
                      out=out)
    assert status == 0
    assert "epoch 1/1 val: loss" in out.getvalue()
    assert load_config(run / "config.toml").train.seed == 3
    assert (run / "best" / "model.safetensors").is_file() and (run / "curves.png").is_file()
    # continuing a finished run with more epochs, from its own config.toml
    out = io.StringIO()
    assert cli.main(["train", "--resume", str(run), "--set", "train.epochs=2"], out=out) == 0
    assert "epoch 2/2 val: loss" in out.getvalue() and "epoch 1/2" not in out.getvalue()
    assert [row["epoch"] for row in csv.DictReader(open(run / "metrics.csv"))] == [
        "1", "1", "2", "2"]


def test_multilabel_masks_train_with_a_sigmoid_loss(writer, tmp_path):
    for index in range(6):
        writer.image(f"s{index}", writer.rgb(32, 32))
        writer.label_pngs(f"s{index}", (writer.rng.random((2, 32, 32)) > 0.5).astype("uint8"))
    config = small(writer.root, tmp_path / "run", data={"classes": 2, "multilabel": True,
                                                        "val_fraction": 0.34},
                   train={"epochs": 1, "batch_size": 2},
                   loss={"terms": [{"name": "soft_bce"}, {"name": "dice"}]})
    result = train(config, out=io.StringIO())
    assert [row["split"] for row in result.history] == ["train", "val"]
    assert 0.0 <= result.history[1]["iou_1"] <= 1.0
    assert (result.run_dir / "curves.png").is_file()
    assert not (result.run_dir / "confusion.png").exists()  # multi-class only
    assert segcore.from_pretrained(result.run_dir / "best") is not None


def test_the_schedule_warms_up_linearly_then_follows_the_cosine():
    config = RunConfig.from_dict({
        "data": {"root": "unused"}, "train": {"epochs": 2},
        "optimizer": {"lr": 0.1}, "schedule": {"warmup_steps": 2, "min_lr": 0.001}})
    model = segcore.build("unet", encoder="resnet18", classes=2, **MODEL["options"])
    step = TrainStep.from_config(config, model, classes=2, steps_per_epoch=3)
    rates = []
    for _ in range(6):
        rates.append(step.optimizer.param_groups[0]["lr"])
        step.optimizer_step()
    rates.append(step.optimizer.param_groups[0]["lr"])
    assert rates[:3] == pytest.approx([0.05, 0.1, 0.1])
    assert rates[2] > rates[3] > rates[4] > rates[5] > rates[6]
    assert rates[6] == pytest.approx(0.001)
    assert isinstance(step.optimizer, torch.optim.AdamW)


def test_train_compile_traces_the_model_and_saves_plain_weights(data, tmp_path, monkeypatch):
    """``train.compile = true``: the step and validation run through ``torch.compile`` (here
    with the ``aot_eager`` backend: dynamo and autograd tracing without a C++ toolchain) and
    end where the eager run ends; checkpoints and the best model hold the plain module's keys."""
    compiled = []
    real_compile = torch.compile

    def compile_without_toolchain(module, **options):
        compiled.append(type(module).__name__)
        return real_compile(module, backend="aot_eager", **options)

    monkeypatch.setattr(torch, "compile", compile_without_toolchain)
    sgd = {"name": "sgd", "lr": 0.02, "momentum": 0.0}
    eager = train(small(data, tmp_path / "eager", optimizer=sgd,
                        augment={"enabled": False}, train={"epochs": 1}), out=io.StringIO())
    assert compiled == []
    traced = train(small(data, tmp_path / "compiled", optimizer=sgd, augment={"enabled": False},
                         train={"epochs": 1, "compile": True}), out=io.StringIO())
    assert len(compiled) == 2  # the training forward and the evaluation forward
    mine = load_checkpoint(traced.run_dir / "last.pt")["model"]
    reference = load_checkpoint(eager.run_dir / "last.pt")["model"]
    assert mine.keys() == reference.keys()
    assert not any(key.startswith("_orig_mod") for key in mine)
    for key, value in reference.items():
        if value.is_floating_point():
            torch.testing.assert_close(mine[key], value, rtol=1e-4, atol=1e-5,
                                       msg=lambda text, key=key: f"{key}: {text}")
    model = segcore.from_pretrained(traced.run_dir / "best")
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("crop", ["resized", "random"])
def test_validation_crops_like_training(data, tmp_path, monkeypatch, crop):
    from segcore_train import trainer

    calls = []
    original = trainer.build_eval_transform

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "build_eval_transform", recording)
    config = small(data, tmp_path / "run", augment={"size": [24, 24], "crop": crop},
                   data={"ignore_index": 9}, train={"epochs": 1})
    result = train(config, out=io.StringIO())
    assert calls == [{"size": (24, 24), "center_crop": crop == "random", "mask_fill": 9}]
    assert [row["split"] for row in result.history] == ["train", "val"]
    assert result.history[1]["loss"] == result.history[1]["loss"]  # a number: it batched
