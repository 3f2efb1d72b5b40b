"""Listing everything that is installed imports no implementation module and no timm.

Plugins reference their code lazily (``"module:callable"``), so ``segcore list`` and
``segcore.list_encoders()`` stay fast with every plugin installed; benchmarks/bench_models.py
times it against ``import torch`` (the goal: under 0.3 s more).
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
from segcore.registry import get_registry
names = {kind: get_registry().names(kind)
         for kind in ("encoders", "architectures", "losses", "metrics", "heads")}
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("timm", "torchvision", "huggingface_hub")
               or (m.startswith("segcore_") and not m.endswith((".plugin", "_plugin"))
                   and "." in m))
print(json.dumps({"counts": {k: len(v) for k, v in names.items()}, "heavy": heavy}))
"""


def test_listing_every_plugin_imports_no_implementation_and_no_timm() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            check=True, timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["counts"]["encoders"] >= 11 and report["counts"]["architectures"] >= 1
    assert report["heavy"] == [], f"listing imported {report['heavy']}"
