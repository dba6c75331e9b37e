"""defect_plugins.fit.distributed: a fit's processes, their torchrun command and what the card says (no training)."""
from __future__ import annotations

import sys

import pytest

from defect_plugins.fit.distributed import DEFAULT_PORT, DistributedOptions, batch_line, card_line


def test_one_process_is_not_distributed() -> None:
    one = DistributedOptions()
    assert (one.world_size, one.distributed, one.writes_bundle) == (1, False, True)
    assert one.describe() == "1 process" and card_line(None) == "- 1 process"


def test_two_machines_run_torchrun_with_their_rank_and_machine_0_writes() -> None:
    node1 = DistributedOptions(nproc=4, nnodes=2, node_rank=1, master_addr="10.0.0.1")
    assert node1.world_size == 8 and node1.distributed and not node1.writes_bundle
    assert node1.port() == DEFAULT_PORT  # across machines every one must agree on the port
    command = node1.torchrun("defect_plugins.fit.anomaly_ddp", ["spec.json"], node1.port())
    assert command == [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--node-rank=1",
                       "--master-addr=10.0.0.1", f"--master-port={DEFAULT_PORT}", "--nproc-per-node=4", "-m",
                       "defect_plugins.fit.anomaly_ddp", "spec.json"]
    assert node1.launcher_env(29501) == {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1",
                                         "PORT": "29501"}


def test_one_machine_takes_a_free_port_unless_given() -> None:
    assert 0 < DistributedOptions(nproc=2).port() <= 65535
    assert DistributedOptions(nproc=2, master_port=29600).port() == 29600


def test_the_card_states_the_global_batch_and_the_learning_rate_rule() -> None:
    two = DistributedOptions(nproc=2)
    record = two.record(8, "--lr 0.01 as given")
    assert {k: record[k] for k in ("nproc", "world_size", "per_process_batch", "global_batch")} == {
        "nproc": 2, "world_size": 2, "per_process_batch": 8, "global_batch": 16}
    assert card_line(record).startswith("- 2 training processes (one machine, ")
    assert "global batch 16; learning rate: --lr 0.01 as given" in card_line(record)
    assert batch_line(two, 8).endswith("batch 8 per process, global batch 16")


@pytest.mark.parametrize("kwargs, message", [
    (dict(nproc=0), "--nproc must be at least 1"),
    (dict(nnodes=0), "--nnodes must be at least 1"),
    (dict(nnodes=2, node_rank=2), "--node-rank 2 with --nnodes 2"),
    (dict(master_port=70000), "--master-port 70000"),
])
def test_impossible_settings_are_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        DistributedOptions(**kwargs)
