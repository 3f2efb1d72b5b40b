"""Every task of the project: ``nox -s tests``, ``isolated``, ``lint``, ``reliability``,
``security``, ``parity``, ``demo``, ``bench``, ``soak``.

Environments are made with uv, whose cache makes the second torch install take seconds.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYTHON = "3.11"
PLUGINS = sorted(path.name for path in (ROOT / "plugins").iterdir() if path.is_dir())
SMP = "segmentation-models-pytorch==0.6.0"
# uv: the out-of-tree plugin test installs a package with it (uv environments have no pip);
# onnx, onnxscript (torch.onnx.export's exporter) and onnxruntime: the export matrix
# (tests/integration/test_export.py)
TEST_TOOLS = ["pytest>=7", "pytest-xdist>=3.5", "hypothesis>=6", "uv>=0.4", "onnx>=1.16",
              "onnxscript>=0.3", "onnxruntime>=1.18"]
#: pytest-xdist: one worker per core (at most 4), a test file's tests on one worker (they share
#: module-level models); each worker runs torch on one thread, so workers do not oversubscribe
#: the cores. ``nox -s tests -- -n 0`` runs in one process.
PARALLEL = ["-n", "auto", "--maxprocesses", "4", "--dist", "loadfile"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _install_everything(session: nox.Session, *extra: str) -> None:
    session.install("-e", ".[hub]", *[f"-e{ROOT / 'plugins' / name}" for name in PLUGINS],
                    *TEST_TOOLS, *extra)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite with core and every plugin installed (parity tests skip without SMP)."""
    _install_everything(session)
    session.run("pytest", *PARALLEL, "tests", *[f"plugins/{name}/tests" for name in PLUGINS],
                *session.posargs, env=ONE_THREAD)


def _first_party_dependencies(package: str) -> list[str]:
    """The plugins of this repository that ``package`` declares as dependencies or test
    dependencies (its ``test`` extra), with theirs; they are not on the package registry, so
    the isolated session installs them from here."""
    import re

    import tomllib

    found: list[str] = []
    pending = [package]
    while pending:
        project = tomllib.loads((ROOT / "plugins" / pending.pop() / "pyproject.toml")
                                .read_text())["project"]
        requirements = [*project.get("dependencies", []),
                        *project.get("optional-dependencies", {}).get("test", [])]
        for requirement in requirements:
            name = re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].strip()
            if name in PLUGINS and name not in found:
                found.append(name)
                pending.append(name)
    return found


@nox.session(python=PYTHON)
@nox.parametrize("package", ["segcore", *PLUGINS])
def isolated(session: nox.Session, package: str) -> None:
    """One package with only core and its declared dependencies, running its own tests."""
    if package == "segcore":
        session.install("-e", ".[hub]", *TEST_TOOLS)
        session.run("pytest", *PARALLEL, "tests/core", *session.posargs, env=ONE_THREAD)
        return
    first_party = [f"plugins/{name}" for name in _first_party_dependencies(package)]
    session.install("-e", ".", *[f"-e{path}" for path in first_party], "-e",
                    f"plugins/{package}", *TEST_TOOLS)
    session.run("pytest", *PARALLEL, f"plugins/{package}/tests", *session.posargs,
                env=ONE_THREAD)


@nox.session(python=PYTHON)
def reliability(session: nox.Session) -> None:
    """The reliability catalogue alone (bad input, hostile files, faults); also in ``tests``."""
    _install_everything(session)
    session.run("pytest", "tests/reliability", *session.posargs)


@nox.session(python=PYTHON)
def security(session: nox.Session) -> None:
    """Malicious saved-model folders against the oldest timm that segcore-timm allows."""
    import tomllib

    dependencies = tomllib.loads((ROOT / "plugins" / "segcore-timm" / "pyproject.toml")
                                 .read_text())["project"]["dependencies"]
    floor = next(d for d in dependencies if d.startswith("timm>=")).split(">=")[1].split(",")[0]
    _install_everything(session, f"timm=={floor}")
    session.run("pytest", "tests/security", *session.posargs)


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """The distributed tests 20 times in a row under a parallel CPU load (not part of CI)."""
    _install_everything(session)
    session.run("bash", "benchmarks/soak_distributed.sh", *session.posargs, external=True)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Regenerate the pages whose facts come from the code (docs/errors.md, ...): the export
    matrix runs first and records its outcomes, which docs/export.md is written from."""
    _install_everything(session)
    session.run("python", "tests/reliability/errors_doc.py")
    # A cell that fails unexpectedly is recorded and shown on the page as failing (exit
    # status 1); test_results_file_is_current then fails in `nox -s tests` until it is fixed.
    session.run("pytest", "tests/integration/test_export.py", "-q",
                env={"SEGCORE_WRITE_EXPORT_RESULTS": "1"}, success_codes=[0, 1])
    session.run("python", "docs/generate.py")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over core, plugins, tests, benchmarks and examples."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def parity(session: nox.Session) -> None:
    """Compare segcore with SMP 0.6.0: checkpoints load strict, outputs agree."""
    _install_everything(session, SMP)
    session.run("pytest", *PARALLEL, "tests/parity", "-p", "no:randomly", *session.posargs,
                env=ONE_THREAD)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job on the synthetic dataset: data, training, evaluation, tiled prediction
    (examples/main_job.py; a few minutes on a CPU). ``examples/demo.py`` builds a few models."""
    session.install("-e", ".", *[f"-e{ROOT / 'plugins' / name}" for name in PLUGINS])
    session.run("python", "examples/main_job.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with SMP 0.6.0 (import, build, train step, inference, metrics)."""
    _install_everything(session, SMP)
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)
