"""Checkpoints: resume after SIGKILL gives the same weights bit for bit; failed writes are safe."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from segcore_train import CheckpointError, load_checkpoint, save_checkpoint, train
from segcore_train.config import RunConfig, dump_config

#: The killed run: train() with a callback that, after the checkpoint at step 2 of the first
#: epoch, does step 3 and then writes a marker and waits to be killed.
KILLED_RUN = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from segcore_train import load_config, train

    marker = Path(sys.argv[2])

    class StopAfterStep3:
        def on_step_end(self, info):
            if (info.epoch, info.steps_done) == (0, 3):
                marker.write_text("waiting for SIGKILL")
                threading.Event().wait()

    train(load_config(sys.argv[1]), callbacks=[StopAfterStep3()])
    print("finished")  # never reached
""")


@pytest.fixture(scope="module")
def data(small_synthetic_dataset) -> Path:
    """10 synthetic images of 3 classes (splits.json: 8 train, 2 val)."""
    return small_synthetic_dataset(seed=1)


def config_for(root: Path, run_dir: Path, **train_settings: object) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"root": str(root)},
        "augment": {"size": [32, 32]},  # random crops, flips, affine, colour: RNG in use
        "model": {"options": {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}},
        "train": {"epochs": 2, "batch_size": 2, "workers": 0, "deterministic": True,
                  "checkpoint_every_steps": 2, "log_every_steps": 2, **train_settings},
        "output": {"run_dir": str(run_dir), "plots": False},
    })


def assert_same_state(resumed: dict, reference: dict) -> None:
    assert resumed["model"].keys() == reference["model"].keys()
    for key, value in reference["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    for index, state in reference["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(resumed["optimizer"]["state"][index][name], value), (index, name)
    assert resumed["scheduler"]["last_epoch"] == reference["scheduler"]["last_epoch"]
    assert resumed["global_step"] == reference["global_step"]


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(data, tmp_path):
    run = tmp_path / "killed"
    config = config_for(data, run)
    config_file = dump_config(config, tmp_path / "train.toml")
    marker = tmp_path / "marker"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    log = open(tmp_path / "killed.log", "w+")
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(config_file), str(marker)],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               env=env)
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"the run ended before step 3 (status {process.returncode}):\n"
                            f"{log.read()[-3000:]}")
            assert time.monotonic() < deadline, "the run did not reach step 3 in 600 s"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(run / "last.pt")
    assert (killed_at["epoch"], killed_at["steps_done"], killed_at["global_step"]) == (0, 2, 2)
    assert not list(run.glob(".*.tmp")), "a temporary checkpoint file was left behind"

    resumed = train(config, resume=run, out=io.StringIO())
    reference = train(config_for(data, tmp_path / "reference"), out=io.StringIO())

    assert_same_state(load_checkpoint(run / "last.pt"),
                      load_checkpoint(reference.run_dir / "last.pt"))
    # the epoch rows also count the batches done before the kill
    for mine, theirs in zip(resumed.history, reference.history, strict=True):
        for column in ("epoch", "split", "loss", "miou", "iou_1", "lr"):
            assert mine[column] == theirs[column], column


def test_a_failing_write_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_save = torch.save
    calls = []

    def disk_full_on_the_second_save(state, handle, *args, **kwargs):
        calls.append(handle)
        if len(calls) == 2:
            handle.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(state, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_the_second_save)
    config = config_for(data, run, checkpoint_every_steps=1)
    with pytest.raises(CheckpointError) as caught:
        train(config, out=io.StringIO())
    message = str(caught.value)
    assert str(run / "last.pt") in message and "No space left on device" in message
    assert "previous checkpoint" in message and "--resume" in message
    kept = load_checkpoint(run / "last.pt")  # intact: the first checkpoint (after step 1)
    assert (kept["epoch"], kept["steps_done"]) == (0, 1)
    assert sorted(path.name for path in run.iterdir()) == ["config.toml", "last.pt",
                                                           "metrics.csv"]

    monkeypatch.setattr(torch, "save", real_save)
    result = train(config, resume=run, out=io.StringIO())
    assert load_checkpoint(result.run_dir / "last.pt")["epoch"] == 2


def test_save_and_load_refuse_broken_files(tmp_path):
    path = save_checkpoint({"format": 1, "weights": torch.ones(3)}, tmp_path / "last.pt")
    assert torch.equal(load_checkpoint(path)["weights"], torch.ones(3))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match=r"truncated.pt cannot be read"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="could not write the checkpoint"):
        save_checkpoint({"format": 1}, tmp_path / "no-such-folder" / "last.pt")
