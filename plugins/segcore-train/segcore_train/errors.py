"""Errors of bad training data; each names the file and the fix.

``DataError`` is one problem (a file that cannot be read, a mask with values out of range);
``DataValidationError`` collects every problem ``scan`` found, so that a dataset is fixed in
one pass rather than one error per training run.

Example::

    try:
        report = scan("data", classes=4)
    except DataValidationError as error:
        for problem in error.problems:
            print(problem.kind, problem.path, problem.fix)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segcore.errors import SegcoreError

#: The kinds of problem, as ``DataProblem.kind`` names them.
PROBLEM_KINDS = (
    "missing-folder",   # DIR, images/ or masks/ does not exist
    "empty",            # no image at all
    "unsupported-file", # a file or folder the layout does not know
    "duplicate-stem",   # two images (or masks) with the same stem
    "missing-mask",     # an image without its mask
    "orphan-mask",      # a mask without its image
    "lossy-mask",       # a JPEG mask
    "unreadable",       # a file the reader cannot decode
    "size-mismatch",    # image and mask of different sizes
    "class-values",     # mask values >= classes (or negative, or fractional)
    "label-values",     # multi-label mask values other than 0/1 or 0/255
    "mask-channels",    # a colour mask where class indices are needed, or K is wrong
    "channels",         # images with different channel counts, or a count that cannot be converted
    "splits",           # a splits file that is unreadable or names unknown stems
    "classes-file",     # classes.txt disagrees with the number of classes
)


@dataclass(frozen=True)
class DataProblem:
    """One problem of a dataset: what kind, which file, what is wrong and how to fix it."""

    kind: str
    path: Path | None
    message: str
    fix: str

    def describe(self, root: Path | None = None) -> str:
        """One line: ``path: message; fix``, the path relative to ``root`` when inside it."""
        where = _shown_path(self.path, root)
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.message}; {self.fix}"

    def __str__(self) -> str:
        return self.describe()


class DataError(SegcoreError, ValueError):
    """Training data that cannot be used: names the file and the fix.

    ``problem`` is the ``DataProblem`` behind the message, when there is one.
    """

    def __init__(self, message: str, problem: DataProblem | None = None) -> None:
        super().__init__(message)
        self.problem = problem

    @classmethod
    def of(cls, problem: DataProblem) -> DataError:
        """The error of one problem."""
        return cls(problem.describe(), problem)


class DataValidationError(DataError):
    """Every problem found in a dataset (``problems``), the first ``max_listed`` in the message."""

    def __init__(self, root: Path, problems: Sequence[DataProblem],
                 max_listed: int = 20) -> None:
        self.root = Path(root)
        self.problems = list(problems)
        count = len(self.problems)
        kinds = sorted({problem.kind for problem in self.problems})
        lines = [
            f"the dataset in {self.root} has {count} problem{'s' if count != 1 else ''} "
            f"({', '.join(kinds)}); fix them and run `segcore data check {self.root}` again:"
        ]
        lines += [f"  - {problem.describe(self.root)}" for problem in self.problems[:max_listed]]
        if count > max_listed:
            lines.append(f"  ... and {count - max_listed} more (raise max_errors to list them)")
        super().__init__("\n".join(lines), self.problems[0] if self.problems else None)


def _shown_path(path: Path | None, root: Path | None) -> str:
    if path is None:
        return ""
    if root is not None:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return str(path)


class CheckpointError(SegcoreError, RuntimeError):
    """A checkpoint or run folder that cannot be written or read; the message names the path.

    A failed write leaves the previous checkpoint in place (the file is replaced only once the
    new one is complete on disk).
    """
