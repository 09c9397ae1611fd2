"""`provider: torchrun` with `nodes: 2` on the local Slurm cluster: one sbatch job over `--nodes=2`, one srun
task per node, each running its node's container through the in-job agent; the ranks all-reduce (CPU, gloo).

`scripts/start-slurm` runs two slurmd on this machine (Slurm's multiple-slurmd setup: one port each), so
the two nodes are real Slurm nodes of one allocation (`SLURM_NODEID` 0 and 1, node 0's `NodeAddr` as the
rendezvous host), sharing this machine's network and Docker daemon. The torch image is the one the Docker
torchrun tests build (the same workflow, so its cached layers); the agent is a small layer on top.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DtrunRunner
from tests.integration.slurm.conftest import Cluster
from tests.integration.test_torchrun import ALLREDUCE, NODES, SAVED, WAITING, _run_name, saved_nodes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]


def _runner(dtrun: DtrunRunner, cluster: Cluster) -> DtrunRunner:
    """`dtrun` aimed at the cluster's 2-node partition (skipped, with the reason, where it has none)."""
    nodes = cluster.run("sinfo", "-h", "-p", "multi", "-o", "%D", check=False).stdout.strip()
    if nodes != "2":
        pytest.skip(f"the local cluster has no 2-node partition `multi` (sinfo: {nodes!r})")
    exported = {k: v for k, v in cluster.env.items() if k.startswith(("DTRUN_SLURM_", "SLURM_CONF"))}
    return DtrunRunner(env={**dtrun.env, **exported, "DTRUN_BACKEND": "slurm", "DTRUN_SLURM_PARTITION": "multi"},
                       store=dtrun.store)


def _nothing_left(cluster: Cluster, runner: DtrunRunner) -> None:
    """No container of the run is left once each node's cleanup trap ran (they run as Slurm ends the
    job's tasks, so give them a bounded moment on a loaded machine)."""
    deadline = time.monotonic() + 60
    while True:
        left = cluster.run("docker", "ps", "-a", "-q", "--filter", f"label=dev.dtrun.store={runner.store_label}")
        if not left.stdout.strip() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert left.stdout.strip() == ""
    queue = cluster.run("squeue", "-h", "-o", "%k", check=False).stdout
    assert f"store={runner.store_label}" not in queue


@pytest.mark.timeout(2400)
def test_two_slurm_nodes_of_two_processes_all_reduce(dtrun: DtrunRunner, slurm_cluster: Cluster,
                                                     make_project: Any, tmp_path: Path) -> None:
    runner = _runner(dtrun, slurm_cluster)
    root = make_project({".dtrun/workflows.yaml": NODES, "allreduce.py": ALLREDUCE})
    run = runner("run", "ddp", cwd=root, timeout=1800)
    assert run.code == 0, run.output
    assert "as Slurm job" in run.output, run.output
    # node 0's log is the job's (what `dtrun run` follows); node 1's is stored beside it
    for rank in (0, 1):
        assert f"rank {rank}/4 (node 0, local {rank}): sum of ranks 6 == 6 ok" in run.output, run.output
    [record] = [json.loads(p.read_text()) for p in runner.store.glob("repos/**/jobs/*/job.json")]
    [node1] = list(runner.store.glob(f"repos/**/jobs/{record['id']}/logs-node1.txt"))
    text = node1.read_text()
    for rank in (2, 3):
        assert f"rank {rank}/4 (node 1, local {rank - 2}): sum of ranks 6 == 6 ok" in text, text
    # each node wrote its rank into out/, from1/, every/: `out` is node 0's, `from1` node 1's (its agent saved
    # it), `every` both nodes' (every/node0, every/node1)
    got = runner("artifacts", _run_name(run), "--output", str(tmp_path / "got"), cwd=root)
    assert got.code == 0, got.output
    assert saved_nodes(tmp_path / "got") == SAVED
    _nothing_left(slurm_cluster, runner)


@pytest.mark.timeout(900)
def test_stop_reaches_every_node_and_saves_node_zeros_outputs(dtrun: DtrunRunner, slurm_cluster: Cluster,
                                                             make_project: Any, tmp_path: Path) -> None:
    """`dtrun stop` signals the srun tasks (not the batch shell): each stops its node's container with the
    grace, node 0's agent saves its outputs, and nothing is left on either node."""

    runner = _runner(dtrun, slurm_cluster)
    workflow = ("workflows:\n  - name: ddp\n    provider: torchrun\n    python_install: system\n"
                "    file: wait.py\n    nodes: 2\n    artifacts: [out]\n")
    root = make_project({".dtrun/workflows.yaml": workflow, "wait.py": WAITING})
    name = runner("run", "ddp", "-d", cwd=root).stdout.strip()
    runner.await_log(name, "rank 0 waiting", root)
    stop = runner("stop", name, cwd=root, timeout=300)
    assert stop.code == 0 and "STOPPED" in stop.stderr, stop.output
    [run] = json.loads(runner("status", "--json", cwd=root).stdout)
    assert run["jobs"][0]["state"] == "STOPPED", run
    got = runner("artifacts", name, "--output", str(tmp_path / "got"), cwd=root)
    assert got.code == 0, got.output
    assert sorted(p.name for p in (tmp_path / "got").rglob("*.txt")) == ["node0-rank0.txt"]
    _nothing_left(slurm_cluster, runner)
