"""Root conftest: every test of the repository (core, plugins, integration) runs isolated.

``segcore.testing`` is a pytest plugin: each test gets a fresh plugin registry, an empty
weights cache and none of the user's ``SEGCORE_*`` settings (fixture ``segcore_isolation``).
"""

import sys

import pytest

pytest_plugins = ["segcore.testing"]


@pytest.fixture(autouse=True)
def _fresh_compiler_caches():
    """Each test compiles from scratch: Dynamo's caches are per code object (all models share
    ``SegmentationModel.forward``), so compilations of earlier tests would count towards the
    recompile limit of later ones."""
    yield
    dynamo = sys.modules.get("torch._dynamo")
    if dynamo is not None:
        dynamo.reset()
