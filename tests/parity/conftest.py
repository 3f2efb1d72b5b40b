"""The parity tests share ``smp_pairs`` (this folder): pytest runs with
``--import-mode=importlib``, which puts no test folder on ``sys.path``, so this one is added."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
