"""`provider: torchrun` for real on this machine: torch from PyPI (download.pytorch.org does not resolve
here), a distributed all-reduce under torchrun on the Docker backend (CPU, gloo).

The first build downloads torch and its CUDA libraries (several GB; about five minutes here); the layer
and then the image are cached, keyed by content, so later runs build nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOST_CACHES, DtrunRunner

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("images")]
ALLREDUCE = (Path(__file__).parent.parent / "torchrun" / "allreduce.py").read_text()


@pytest.mark.timeout(2400)
def test_torchrun_runs_an_all_reduce_with_torch_from_pypi(dtrun: DtrunRunner, make_project: Any) -> None:
    workflow = ("workflows:\n  - name: ddp\n    provider: torchrun\n    python_install: system\n"
                "    file: allreduce.py\n")
    root = make_project({".dtrun/workflows.yaml": workflow, "allreduce.py": ALLREDUCE})
    built = dtrun("images", "build", "ddp", cwd=root, timeout=1800)
    assert built.code == 0, built.output
    run = dtrun("run", "ddp", cwd=root, timeout=900)
    assert run.code == 0, run.output
    assert "rank 0/1 (node 0, local 0): sum of ranks 0 == 0 ok" in run.output


# Every node writes its rank into out/, from1/ and every/; `out` is saved from node 0 (nodes have disks of
# their own), `from1` from node 1, `every` from each node (as every/node0, every/node1), as they say.
NODES = ("workflows:\n  - name: ddp\n    provider: torchrun\n    python_install: system\n"
         "    file: allreduce.py\n    nodes: 2\n    nproc_per_node: 2\n    env: [EXPECT_WORLD_SIZE=4]\n"
         "    artifacts: [out, {path: from1, node: 1}, {path: every, node: all}]\n"
         "    commands: ['mkdir -p out from1 every && echo \"$PET_NODE_RANK\" | tee out/node.txt from1/node.txt"
         " every/node.txt']\n")
#: What `dtrun artifacts` of that run downloads: {folder holding a node.txt: the rank in it}.
SAVED = {"out": "0", "from1": "1", "node0": "0", "node1": "1"}


def saved_nodes(folder: Path) -> dict[str, str]:
    """{artifact folder: the rank written in its node.txt} of a downloaded run."""
    return {p.parent.name: p.read_text().strip() for p in folder.rglob("node.txt")}


@pytest.mark.timeout(2400)
def test_two_nodes_of_two_processes_all_reduce_on_a_network_of_their_own(
        dtrun: DtrunRunner, make_project: Any, docker_client: Any, tmp_path: Path) -> None:
    root = make_project({".dtrun/workflows.yaml": NODES, "allreduce.py": ALLREDUCE})
    run = dtrun("run", "ddp", cwd=root, timeout=1800)
    assert run.code == 0, run.output
    for rank in range(4):
        node, local = divmod(rank, 2)
        assert f"[node {node}] rank {rank}/4 (node {node}, local {local}): sum of ranks 6 == 6 ok" in run.output, \
            run.output
    got = dtrun("artifacts", _run_name(run), "--output", str(tmp_path / "got"), cwd=root)
    assert got.code == 0, got.output
    assert saved_nodes(tmp_path / "got") == SAVED
    _nothing_left(docker_client, dtrun.store_label)


FAILING = """import os, sys, time
import torch.distributed as dist

dist.init_process_group("gloo")
if os.environ["GROUP_RANK"] == "1":
    sys.exit(3)
dist.barrier()  # node 0 would wait here for ever if node 1's failure did not end it
time.sleep(600)
"""


@pytest.mark.timeout(900)
def test_a_failing_node_fails_the_whole_job(dtrun: DtrunRunner, make_project: Any, docker_client: Any) -> None:
    workflow = ("workflows:\n  - name: ddp\n    provider: torchrun\n    python_install: system\n"
                "    file: fail.py\n    nodes: 2\n")
    root = make_project({".dtrun/workflows.yaml": workflow, "fail.py": FAILING})
    run = dtrun("run", "ddp", cwd=root, timeout=600)
    assert run.code != 0, run.output
    assert "FAILED ddp (exited with code" in run.output, run.output
    _nothing_left(docker_client, dtrun.store_label)


def _run_name(result: Any) -> str:
    for line in result.stderr.splitlines():
        if line.startswith("run ") and ":" in line:
            return str(line.split()[1].rstrip(":"))
    raise AssertionError(result.output)


def _nothing_left(client: Any, store_label: str) -> None:
    """The nodes, their network and their volumes are removed with the job."""
    selector = {"label": f"dev.dtrun.store={store_label}"}
    assert client.containers.list(all=True, filters=selector) == []
    assert client.networks.list(filters=selector) == []
    assert [v.name for v in client.volumes.list(filters=selector) if not v.name.startswith(HOST_CACHES)] == []


WAITING = """import os, signal, sys, time
import torch.distributed as dist

dist.init_process_group("gloo")
os.makedirs("out", exist_ok=True)
open(f"out/node{os.environ['GROUP_RANK']}-rank{dist.get_rank()}.txt", "w").write("saved\\n")
print(f"rank {dist.get_rank()} waiting", flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(900)
def test_a_detached_multi_node_run_is_stopped_as_one_job(dtrun: DtrunRunner, make_project: Any,
                                                          docker_client: Any, tmp_path: Path) -> None:
    """`dtrun stop` from another process finds the nodes as one job (their group), stops them all and saves
    node 0's outputs; nothing of the nodes is left."""
    import json

    workflow = ("workflows:\n  - name: ddp\n    provider: torchrun\n    python_install: system\n"
                "    file: wait.py\n    nodes: 2\n    artifacts: [out]\n")
    root = make_project({".dtrun/workflows.yaml": workflow, "wait.py": WAITING})
    name = dtrun("run", "ddp", "-d", cwd=root).stdout.strip()
    dtrun.await_log(name, "rank 1 waiting", root)
    stop = dtrun("stop", name, cwd=root)
    assert stop.code == 0 and "STOPPED" in stop.stderr, stop.output
    [run] = json.loads(dtrun("status", "--json", cwd=root).stdout)
    assert run["jobs"][0]["state"] == "STOPPED"
    got = dtrun("artifacts", name, "--output", str(tmp_path / "got"), cwd=root)
    assert got.code == 0, got.output
    assert sorted(p.name for p in (tmp_path / "got").rglob("*.txt")) == ["node0-rank0.txt"]
    _nothing_left(docker_client, dtrun.store_label)
