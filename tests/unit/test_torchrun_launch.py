"""torchrun's launch on one node or many: the argv and the per-node environment every backend uses."""

from __future__ import annotations

import pytest

from dtrun.errors import SpecError
from dtrun.providers import torchrun_launch as t


def test_one_node_is_standalone_with_one_process_per_gpu() -> None:
    assert t.procs_per_node(0) == 1 and t.procs_per_node(8) == 8
    assert t.standalone_argv("train.py", ["--epochs", "3"], 4) == [
        "torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=4", "train.py", "--epochs", "3"]


def test_every_node_runs_the_same_argv_and_differs_only_by_its_rank() -> None:
    rdzv = t.Rendezvous(nnodes=3, nproc_per_node=2, master_addr="job-0")
    assert rdzv.world_size == 6
    assert t.node_argv("train.py", ["-v"]) == ["torchrun", "train.py", "-v"]
    envs = [t.node_env(rdzv, rank) for rank in range(3)]
    assert [e["PET_NODE_RANK"] for e in envs] == ["0", "1", "2"]
    assert all({k: v for k, v in e.items() if k != "PET_NODE_RANK"} == t.common_env(rdzv) for e in envs)
    assert t.common_env(rdzv) == {"PET_NNODES": "3", "PET_NPROC_PER_NODE": "2", "PET_MASTER_ADDR": "job-0",
                                  "PET_MASTER_PORT": "29500", "PET_MAX_RESTARTS": "0", "PET_RDZV_BACKEND": "static"}


def test_docker_names_node_zero_first_and_slurm_reads_rank_and_master_in_the_allocation() -> None:
    assert t.docker_hostnames("dtrun-ddp-1a2b", 2) == ["dtrun-ddp-1a2b-0", "dtrun-ddp-1a2b-1"]
    lines = t.slurm_prologue(t.Rendezvous(nnodes=2, nproc_per_node=4, master_addr="", master_port=29400))
    assert "export PET_NNODES=2" in lines and "export PET_MASTER_PORT=$((29400 + SLURM_JOB_ID % 10000))" in lines
    # the batch shell runs on node 0 only: the rank is each srun task's own (dtrun.backends.slurm.nodes)
    assert not any("PET_NODE_RANK" in line for line in lines)
    assert 'export PET_MASTER_ADDR="${DTRUN_ADDR:-$DTRUN_FIRST}"' in lines


def test_impossible_shapes_are_refused() -> None:
    with pytest.raises(SpecError, match="at least one node"):
        t.Rendezvous(nnodes=0, nproc_per_node=1, master_addr="a")
    with pytest.raises(SpecError, match="not a TCP port"):
        t.Rendezvous(nnodes=2, nproc_per_node=1, master_addr="a", master_port=70000)
    with pytest.raises(SpecError, match=r"outside 0\.\.1"):
        t.node_env(t.Rendezvous(nnodes=2, nproc_per_node=1, master_addr="a"), 2)
