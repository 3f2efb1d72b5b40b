"""The export matrix (docs/export.md): every installed architecture x three encoders x five ways
of running a model outside eager PyTorch, each cell a test.

Cells: ``torch.compile`` (``fullgraph=True``), ``torch.export`` (dynamic batch, height and
width), ``torch.jit.script``, ``torch.jit.trace`` and ONNX (``torch.onnx.export`` with dynamic
shapes, run by onnxruntime). Each compares with eager mode within ``TOLERANCE`` at two input
shapes, the second with another batch size and image size (torch.compile: the first only).

The matrix comes from ``segcore.list_architectures()``: a newly installed architecture plugin
joins it. A cell that cannot work carries its reason in ``KNOWN_LIMITS`` (the one table of
them) and is an ``xfail(strict=True)``: it turns red when it starts working.

``SEGCORE_WRITE_EXPORT_RESULTS=1`` makes the cells record their outcomes in
``export_results.json`` (committed; ``nox -s docs`` does this, then docs/generate.py renders
docs/export.md from it); ``test_results_file_is_current`` fails when that file no longer
matches the matrix and the table.

Budget (2 CPU cores; the module takes about 6 minutes there): small encoders, 64x64 inputs;
the compile column uses ``backend="eager"`` (graph capture; code generation by inductor is one
``slow`` cell) at one shape (a recompilation for the second would double its time; dynamic
shapes are what the export and ONNX columns check); the ONNX cell skips onnxscript's graph
optimiser, which costs more than the export itself. (The ONNX cell exports the model itself
rather than converting the torch.export cell's program: models take ONNX-only paths while
``torch.onnx.is_in_onnx_export()``, e.g. PSPNet's pooling.)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import segcore
from segcore.errors import InputShapeError

pytest.importorskip("segcore_resnet")
pytest.importorskip("segcore_timm")

RESULTS = Path(__file__).with_name("export_results.json")
#: read when the module is imported: the isolation fixture hides SEGCORE_* settings from tests
WRITE_RESULTS = os.environ.get("SEGCORE_WRITE_EXPORT_RESULTS") == "1"

#: resnet18 stands in for resnet34 (the same encoder code with fewer blocks) to fit the CI
#: budget; tu-resnet18 is the timm CNN; tu-convnext_atto the transformer-style timm encoder
#: (features from reduction 4; the reduction-2 level is a 0-channel placeholder).
ENCODERS = ("resnet18", "tu-resnet18", "tu-convnext_atto")
METHODS = ("torch.compile", "torch.export", "torch.jit.script", "torch.jit.trace", "onnx")
#: the cells that compile with the default backend (inductor: C++ code generation, ~30 s each)
INDUCTOR_CELLS = (("unet", "resnet18"),)
INDUCTOR = "torch.compile (inductor)"
#: largest absolute difference to eager mode allowed
TOLERANCE = 1e-4
#: the image size of a cell: the first of these the architecture takes (PAN needs 128)
BASE_SIZES = (64, 128, 256)
BATCH = 2
#: every cell's inputs are multiples of this (the largest encoder output stride)
STRIDE = 32

#: Cells that cannot work, with the reason the page shows. Keys are (architecture, encoder,
#: method); "*" matches any. A cell listed here is expected to fail (strict xfail).
KNOWN_LIMITS: dict[tuple[str, str, str], str] = {
    ("unetplusplus", "*", "torch.jit.script"): (
        "SMP 0.6.0 does not script Unet++ either: its decoder looks its blocks up by names "
        "built at run time (f\"x_{depth}_{layer}\"), which TorchScript cannot compile."
    ),
    ("dpt", "resnet18", "*"): (
        "DPT reads the tokens of a timm model (forward_intermediates); it takes tu- encoders "
        "only, so segcore's resnet18 cannot be built into it."
    ),
    ("pan", "tu-convnext_atto", "torch.export"): (
        "torch.export specialises the exported program on whether a size is 1: here it keeps "
        "a guard that the deepest map of PAN's feature pyramid attention (1/256 of the input "
        "with this encoder's padding) has at least 2 elements over the batch, so the program "
        "refuses a batch of one 160x192 image; eager, ONNX and compile run it."
    ),
    ("dpt", "*", "torch.jit.script"): (
        "SMP 0.6.0 does not script DPT either: DPT's encoder calls timm's "
        "forward_intermediates, which TorchScript cannot compile (it keeps values of "
        "different types in one dict)."
    ),
}


def known_limit(architecture: str, encoder: str, method: str) -> str | None:
    """The reason a cell cannot work, from ``KNOWN_LIMITS``, or ``None``."""
    for key in ((architecture, encoder, method), (architecture, encoder, "*"),
                (architecture, "*", method), ("*", encoder, method), (architecture, "*", "*"),
                ("*", encoder, "*"), ("*", "*", method)):
        if key in KNOWN_LIMITS:
            return KNOWN_LIMITS[key]
    return None


def matrix_cells() -> list[tuple[str, str, str]]:
    """Every (architecture, encoder, method) of the installed architectures, plus the
    inductor cells of installed architectures."""
    architectures = segcore.list_architectures()
    cells = [(a, e, m) for a in architectures for e in ENCODERS for m in METHODS]
    cells += [(a, e, INDUCTOR) for a, e in INDUCTOR_CELLS if a in architectures]
    return cells


def _param(cell: tuple[str, str, str]) -> Any:
    reason = known_limit(*cell)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    if cell[2] == INDUCTOR:
        marks.append(pytest.mark.slow)
    return pytest.param(*cell, marks=marks, id="-".join(cell))


CELLS = matrix_cells()
_RECORDED: dict[tuple[str, str, str], dict[str, Any]] = {}


# -- running a cell --------------------------------------------------------------------------
def _build(architecture: str, encoder: str) -> tuple[torch.nn.Module, int]:
    """The model (random weights, eval mode) and the image size of its cells."""
    torch.manual_seed(0)
    model = segcore.build(architecture, encoder=encoder, encoder_weights=None, classes=2).eval()
    for size in BASE_SIZES:
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, size, size))
        except InputShapeError:
            continue
        return model, size
    pytest.fail(f"{architecture} with {encoder} takes none of the sizes {BASE_SIZES}")


def _inputs(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The shape the program is made with, then another batch size and image size."""
    generator = torch.Generator().manual_seed(0)
    first = torch.rand(BATCH, 3, size, size, generator=generator)
    second = torch.rand(1, 3, size + STRIDE, size + 2 * STRIDE, generator=generator)
    return first, second


