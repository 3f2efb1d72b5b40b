"""Models train under DistributedDataParallel (2 CPU processes, gloo), with the classification
head and scse attention switched on: after two steps on different data the ranks' parameters
are still identical, and they changed.

The ranks are plain processes started by ``segcore.distributed_testing.run_ranks``: they meet
through a file (no port to race for), run single-threaded, wait generously and leave the group
cleanly, so that a loaded machine makes the test slower but does not fail it
(``benchmarks/soak_distributed.sh`` runs it 20 times under CPU load).
"""

from __future__ import annotations

import textwrap

import pytest

from segcore.distributed_testing import assert_ranks_succeeded, run_ranks

pytest.importorskip("segcore_unet")
pytest.importorskip("segcore_deeplab")
pytest.importorskip("segcore_resnet")

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch, torch.distributed as dist
    import segcore
    from segcore.distributed_testing import process_group

    def run(rank, world_size, architecture, options):
        torch.manual_seed(0)  # same initial weights on both ranks
        model = segcore.build(architecture, encoder="resnet18", classes=2,
                              aux_params={"classes": 3}, **options)
        initial = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
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
        assert not torch.equal(flat, initial), "the train steps changed nothing"
        gathered = [torch.zeros_like(flat) for _ in range(world_size)]
        dist.all_gather(gathered, flat)
        assert all(torch.equal(gathered[0], g) for g in gathered[1:]), "ranks diverged"

    if __name__ == "__main__":
        architecture, options = sys.argv[1], json.loads(sys.argv[2])
        with process_group() as (rank, world_size):
            run(rank, world_size, architecture, options)
        print("ok")
    """
)


@pytest.mark.parametrize(
    ("architecture", "options"),
    [("unet", '{"decoder_attention_type": "scse"}'), ("deeplabv3plus", "{}")],
)
def test_ddp_train_steps_keep_ranks_in_sync(tmp_path, architecture, options):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    results = run_ranks(script, 2, tmp_path / "ranks", [architecture, options])
    assert_ranks_succeeded(results, expect_stdout="ok")
