"""Models train under DistributedDataParallel (2 CPU processes, gloo on 127.0.0.1).

DDP fails when a parameter receives no gradient, so this also proves that every parameter of
the models is used, with the classification head and scse attention switched on.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("segcore_unet")
pytest.importorskip("segcore_deeplab")
pytest.importorskip("segcore_resnet")

WORKER = textwrap.dedent(
    """
    import os, sys
    import torch, torch.distributed as dist
    import segcore

    def run(rank, port, architecture, options):
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=2)
        torch.manual_seed(0)  # same initial weights on both ranks
        model = segcore.build(architecture, encoder="resnet18", classes=2,
                              aux_params={"classes": 3}, **options)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        torch.manual_seed(rank)  # different data on each rank
        for _ in range(2):
            x = torch.randn(2, 3, 64, 64)
            mask, labels = ddp(x)
            loss = mask.mean() + labels.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(2)]
        dist.all_gather(gathered, flat)
        assert torch.equal(gathered[0], gathered[1]), "ranks diverged"
        dist.destroy_process_group()

    if __name__ == "__main__":
        import json
        port, architecture, options = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
        torch.multiprocessing.spawn(run, args=(port, architecture, options), nprocs=2)
        print("ok")
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("architecture", "options"),
    [("unet", '{"decoder_attention_type": "scse"}'), ("deeplabv3plus", "{}")],
)
def test_ddp_train_steps_keep_ranks_in_sync(tmp_path, architecture, options):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    result = subprocess.run(
        [sys.executable, str(script), str(_free_port()), architecture, options],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