def _dynamic_shapes(size: int) -> dict[str, dict[int, Any]]:
    """Batch 1-16 and height and width any multiple of 32 from ``size`` to 1024."""
    from torch.export import Dim

    return {"x": {
        0: Dim("batch", min=1, max=16),
        2: STRIDE * Dim("height_blocks", min=size // STRIDE, max=1024 // STRIDE),
        3: STRIDE * Dim("width_blocks", min=size // STRIDE, max=1024 // STRIDE),
    }}


def _compare(run: Callable[[torch.Tensor], Any], model: torch.nn.Module,
             inputs: tuple[torch.Tensor, ...]) -> None:
    for x in inputs:
        with torch.no_grad():
            expected = model(x)
            actual = run(x)
        actual = torch.as_tensor(actual)
        assert actual.shape == expected.shape, (
            f"input {tuple(x.shape)}: shape {tuple(actual.shape)}, eager gives "
            f"{tuple(expected.shape)}")
        difference = (actual - expected).abs().max().item()
        assert difference <= TOLERANCE, (
            f"input {tuple(x.shape)}: differs from eager by {difference:.3g} "
            f"(allowed {TOLERANCE})")


def _compile(model: torch.nn.Module, size: int, tmp_path: Path, backend: str = "eager") -> None:
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    _compare(compiled, model, _inputs(size)[:1])


def _export(model: torch.nn.Module, size: int, tmp_path: Path) -> None:
    first, second = _inputs(size)
    with torch.no_grad():
        program = torch.export.export(model, (first,), dynamic_shapes=_dynamic_shapes(size))
    _compare(program.module(), model, (first, second))


def _script(model: torch.nn.Module, size: int, tmp_path: Path) -> None:
    # A type whose compilation failed in an earlier cell stays half-defined in TorchScript's
    # type store ("Can't redefine method"); each cell starts from an empty store.
    torch.jit._recursive.concrete_type_store = torch.jit._recursive.ConcreteTypeStore()
    scripted = torch.jit.script(model)
    _compare(scripted, model, _inputs(size))


def _trace(model: torch.nn.Module, size: int, tmp_path: Path) -> None:
    first, second = _inputs(size)
    with torch.no_grad():
        traced = torch.jit.trace(model, (first,))
    _compare(traced, model, (first, second))


def _onnx(model: torch.nn.Module, size: int, tmp_path: Path) -> None:
    # noxfile.py's TEST_TOOLS install both; without them the cell is skipped, not failed
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")

    first, second = _inputs(size)
    path = tmp_path / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (first,), str(path), dynamo=True, optimize=False,
                          input_names=["x"], output_names=["mask"],
                          dynamic_shapes=_dynamic_shapes(size))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])

    _compare(run, model, (first, second))


RUNNERS: dict[str, Callable[[torch.nn.Module, int, Path], None]] = {
    "torch.compile": _compile,
    "torch.export": _export,
    "torch.jit.script": _script,
    "torch.jit.trace": _trace,
    "onnx": _onnx,
    INDUCTOR: lambda model, size, tmp_path: _compile(model, size, tmp_path, backend="inductor"),
}


