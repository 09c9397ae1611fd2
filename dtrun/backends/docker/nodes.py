"""A multi-node job on one Docker host: N containers on a network of their own, answering as one handle.

Every node is a container named `<job>-<rank>` on a bridge network made for this job (labelled like the
job, removed with it), reachable there as `node-<rank>`; node 0 hosts torchrun's rendezvous. Node 0 uses
the job's volumes; every other node gets its own copy of each writable volume (its workspace: nodes do
not share a disk), and shares the read-only ones (inputs, the CA bundle). The engine sees one handle,
a `NodeGroup`: code and files go to every node, outputs come from node 0, and the nodes fail together:
when one exits with an error the others are stopped, so no rank waits forever in a collective.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import field, replace
from typing import TYPE_CHECKING, Any

from dtrun.backends.base import LABEL, ContainerSpec, Exit, VolumeMount
from dtrun.backends.docker.errors import explanation, ignored
from dtrun.errors import BackendError
from dtrun.providers import torchrun_launch
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.backends.docker.backend import DockerBackend
    from dtrun.spec.models import Gpu

#: On every node's container: its rank, and the group it belongs to (the job's container name).
NODE_LABEL = f"{LABEL}.node"
GROUP_LABEL = f"{LABEL}.group"
NETWORK_LABEL = f"{LABEL}.network"
#: On the node volumes made for ranks above 0 (removed with the group).
NODE_VOLUME_LABEL = f"{LABEL}.node-volume"
#: How long the other nodes get to exit after one failed, before they are killed.
FAIL_GRACE = 5


@struct
class NodeGroup:
    """One job's N containers, node 0 first; `name` and `labels` are the job's (node 0's)."""

    name: str
    labels: dict[str, str]
    members: list[Any]
    network: str
    volumes: list[str] = field(default_factory=list)

    @property
    def lead(self) -> Any:
        return self.members[0]


def node_host(rank: int) -> str:
    """A node's name on its job's network (short: a DNS label, whatever the job is called)."""
    return f"node-{rank}"


def submit_group(backend: DockerBackend, spec: ContainerSpec, gpu: Gpu | None, *, interruptible: bool,
                 notify: Any) -> NodeGroup:
    """Create (not start) the network, the node volumes and one container per node."""
    assert spec.torchrun is not None
    nodes = spec.torchrun.nodes
    rdzv = spec.torchrun.rendezvous(node_host(0))
    network = f"{spec.name}-net"
    names = torchrun_launch.docker_hostnames(spec.name, nodes)
    group = NodeGroup(spec.name, {}, [], network)
    try:
        _create_network(backend, network, spec.labels)
        for rank, name in enumerate(names):
            own = len(group.volumes)
            mounts = spec.mounts if rank == 0 else [_node_mount(backend, group, m, rank, spec.labels)
                                                    for m in spec.mounts]
            labels = {**spec.labels, NODE_LABEL: str(rank), GROUP_LABEL: spec.name, NETWORK_LABEL: network,
                      NODE_VOLUME_LABEL: ",".join(group.volumes[own:])}
            node = replace(spec, name=name, env={**spec.env, **torchrun_launch.node_env(rdzv, rank)},
                           labels=labels, mounts=mounts, torchrun=None, ports=spec.ports if rank == 0 else 0)
            member = backend.submit(node, gpu, interruptible=interruptible, notify=notify)
            group.members.append(member)
            _join(backend, member, network, node_host(rank))
    except BaseException:
        remove_group(backend, group)
        raise
    group.labels = dict(group.lead.labels)
    return group


def _create_network(backend: DockerBackend, network: str, labels: dict[str, str]) -> None:
    from dtrun.backends.docker.engineapi import errors as api_errors

    try:
        backend.client.networks.create(network, driver="bridge", labels={**labels, NETWORK_LABEL: network},
                                       check_duplicate=True)
    except api_errors.APIError as exc:
        raise BackendError(f"Docker refused to create the network {network} for a multi-node job: "
                           f"{explanation(exc)}") from None


def _join(backend: DockerBackend, member: Any, network: str, host: str) -> None:
    """Move a created node from the default bridge onto the job's network, where it is `host`."""
    from dtrun.backends.docker.engineapi import errors as api_errors

    try:
        backend.client.networks.get(network).connect(member, aliases=[host])
        backend.client.networks.get("bridge").disconnect(member)
    except api_errors.APIError as exc:
        raise BackendError(f"Docker could not attach {member.name} to the network {network}: "
                           f"{explanation(exc)}") from None


def _node_mount(backend: DockerBackend, group: NodeGroup, mount: VolumeMount, rank: int,
                labels: dict[str, str]) -> VolumeMount:
    """A writable volume of node 0 gets a fresh one of its own on every other node; read-only ones are shared."""
    if mount.read_only:
        return mount
    volume = backend.create_volume(f"{mount.volume}-node{rank}", labels)
    group.volumes.append(volume)
    return VolumeMount(volume, mount.target)


def remove_group(backend: DockerBackend, group: NodeGroup) -> None:
    """Every container, then the network and the node volumes (the job's own volumes are the engine's)."""
    for member in group.members:
        with ignored():
            member.remove(force=True)
    with ignored():
        backend.client.networks.get(group.network).remove()
    for volume in group.volumes:
        backend.remove_volume(volume)


def start_group(backend: DockerBackend, group: NodeGroup) -> None:
    """Node 0 first (it hosts the rendezvous), then the others; none left running if one cannot start."""
    try:
        for member in group.members:
            backend.start(member)
    except BaseException:
        for member in group.members:
            with ignored():
                member.kill()
        raise


def group_logs(backend: DockerBackend, group: NodeGroup, *, follow: bool, since: float | None,
               timestamps: bool) -> Iterator[bytes]:
    """Every node's output as it comes, each line after its time marked `[node R]`.

    Following, a node whose output ends with an error exit stops the others (they fail together).
    """
    frames: queue.Queue[tuple[int, bytes | None, BaseException | None]] = queue.Queue()

    def pump(rank: int, member: Any) -> None:
        try:
            for frame in backend.logs(member, follow=follow, since=since, timestamps=timestamps):
                frames.put((rank, frame, None))
        except BaseException as exc:  # handed to the consumer, raised there
            frames.put((rank, None, exc))
            return
        if follow and _exit_code(backend, member) not in (0, None):
            stop_others(backend, group, member)
        frames.put((rank, None, None))

    for rank, member in enumerate(group.members):
        threading.Thread(target=pump, args=(rank, member), daemon=True, name=f"dtrun-node-log-{rank}").start()
    left = len(group.members)
    while left:
        rank, frame, error = frames.get()
        if error is not None:
            raise error
        if frame is None:
            left -= 1
            continue
        yield _marked(frame, rank, timestamps)


def _marked(frame: bytes, rank: int, timestamps: bool) -> bytes:
    mark = f"[node {rank}] ".encode()
    if not timestamps:
        return mark + frame
    stamp, sep, rest = frame.partition(b" ")
    return stamp + sep + mark + rest if sep else mark + frame


def _exit_code(backend: DockerBackend, member: Any) -> int | None:
    state = backend.client.api.inspect_container(member.id)["State"]
    return None if state.get("Running") else int(state.get("ExitCode", 1))


def stop_others(backend: DockerBackend, group: NodeGroup, failed: Any) -> None:
    for member in group.members:
        if member.id != failed.id:
            with ignored():
                member.stop(timeout=FAIL_GRACE)


def wait_group(backend: DockerBackend, group: NodeGroup) -> Exit:
    """All nodes' end: the first node to fail stops the others and its exit is the job's; else node 0's."""
    results: queue.Queue[tuple[int, Exit | BaseException]] = queue.Queue()

    def wait(rank: int, member: Any) -> None:
        try:
            results.put((rank, backend.wait(member)))
        except BaseException as exc:  # handed to the consumer, raised there
            results.put((rank, exc))

    for rank, member in enumerate(group.members):
        threading.Thread(target=wait, args=(rank, member), daemon=True, name=f"dtrun-node-wait-{rank}").start()
    exits: dict[int, Exit] = {}
    failed: Exit | None = None
    for _ in group.members:
        rank, result = results.get()
        if isinstance(result, BaseException):
            raise result
        exits[rank] = result
        if result.code != 0 and failed is None:
            failed = result
            stop_others(backend, group, group.members[rank])
    return failed or exits[0]


def find_groups(backend: DockerBackend, containers: list[Any]) -> list[Any]:
    """Containers as the engine knows them: each multi-node job as one `NodeGroup`, others as they are."""
    found: list[Any] = []
    for container in containers:
        labels = container.labels or {}
        if NODE_LABEL not in labels:
            found.append(container)
        elif labels[NODE_LABEL] == "0":
            found.append(load_group(backend, labels[GROUP_LABEL]) or container)
    return found


def load_group(backend: DockerBackend, name: str) -> NodeGroup | None:
    """The group of a multi-node job, from its containers' labels (after the client that made it died)."""
    members = backend.client.containers.list(all=True, filters={"label": [f"{GROUP_LABEL}={name}"]})
    members = sorted(members, key=lambda c: int(c.labels.get(NODE_LABEL, "0")))
    if not members or members[0].labels.get(NODE_LABEL) != "0":
        return None
    volumes = [v for m in members for v in (m.labels.get(NODE_VOLUME_LABEL) or "").split(",") if v]
    return NodeGroup(name, dict(members[0].labels), members, members[0].labels.get(NETWORK_LABEL, ""),
                     volumes)
