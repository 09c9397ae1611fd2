"""How torchrun is launched on one node or many, as pure functions every backend shares.

Every node runs the same argv (`torchrun SCRIPT ARGS`); what differs per node is only its environment:
torchrun reads each of its options from a `PET_<OPTION>` variable when the flag is absent (`PET_NNODES`,
`PET_NODE_RANK`, `PET_MASTER_ADDR`, ...). So a backend needs to supply just the node's rank and the
address of node 0, each in its own way: Docker names the containers on a network of their own, Slurm
has `SLURM_NODEID` and the first host of the allocation, Kubernetes has the completion index of an
Indexed Job and pod 0's stable hostname behind a headless Service.

The rendezvous is torchrun's static one: node 0 hosts the store on `master_addr:master_port`, and all
ranks fail together (`max_restarts` 0: dtrun decides retries, for the whole job).
"""

from __future__ import annotations

from dtrun.errors import SpecError
from dtrun.structs import struct

DEFAULT_PORT = 29500


@struct(frozen=True)
class Torchrun:
    """A multi-node torchrun as the plan asks for it: `nodes` nodes of `nproc_per_node` processes each.

    The plan, the engine and every backend pass this along; each backend turns it into a `Rendezvous` once
    it knows where node 0 is (a container name, the allocation's first host, pod 0's DNS name).
    """

    nodes: int
    nproc_per_node: int
    port: int = DEFAULT_PORT

    def rendezvous(self, master_addr: str) -> Rendezvous:
        return Rendezvous(nnodes=self.nodes, nproc_per_node=self.nproc_per_node, master_addr=master_addr,
                          master_port=self.port)


@struct(frozen=True)
class Rendezvous:
    """The shape of one distributed torchrun: how many nodes, processes per node, where node 0 listens."""

    nnodes: int
    nproc_per_node: int
    master_addr: str
    master_port: int = DEFAULT_PORT
    max_restarts: int = 0

    def __post_init__(self) -> None:
        if self.nnodes < 1 or self.nproc_per_node < 1:
            raise SpecError(f"torchrun needs at least one node and one process per node, got "
                            f"nodes={self.nnodes}, processes per node={self.nproc_per_node}")
        if not 0 < self.master_port < 65536:
            raise SpecError(f"torchrun's rendezvous port {self.master_port} is not a TCP port")

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node


def procs_per_node(gpu_count: int) -> int:
    """One process per GPU; one on a CPU-only node."""
    return max(gpu_count, 1)


def standalone_argv(script: str, args: list[str], nproc_per_node: int) -> list[str]:
    """One node, no rendezvous host needed: torchrun's `--standalone` picks a free local port."""
    return ["torchrun", "--standalone", "--nnodes=1", f"--nproc_per_node={nproc_per_node}", script, *args]


def node_argv(script: str, args: list[str]) -> list[str]:
    """The argv of every node of a multi-node run: the options come from the node's environment."""
    return ["torchrun", script, *args]


def common_env(rdzv: Rendezvous) -> dict[str, str]:
    """The environment every node shares (torchrun's options, as the `PET_` variables it reads)."""
    return {
        "PET_NNODES": str(rdzv.nnodes),
        "PET_NPROC_PER_NODE": str(rdzv.nproc_per_node),
        "PET_MASTER_ADDR": rdzv.master_addr,
        "PET_MASTER_PORT": str(rdzv.master_port),
        "PET_MAX_RESTARTS": str(rdzv.max_restarts),
        "PET_RDZV_BACKEND": "static",
    }


def node_env(rdzv: Rendezvous, node_rank: int) -> dict[str, str]:
    """The whole environment of node `node_rank` (0 hosts the rendezvous), for backends that know it upfront."""
    if not 0 <= node_rank < rdzv.nnodes:
        raise SpecError(f"node rank {node_rank} is outside 0..{rdzv.nnodes - 1}")
    return {**common_env(rdzv), "PET_NODE_RANK": str(node_rank)}


def docker_hostnames(job_name: str, nnodes: int) -> list[str]:
    """The container hostnames of an N-node run on one Docker host (node 0 first), on a network of its own."""
    return [f"{job_name}-{rank}" for rank in range(nnodes)]


def slurm_prologue(rdzv: Rendezvous) -> list[str]:
    """Shell lines for the batch shell of a multi-node sbatch script: node 0 is the allocation's first node,
    reached at its `NodeAddr` (its name where the cluster gives none).

    The master (and its port, which depends on the job id) is only known inside the allocation, so it is
    read there, not rendered. The rank is not set here: the batch shell runs on node 0 only; each srun
    task sets `PET_NODE_RANK` from its own `SLURM_NODEID` (`dtrun.backends.slurm.nodes`).
    """
    env = {k: v for k, v in common_env(rdzv).items() if k not in ("PET_MASTER_ADDR", "PET_MASTER_PORT")}
    lines = [f"export {k}={v}" for k, v in env.items()]
    # jobs share nodes: two multi-node jobs whose first node is the same machine must not both listen on
    # one port, so the port is the rendezvous port plus the job id (mod 10000), the same on every node
    lines.append(f"export PET_MASTER_PORT=$(({rdzv.master_port} + SLURM_JOB_ID % 10000))")
    lines.append('DTRUN_FIRST="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"')
    lines.append('DTRUN_ADDR="$(scontrol show node -o "$DTRUN_FIRST" | grep -o \'NodeAddr=[^ ]*\' | cut -d= -f2)"')
    lines.append('export PET_MASTER_ADDR="${DTRUN_ADDR:-$DTRUN_FIRST}"')
    return lines