def _first_line(error: BaseException) -> str:
    """The error's type and first line (colour codes removed, at most 300 characters)."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 300 else text[:297] + "..."


# -- the cells -------------------------------------------------------------------------------
@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning")
@pytest.mark.parametrize(("architecture", "encoder", "method"), [_param(c) for c in CELLS])
def test_cell(architecture: str, encoder: str, method: str, tmp_path: Path) -> None:
    cell = (architecture, encoder, method)
    reason = known_limit(*cell)
    record: dict[str, Any] = {"architecture": architecture, "encoder": encoder,
                              "method": method}
    try:
        model, size = _build(architecture, encoder)
        first, second = _inputs(size)
        record["inputs"] = [list(first.shape), list(second.shape)]
        RUNNERS[method](model, size, tmp_path)
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt | pytest.skip.Exception):
            raise
        if reason is not None:
            record.update(outcome="xfail", reason=reason)
        else:
            record.update(outcome="fail", error=_first_line(error))
        _RECORDED[cell] = record
        raise
    record["outcome"] = "pass"
    _RECORDED[cell] = record


# -- the results file and the table ----------------------------------------------------------
def _versions() -> dict[str, str]:
    versions = {}
    for package in ("torch", "timm", "onnx", "onnxscript", "onnxruntime"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return entry["architecture"], entry["encoder"], entry["method"]


@pytest.fixture(scope="module", autouse=True)
def _write_results() -> Iterator[None]:
    """With SEGCORE_WRITE_EXPORT_RESULTS=1: after the cells ran, merge their outcomes into
    export_results.json (cells not run this time keep theirs; cells no longer in the matrix
    are dropped)."""
    yield
    if not WRITE_RESULTS or not _RECORDED:
        return
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"cells": []}
    entries = {_key(entry): entry for entry in previous.get("cells", [])}
    entries.update(_RECORDED)
    order = {cell: index for index, cell in enumerate(CELLS)}
    cells = sorted((entry for key, entry in entries.items() if key in order),
                   key=lambda entry: order[_key(entry)])
    document = {
        "written_by": "tests/integration/test_export.py (SEGCORE_WRITE_EXPORT_RESULTS=1); "
                      "docs/generate.py renders docs/export.md from it",
        "versions": _versions(),
        "tolerance": TOLERANCE,
        "encoders": list(ENCODERS),
        "methods": list(METHODS),
        "cells": cells,
    }
    RESULTS.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


@pytest.mark.skipif(WRITE_RESULTS, reason="this run rewrites the results file")
def test_results_file_is_current() -> None:
    """export_results.json has every cell of the current matrix, each with the outcome its
    test expects: "pass", or "xfail" with the reason of KNOWN_LIMITS."""
    assert RESULTS.is_file(), "no export_results.json: run nox -s docs"
    document = json.loads(RESULTS.read_text(encoding="utf-8"))
    recorded = {_key(entry): entry for entry in document["cells"]}
    problems = []
    for cell in CELLS:
        entry = recorded.get(cell)
        reason = known_limit(*cell)
        expected = "xfail" if reason else "pass"
        if entry is None:
            problems.append(f"{cell}: missing")
        elif entry["outcome"] != expected:
            problems.append(f"{cell}: recorded {entry['outcome']!r} "
                            f"({entry.get('error', entry.get('reason', ''))}), expected "
                            f"{expected!r}")
        elif reason is not None and entry.get("reason") != reason:
            problems.append(f"{cell}: recorded reason differs from KNOWN_LIMITS")
    problems += [f"{cell}: not in the matrix" for cell in recorded if cell not in CELLS]
    assert not problems, (
        "tests/integration/export_results.json does not match what the cells expect. Fix the "
        "failing cells (or give KNOWN_LIMITS the reason a cell cannot work), then run nox -s "
        "docs to record the outcomes:\n" + "\n".join(problems))


def test_every_known_limit_names_installed_cells() -> None:
    """A KNOWN_LIMITS entry of an installed architecture matches at least one cell."""
    installed = set(segcore.list_architectures())
    methods = (*METHODS, INDUCTOR)
    unused = [
        key for key in KNOWN_LIMITS
        if key[0] in installed | {"*"}
        and not any(known_limit(*cell) == KNOWN_LIMITS[key] and all(
            part in ("*", value) for part, value in zip(key, cell)) for cell in CELLS)
    ]
    assert not unused, f"KNOWN_LIMITS entries that match no cell: {unused}"
    assert all(key[2] in (*methods, "*") and key[1] in (*ENCODERS, "*") for key in KNOWN_LIMITS)
