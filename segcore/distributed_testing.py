"""Run a multi-process ``torch.distributed`` test robustly, on a loaded machine too.

Two halves, for tests that need several ranks (the gloo backend on CPU):

* the parent (the test) calls :func:`run_ranks`, which starts one plain Python process per rank
  (``sys.executable`` running a script, or ``-m`` a module), each with its output captured in
  files, and returns one :class:`RankResult` per rank; :func:`assert_ranks_succeeded` fails with
  every rank's return code and output tail;
* each rank (the worker script) wraps its work in :func:`process_group`, which joins the group
  from the environment that :func:`run_ranks` set and leaves it cleanly.

Example::

    # worker.py
    from segcore.distributed_testing import process_group

    with process_group() as (rank, world_size):
        ...  # collectives
    print("ok")

    # test_something.py
    from segcore.distributed_testing import assert_ranks_succeeded, run_ranks

    def test_two_ranks(tmp_path):
        results = run_ranks("worker.py", 2, tmp_path)
        assert_ranks_succeeded(results, expect_stdout="ok")

What makes it robust (each point is a way such a test used to fail under load):

* **No ports.** The rendezvous is a ``file://`` store (a ``FileStore``) in a fresh file of the
  test's temporary directory. Picking a "free" port by binding and closing a socket races with
  every other process on the machine until rank 0 binds it again; a file cannot be taken.
  (gloo's own connections listen on ports the kernel assigns, which cannot race either.)
* **Generous timeouts.** The group's timeout (:data:`COLLECTIVE_TIMEOUT`) covers a rank that
  starts minutes after the other; the parent waits :data:`RUN_TIMEOUT` in all. A slow machine
  makes the test slower, it does not fail it.
* **No oversubscription.** Each rank runs with ``OMP_NUM_THREADS=1`` (and MKL, OpenBLAS,
  numexpr likewise), so that two ranks do not start two thread pools of one thread per core each.
* **Clean shutdown.** A rank that succeeds waits at a barrier, then destroys the group before it
  returns and the interpreter exits; the gloo threads are joined rather than left running at
  exit (which aborts with ``terminate called without an active exception``). A rank that raises
  destroys its group too, so that its peers' collectives fail rather than hang.
* **No orphans.** When a rank fails, the others get :data:`FAILURE_GRACE` seconds to end on
  their own, then they are killed; on the overall timeout every rank is killed. Either way
  every rank's return code and output come back, and a rank killed for the timeout first writes
  the Python stack of each of its threads to its stderr (where it hung).

Only the standard library and torch are used, so any package's tests may import this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import faulthandler
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

__all__ = [
    "COLLECTIVE_TIMEOUT",
    "FAILURE_GRACE",
    "INIT_METHOD_VARIABLE",
    "RUN_TIMEOUT",
    "RankResult",
    "assert_ranks_succeeded",
    "describe_ranks",
    "process_group",
    "run_ranks",
]

#: The environment variable through which :func:`run_ranks` passes the rendezvous to its ranks.
INIT_METHOD_VARIABLE = "SEGCORE_DIST_INIT_METHOD"
#: How long a rank waits for its peers at the rendezvous or in any collective.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=5)
#: How long (seconds) the parent waits for all the ranks before it kills them.
RUN_TIMEOUT = 600.0
#: How long (seconds) the other ranks may still run once one rank has failed.
FAILURE_GRACE = 60.0

_SINGLE_THREADED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_POLL = 0.1
# process_group() has faulthandler dump every thread's stack on this signal; a rank without the
# handler just ends (the default action), which is what happens next anyway.
_STACKS_SIGNAL = getattr(signal, "SIGUSR1", None)
_STACKS_WAIT = 3.0


@dataclasses.dataclass(frozen=True)
class RankResult:
    """How one rank ended: its return code (negative: killed by that signal), and its output."""

    rank: int
    returncode: int | None
    stdout: str
    stderr: str
    killed: bool = False  # the parent killed it (timeout, or a peer failed)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.killed

    def describe(self, tail: int = 3000) -> str:
        if self.returncode is not None and self.returncode < 0:
            try:
                how = f"signal {signal.Signals(-self.returncode).name}"
            except ValueError:
                how = f"signal {-self.returncode}"
        else:
            how = f"return code {self.returncode}"
        if self.killed:
            how += ", killed by the parent"
        return (f"--- rank {self.rank}: {how}\n"
                f"--- rank {self.rank} stdout (tail):\n{self.stdout[-tail:]}\n"
                f"--- rank {self.rank} stderr (tail):\n{self.stderr[-tail:]}")


def describe_ranks(results: Sequence[RankResult], tail: int = 3000) -> str:
    """Every rank's return code and the tails of its stdout and stderr, for a failure message."""
    return "\n".join(result.describe(tail) for result in results)


def assert_ranks_succeeded(results: Sequence[RankResult],
                           expect_stdout: str | None = None) -> None:
    """Raise ``AssertionError`` (with :func:`describe_ranks`) unless every rank returned 0, and,
    with ``expect_stdout``, unless every rank's stdout ends with that line."""
    failed = [r.rank for r in results if not r.ok]
    if failed:
        raise AssertionError(f"rank(s) {failed} failed:\n{describe_ranks(results)}")
    if expect_stdout is not None:
        missing = [r.rank for r in results if not r.stdout.rstrip().endswith(expect_stdout)]
        if missing:
            raise AssertionError(f"rank(s) {missing} did not print {expect_stdout!r} last:\n"
                                 f"{describe_ranks(results)}")


