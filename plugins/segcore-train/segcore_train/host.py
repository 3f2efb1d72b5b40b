"""The machine a run trains on: its memory allocator and its native number formats.

``keep_freed_memory``: a CPU training step allocates and frees the same activations every
step. With glibc's default settings, tensors above 32 MB are mapped fresh from the kernel at
every allocation and large free blocks at the top of the heap are given back, so every step
touches hundreds of MB of new pages: about 33,600 page faults and 72 ms of kernel CPU time
per step of a Unet/resnet18 at batch 8, 128x128, 2 threads (about 100 and 1 ms with it;
``benchmarks/bench_train.py`` prints the effect on the images per second).
Intel's and PyTorch's CPU tuning guides advise jemalloc or tcmalloc for this;
``keep_freed_memory`` gets the same effect from the C library already loaded: it tells glibc's
``malloc`` (through ``mallopt``) to serve every size from its heap and to keep freed memory for
reuse. The cost: the process's resident memory stays near its peak instead of shrinking
between steps. ``segcore train`` does this by default on CPU (``train.keep_freed_memory``).

``resolve_amp``: ``train.amp = "auto"`` trains in bfloat16 autocast where the device computes
bfloat16 natively (x86 CPUs with AVX512-BF16 or AMX, CUDA GPUs that support it), in float16
with a GradScaler on other CUDA GPUs, and in float32 elsewhere (emulated bfloat16 is slower
than float32).
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import torch

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
#: Free memory at the top of the heap is given back only above this (the largest int).
TRIM_THRESHOLD = 2**31 - 1
#: Extra memory requested from the kernel each time the heap grows (fewer brk calls).
TOP_PAD = 64 << 20

_applied = False


def glibc_version() -> str | None:
    """The version of the process's glibc (``"2.36"``), or ``None`` for another C library."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    return version().decode("ascii")


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse, for the rest of the process.

    Serves every allocation from the heap (``M_MMAP_MAX = 0``: no per-tensor ``mmap``), never
    trims it below 2 GiB of free top (``M_TRIM_THRESHOLD``) and grows it 64 MiB at a time
    (``M_TOP_PAD``). Data-loader workers forked afterwards inherit the setting. Returns
    ``True`` when set (or already set), ``False`` where the C library is not glibc (macOS,
    Windows, musl): nothing changes there.

    Example::

        from segcore_train.host import keep_freed_memory
        keep_freed_memory()   # before a CPU training loop
    """
    global _applied
    if _applied:
        return True
    if glibc_version() is None:
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD))
    _applied = all(mallopt(parameter, value) == 1 for parameter, value in settings)
    return _applied


#: CPU feature flags (``/proc/cpuinfo``) of instructions that compute bfloat16 natively.
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (Linux's ``/proc/cpuinfo``); empty where it cannot be read."""
    try:
        text = Path(cpuinfo).read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively (see ``NATIVE_BF16_CPU_FLAGS``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(cpu_flags() & NATIVE_BF16_CPU_FLAGS)
    return False


def resolve_amp(choice: str, device: torch.device | str) -> str:
    """``train.amp`` for ``device``: ``"auto"`` becomes ``"bf16"``, ``"fp16"`` or ``"no"``.

    Any other choice is returned as it is. Example: ``resolve_amp("auto", "cpu")`` is
    ``"bf16"`` on a CPU with AVX512-BF16, else ``"no"``.
    """
    if choice != "auto":
        return choice
    device = torch.device(device)
    if native_bf16(device):
        return "bf16"
    return "fp16" if device.type == "cuda" else "no"
