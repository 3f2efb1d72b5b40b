"""Models to and from the Hugging Face Hub, end to end, against the loopback Hub.

``model.push_to_hub``, ``save_pretrained(push_to_hub=True)``, ``segcore.from_pretrained`` and
``segcore.smp.from_pretrained`` with a repository id (and ``revision``), online and with
``HF_HUB_OFFLINE=1`` from huggingface_hub's cache. The models run in a child process whose
``HF_ENDPOINT`` is the loopback server of ``tests/core/hf_loopback.py`` (huggingface_hub reads
its settings when it is imported); nothing is mocked and huggingface.co is never contacted.
The lower layer (``segcore.hub``) has its own tests in ``tests/core/test_hub.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("huggingface_hub", reason="needs huggingface_hub (segcore[hub])")
pytest.importorskip("segcore_unet")
pytest.importorskip("segcore_resnet")

_SPEC = importlib.util.spec_from_file_location(
    "hf_loopback", Path(__file__).parents[1] / "core" / "hf_loopback.py")
hf_loopback = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("hf_loopback", hf_loopback)
_SPEC.loader.exec_module(hf_loopback)

TOKEN = "hf_loopbacktoken"
#: generous: CI is a loaded 2-core machine and each child imports torch and huggingface_hub
CHILD_TIMEOUT = 600

PUSH = r"""
import json, sys, torch, segcore
torch.manual_seed(0)
x = torch.randn(1, 3, 64, 64)
first = segcore.Unet("resnet18", encoder_weights=None, classes=2).eval()
url = first.push_to_hub("owner/unet", metrics={"iou": 0.8}, dataset="owner/fields",
                        private=True)
second = segcore.Unet("resnet18", encoder_weights=None, classes=2).eval()
folder = sys.argv[1]
second.save_pretrained(folder, push_to_hub=True, repo_id="owner/unet", metrics={"iou": 0.9})
with torch.no_grad():
    outputs = [first(x).tolist(), second(x).tolist()]
print("ANSWER " + json.dumps({"url": url, "outputs": outputs}))
"""

LOAD = r"""
import json, sys, torch, segcore
import segcore.smp as smp
from segcore.errors import SegcoreError
torch.manual_seed(0)
x = torch.randn(1, 3, 64, 64)
answers = []
for loader, kwargs in json.loads(sys.argv[1]):
    try:
        function = smp.from_pretrained if loader == "smp" else segcore.from_pretrained
        model = function("owner/unet", **kwargs)
        with torch.no_grad():
            answers.append({"output": model(x).tolist(), "training": model.training,
                            "classes": model.config["classes"]})
    except SegcoreError as error:
        answers.append({"error": type(error).__name__, "message": str(error)})
print("ANSWER " + json.dumps(answers))
"""


def _environment(server: Any, home: Path, *, offline: bool = False) -> dict[str, str]:
    keep = {name: value for name, value in os.environ.items()
            if not name.upper().startswith(("HF_", "HUGGINGFACE"))
            and not name.upper().endswith("_PROXY")}
    return {**keep, "HF_ENDPOINT": server.url, "HF_HOME": str(home), "HF_TOKEN": TOKEN,
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_ETAG_TIMEOUT": "120",
            "HF_HUB_DOWNLOAD_TIMEOUT": "120", "NO_PROXY": "127.0.0.1,localhost",
            "HF_HUB_OFFLINE": "1" if offline else "0", "OMP_NUM_THREADS": "1"}


def _child(code: str, argument: str, env: dict[str, str]) -> Any:
    process = subprocess.run([sys.executable, "-c", code, argument], capture_output=True,
                             text=True, env=env, timeout=CHILD_TIMEOUT)
    lines = [line for line in process.stdout.splitlines() if line.startswith("ANSWER ")]
    assert process.returncode == 0 and lines, (
        f"child failed ({process.returncode}):\n{process.stdout}\n{process.stderr}")
    return json.loads(lines[-1][len("ANSWER "):])


def test_push_then_load_by_repository_id_revision_and_offline(tmp_path):
    import torch

    home = tmp_path / "hf-home"
    with hf_loopback.LoopbackHub(token=TOKEN) as server:
        pushed = _child(PUSH, str(tmp_path / "saved"), _environment(server, home))
        repository = server.repositories["owner/unet"]
        assert repository.private
        # the repository's creation, push_to_hub, then save_pretrained(push_to_hub=True)
        *_, first_commit, second_commit = repository.commits
        assert pushed["url"] == f"{server.url}/owner/unet/commit/{first_commit}"
        assert repository.branches["main"] == second_commit
        stored = server.files("owner/unet")
        assert {"config.json", "model.safetensors", "README.md"} <= set(stored)
        assert json.loads(stored["config.json"])["_model_class"] == "Unet"
        assert "iou" in stored["README.md"].decode()  # the second push's card
        assert stored["model.safetensors"] == (tmp_path / "saved" / "model.safetensors"
                                               ).read_bytes()

        answers = _child(LOAD, json.dumps([
            ["segcore", {}],                                    # main: the second model
            ["segcore", {"revision": first_commit}],            # pinned: the first
            ["smp", {"revision": first_commit}],
            ["segcore", {"classes": 5, "strict": False}],       # fine-tuning from the Hub
            ["segcore", {"revision": "no-such-branch"}],
        ]), _environment(server, home))
        offline = _child(LOAD, json.dumps([
            ["segcore", {}],
            ["segcore", {"revision": first_commit}],
        ]), _environment(server, home, offline=True))
        fresh = _child(LOAD, json.dumps([["segcore", {}]]),
                       _environment(server, tmp_path / "empty-home", offline=True))

    first, second = (torch.tensor(output) for output in pushed["outputs"])
    main, pinned, smp_pinned, fine_tuned, missing = answers

    def close(answer: dict[str, Any], expected: torch.Tensor) -> None:
        assert "output" in answer, answer
        torch.testing.assert_close(torch.tensor(answer["output"]), expected, atol=0, rtol=0)
        assert answer["training"] is False  # from_pretrained gives eval mode

    close(main, second)
    close(pinned, first)
    close(smp_pinned, first)
    close(offline[0], second)
    close(offline[1], first)
    assert fine_tuned["classes"] == 5 and len(fine_tuned["output"][0]) == 5
    assert missing.get("error") == "WeightsNotFoundError", missing
    assert "no-such-branch" in missing["message"]
    [not_cached] = fresh
    assert "owner/unet" in not_cached["message"] and "empty-home" in not_cached["message"]