def _rank_environment(rank: int, world_size: int, init_method: str,
                      extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    for name in _SINGLE_THREADED:
        env[name] = "1"
    # On Linux gloo would otherwise pick the interface of the host name, which in a container or
    # a sandbox may not be reachable; every rank is on this machine, so loopback is right.
    if "GLOO_SOCKET_IFNAME" not in env and Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    env.update({
        INIT_METHOD_VARIABLE: init_method,
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_WORLD_SIZE": str(world_size),
        "PYTHONUNBUFFERED": "1",  # a killed rank still shows how far it got
        "PYTHONFAULTHANDLER": "1",  # a crashing rank shows its Python stack on stderr
    })
    env.update(extra or {})
    return env


def _dump_stacks(processes: Sequence[subprocess.Popen]) -> None:
    """Ask ranks about to be killed for their Python stacks (on their stderr): where they hung."""
    if not processes or not hasattr(signal, "SIGUSR1"):
        return
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, _STACKS_SIGNAL)
    end = time.monotonic() + _STACKS_WAIT
    while time.monotonic() < end and any(process.poll() is None for process in processes):
        time.sleep(_POLL)


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def run_ranks(
    target: str | os.PathLike[str],
    world_size: int,
    workdir: str | os.PathLike[str],
    args: Sequence[str] = (),
    *,
    timeout: float = RUN_TIMEOUT,
    failure_grace: float = FAILURE_GRACE,
    env: Mapping[str, str] | None = None,
    module: bool = False,
) -> list[RankResult]:
    """Run ``world_size`` processes of ``python target *args`` (``python -m target`` with
    ``module=True``) and wait for all of them; return their results, in rank order.

    Every rank gets ``RANK``, ``WORLD_SIZE`` (and the ``LOCAL_`` ones), single-threaded BLAS and
    OpenMP, and in :data:`INIT_METHOD_VARIABLE` a ``file://`` rendezvous in a fresh file under
    ``workdir``, which :func:`process_group` reads. ``env`` adds or overrides variables. Each
    rank's stdout and stderr go to ``workdir/rank<N>.stdout`` / ``.stderr`` (files, never pipes:
    a rank cannot block on a full pipe). Nothing is raised for a failed rank: check the results,
    e.g. with :func:`assert_ranks_succeeded`.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, not {world_size}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # FileStore needs a file no earlier run has used; a fresh name per run
    rendezvous = (workdir / f"rendezvous-{uuid.uuid4().hex}").resolve()
    init_method = f"file://{rendezvous}"  # not as_uri(): torch does not unquote the path
    command = [sys.executable, *(["-m", str(target)] if module else [os.fspath(target)]),
               *map(str, args)]

    processes: list[subprocess.Popen] = []
    outputs: list[tuple[Path, Path]] = []
    killed: set[int] = set()
    try:
        for rank in range(world_size):
            stdout_path = workdir / f"rank{rank}.stdout"
            stderr_path = workdir / f"rank{rank}.stderr"
            outputs.append((stdout_path, stderr_path))
            with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
                processes.append(subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                    # in the caller's process group: a signal to the test run's group (Ctrl-C,
                    # timeout(1)) reaches the ranks too, leaving no orphan behind
                    env=_rank_environment(rank, world_size, init_method, env),
                ))
        deadline = time.monotonic() + timeout
        while True:
            codes = [process.poll() for process in processes]
            if all(code is not None for code in codes):
                break
            now = time.monotonic()
            if any(code not in (None, 0) for code in codes):
                deadline = min(deadline, now + failure_grace)
            if now >= deadline:
                stuck = [r for r, process in enumerate(processes) if process.poll() is None]
                _dump_stacks([processes[rank] for rank in stuck])
                for rank in stuck:
                    _kill(processes[rank])
                    killed.add(rank)
                for process in processes:
                    process.wait()
                break
            time.sleep(_POLL)
    finally:  # an interrupted test (Ctrl-C) leaves no rank behind
        for rank, process in enumerate(processes):
            if process.poll() is None:
                _kill(process)
                killed.add(rank)
                process.wait()
        with contextlib.suppress(OSError):
            rendezvous.unlink(missing_ok=True)

    return [
        RankResult(rank=rank, returncode=process.returncode,
                   stdout=stdout.read_text(errors="replace"),
                   stderr=stderr.read_text(errors="replace"), killed=rank in killed)
        for rank, (process, (stdout, stderr)) in enumerate(zip(processes, outputs))
    ]


@contextlib.contextmanager
def process_group(backend: str = "gloo",
                  timeout: datetime.timedelta = COLLECTIVE_TIMEOUT) -> Iterator[tuple[int, int]]:
    """In a rank that :func:`run_ranks` started: join the process group, yield
    ``(rank, world_size)``, and leave cleanly.

    On success every rank meets at a barrier (so that none tears its connections down while a
    peer still uses them), then destroys the group, joining gloo's threads before the interpreter
    exits. On an exception the group is destroyed without the barrier (its peers' collectives
    then fail instead of waiting), and the exception propagates: the rank exits non-zero with its
    traceback on stderr.
    """
    import torch.distributed as dist

    try:
        init_method = os.environ[INIT_METHOD_VARIABLE]
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    except KeyError as error:
        raise RuntimeError(f"{error.args[0]} is not set: start this script with "
                           "segcore.distributed_testing.run_ranks") from None
    if _STACKS_SIGNAL is not None:  # run_ranks asks for the stacks before killing a hung rank
        faulthandler.register(_STACKS_SIGNAL, all_threads=True)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size,
                            timeout=timeout)
    succeeded = False
    try:
        yield rank, world_size
        succeeded = True
    finally:
        try:
            if succeeded:
                dist.barrier()
        finally:
            dist.destroy_process_group()
