"""train.keep_freed_memory: glibc's malloc keeps freed memory, so repeated steps stop faulting."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from segcore_train import host, trainer
from segcore_train.config import RunConfig
from segcore_train.host import glibc_version

import segcore

needs_glibc = pytest.mark.skipif(glibc_version() is None, reason="glibc's malloc only")

# Allocates and frees a 64 MiB tensor five times (written in full each time) and prints the
# page faults taken: the size is above glibc's largest dynamic mmap threshold (32 MiB), so by
# default every allocation is a fresh mapping that faults in all of its pages.
_PROBE = """
import resource, sys, torch
if sys.argv[1] == "kept":
    from segcore_train.host import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):  # warm-up
    tensor = torch.ones(16 << 20)
    del tensor
before = faults()
for _ in range(5):
    tensor = torch.ones(16 << 20)
    del tensor
print(faults() - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.strip())


@needs_glibc
def test_freed_memory_is_reused_without_page_faults():
    default, kept = _faults("default"), _faults("kept")
    assert default > 0, "the probe should fault by default (every allocation is a new mapping)"
    assert kept * 4 < default, (default, kept)


@needs_glibc
def test_glibc_version_reads_the_c_library():
    major, minor = glibc_version().split(".")[:2]
    assert int(major) >= 2 and int(minor) >= 0


MODEL = {"architecture": "unet", "encoder": "resnet18",
         "options": {"encoder_depth": 3, "decoder_channels": [16, 8, 4]}}


@pytest.fixture
def applied(monkeypatch) -> list[bool]:
    """Records the trainer's calls of keep_freed_memory (the process is left as it is)."""
    calls: list[bool] = []
    monkeypatch.setattr(trainer, "keep_freed_memory", lambda: calls.append(True) or True)
    return calls


@pytest.mark.parametrize("wanted", [True, False])
def test_the_train_step_applies_the_setting_on_cpu(applied, wanted):
    config = RunConfig.from_dict({"data": {"root": "unused"},
                                  "train": {"keep_freed_memory": wanted}})
    model = segcore.build("unet", encoder="resnet18", classes=2, encoder_depth=3,
                          decoder_channels=(16, 8, 4))
    trainer.TrainStep.from_config(config, model, classes=2, steps_per_epoch=1)
    assert applied == ([True] if wanted else [])


@pytest.mark.parametrize("wanted", [True, False])
def test_a_cpu_run_applies_the_setting(applied, wanted, small_synthetic_dataset, tmp_path):
    trainer.train({"data": {"root": str(small_synthetic_dataset(seed=0))},
                   "augment": {"size": [32, 32]}, "model": MODEL,
                   "train": {"epochs": 1, "batch_size": 8, "workers": 0, "device": "cpu",
                             "keep_freed_memory": wanted},
                   "output": {"run_dir": str(tmp_path / "run"), "plots": False}},
                  out=io.StringIO())
    assert applied == ([True] if wanted else [])


def test_the_setting_is_on_by_default():
    assert RunConfig.from_dict({"data": {"root": "unused"}}).train.keep_freed_memory is True


# -- train.amp = "auto" ------------------------------------------------------------------------
def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\n"
                   "processor\t: 1\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert host.cpu_flags(x86) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert "bf16" in host.cpu_flags(arm)
    assert host.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(("flags", "expected"), [
    ({"avx512f", "avx512_bf16"}, "bf16"), ({"amx_bf16", "amx_tile"}, "bf16"),
    ({"avx2", "fma"}, "no"), (set(), "no")])
def test_auto_amp_on_cpu_follows_the_native_bf16_instructions(monkeypatch, flags, expected):
    monkeypatch.setattr(host, "cpu_flags", lambda: frozenset(flags))
    assert host.resolve_amp("auto", "cpu") == expected
    for choice in ("no", "bf16"):
        assert host.resolve_amp(choice, "cpu") == choice


def test_a_run_with_auto_amp_says_what_it_chose(monkeypatch, small_synthetic_dataset, tmp_path):
    monkeypatch.setattr(host, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    out = io.StringIO()
    result = trainer.train({"data": {"root": str(small_synthetic_dataset(seed=0))},
                            "augment": {"size": [32, 32]}, "model": MODEL,
                            "train": {"epochs": 1, "batch_size": 8, "workers": 0,
                                      "device": "cpu", "amp": "auto"},
                            "output": {"run_dir": str(tmp_path / "run"), "plots": False}},
                           out=out)
    assert 'note: train.amp = "auto" trains in bfloat16 on cpu ("bf16")' in out.getvalue()
    assert result.config.train.amp == "auto"  # resolved on each machine the run goes on
