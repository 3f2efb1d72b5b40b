"""The parity tests share ``smp_pairs`` (this folder): pytest runs with
``--import-mode=importlib``, which puts no test folder on ``sys.path``, so this one is added.
Also the ``smp_encoders`` cache of the encoder files."""

import sys
from pathlib import Path

import pytest
import torch

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(scope="module")
def smp_encoders() -> dict[str, torch.nn.Module]:
    """SMP's encoders (3 input channels) by name, for ``smp_pairs.cached_smp_encoder``: each
    built once per module (building a VGG also initialises the torchvision classifier that
    SMP then deletes, over 100M parameters)."""
    return {}
