"""GPU assignment against a given inventory: specific ids, never shared, interruptible jobs yield."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtrun.backends.docker.gpus import Holder, choose
from dtrun.backends.docker.hostinfo import GpuInfo, HostInfo
from dtrun.backends.docker.resources import check_gpu_request, suitable
from dtrun.errors import ResourceError
from dtrun.spec.models import Gpu

A100 = [GpuInfo(i, f"GPU-a{i}", "NVIDIA A100-SXM4-40GB", 40 * 2**30, "535") for i in range(4)]
MIXED = [*A100[:2], GpuInfo(2, "GPU-t0", "Tesla T4", 15 * 2**30, "535")]


def gpu(spec: object) -> Gpu:
    return Gpu.validate(spec)


def hold(busy: dict[str, Holder], name: str, ids: list[str], *, interruptible: bool = False, t: int = 0) -> Holder:
    holder = Holder(id=name, name=name, gpus=tuple(ids), created=f"2026-01-01T00:00:{t:02d}.000000001Z",
                    interruptible=interruptible)
    for i in ids:
        busy[i] = holder
    return holder


def test_lowest_free_ids_first_and_never_a_busy_one() -> None:
    busy: dict[str, Holder] = {}
    first = choose(A100, gpu(2), busy, interruptible=False)
    assert first and [g.uuid for g in first.gpus] == ["GPU-a0", "GPU-a1"] and first.preempt == []
    hold(busy, "job1", ["GPU-a0", "GPU-a1"])
    second = choose(A100, gpu(1), busy, interruptible=False)
    assert second and [g.uuid for g in second.gpus] == ["GPU-a2"]
    hold(busy, "job2", ["GPU-a2"])
    assert choose(A100, gpu(2), busy, interruptible=False) is None  # one left: wait
    third = choose(A100, gpu(1), busy, interruptible=True)
    assert third and [g.uuid for g in third.gpus] == ["GPU-a3"]


def test_model_and_memory_select_gpus() -> None:
    assert [g.uuid for g in suitable(MIXED, gpu({"name": "t4"}))] == ["GPU-t0"]
    assert [g.uuid for g in suitable(MIXED, gpu({"name": "A100", "memory": "40GB"}))] == ["GPU-a0", "GPU-a1"]
    assert suitable(MIXED, gpu({"memory": "80GB"})) == []
    decision = choose(MIXED, gpu({"name": "T4"}), {}, interruptible=False)
    assert decision and [g.index for g in decision.gpus] == [2]


def test_non_interruptible_job_preempts_the_youngest_interruptible_holders() -> None:
    busy: dict[str, Holder] = {}
    old = hold(busy, "old", ["GPU-a0", "GPU-a1"], interruptible=True, t=1)
    young = hold(busy, "young", ["GPU-a2"], interruptible=True, t=2)
    hold(busy, "fixed", ["GPU-a3"], t=3)
    decision = choose(A100, gpu(1), busy, interruptible=False)
    assert decision and decision.preempt == [young] and [g.uuid for g in decision.gpus] == ["GPU-a2"]
    decision = choose(A100, gpu(3), busy, interruptible=False)
    assert decision and set(decision.preempt) == {old, young}
    assert choose(A100, gpu(4), busy, interruptible=False) is None  # "fixed" is never preempted
    assert choose(A100, gpu(1), busy, interruptible=True) is None  # interruptible jobs never preempt


@given(st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=12))
def test_concurrent_jobs_never_share_a_gpu(requests: list[tuple[int, bool]]) -> None:
    """Jobs arrive one after another while earlier ones still run; each holds what it was given."""
    busy: dict[str, Holder] = {}
    for n, (count, interruptible) in enumerate(requests):
        decision = choose(A100, gpu(count), busy, interruptible=interruptible)
        if decision is None:
            free = [g for g in A100 if g.uuid not in busy]
            assert len(free) < count
            continue
        for holder in decision.preempt:
            assert holder.interruptible and not interruptible
            for i in holder.gpus:
                del busy[i]
        ids = [g.uuid for g in decision.gpus]
        assert len(ids) == count == len(set(ids))
        assert not set(ids) & set(busy)
        hold(busy, f"job{n}", ids, interruptible=interruptible, t=n)


def test_refusal_says_what_the_host_has() -> None:
    host = HostInfo("ssh://box", "box", "id", "24", "Ubuntu", 32, 2**37, ["nvidia", "runc"], MIXED)
    check_gpu_request(host, gpu({"name": "A100", "count": 2}), "train")
    with pytest.raises(ResourceError) as info:
        check_gpu_request(host, gpu({"name": "A100", "count": 4}), "train")
    assert str(info.value).startswith("workflow 'train' asks for 4 GPUs of model A100, but the Docker host "
                                      "ssh://box has 2 x NVIDIA A100-SXM4-40GB (40 GiB), 1 x Tesla T4 (15 GiB)")
    with pytest.raises(ResourceError, match=r"asks for 1 GPU with at least 80 GB"):
        check_gpu_request(host, gpu({"memory": "80GB"}), "train")
    failed = HostInfo("ssh://box", "box", "id", "24", "Ubuntu", 32, 2**37, ["nvidia"], [], gpu_error="boom")
    with pytest.raises(ResourceError, match="could not be listed: boom"):
        check_gpu_request(failed, gpu(1), "train")


class FakeApi:
    """What the Engine API's container list says; only what `holders` reads."""

    def __init__(self, containers: list[dict[str, object]]) -> None:
        self._containers = containers

    def containers(self, all: bool, filters: dict[str, str]) -> list[dict[str, object]]:
        assert all and filters == {"label": "dev.dtrun.gpus"}
        return self._containers

    def inspect_container(self, cid: str) -> dict[str, str]:
        return {"Created": {"a": "2026-01-01T00:00:00.5Z", "b": "2026-01-01T00:00:00.123456789Z"}.get(cid, "")}


def test_busy_gpus_from_container_labels() -> None:
    from dtrun.backends.docker.gpus import busy_gpus

    def c(cid: str, state: str, gpus: str, created: int = 1000, interruptible: str = "0") -> dict[str, object]:
        return {"Id": cid, "Names": [f"/{cid}"], "State": state, "Created": created,
                "Labels": {"dev.dtrun.gpus": gpus, "dev.dtrun.interruptible": interruptible}}

    api = FakeApi([c("a", "running", "GPU-1", interruptible="1"), c("b", "created", "GPU-1,GPU-2"),
                   c("gone", "exited", "GPU-3"), c("old", "created", "GPU-4", created=0)])
    busy = busy_gpus(type("Client", (), {"api": api})())
    # b is older (.123 < .5); a container left `created` for ages still holds its GPU (issue 15: claims
    # never lapse while their container exists)
    assert {k: v.id for k, v in busy.items()} == {"GPU-1": "b", "GPU-2": "b", "GPU-4": "old"}
    assert not busy["GPU-1"].interruptible


class FakeBackend:
    """A host with the A100 inventory whose GPU containers are `containers` (as the list API gives them)."""

    def __init__(self, containers: list[dict[str, object]]) -> None:
        self.client = type("Client", (), {"api": FakeApi(containers)})()

    def host_info(self) -> HostInfo:
        return HostInfo("unix://", "box", "id", "24", "Ubuntu", 32, 2**37, ["nvidia", "runc"], A100)


class FakeJob:
    def __init__(self, workflow: str, gpus: int = 0, interruptible: bool = False, nodes: int = 1) -> None:
        from dtrun.providers.torchrun_launch import Torchrun
        from dtrun.spec.models import Resources

        self.workflow = workflow
        self.resources = Resources.validate({"gpu": gpus or None, "interruptible": interruptible})
        self.torchrun = Torchrun(nodes=nodes, nproc_per_node=max(gpus, 1)) if nodes > 1 else None


def test_scheduler_admission_counts_the_runs_own_jobs_before_their_containers_exist() -> None:
    import time
    from typing import Any

    from dtrun.backends.docker.gpus import gpu_admission

    def holder(cid: str, gpus: str, run: str) -> dict[str, object]:
        return {"Id": cid, "Names": [f"/{cid}"], "State": "running", "Created": int(time.time()),
                "Labels": {"dev.dtrun.gpus": gpus, "dev.dtrun.interruptible": "0", "dev.dtrun.run": run}}

    idle: Any = FakeBackend([])
    admit = gpu_admission(idle, "run-1")
    a: Any = FakeJob("a", 2)
    b: Any = FakeJob("b", 2)
    c: Any = FakeJob("c", 1)
    cpu: Any = FakeJob("cpu")
    assert admit(cpu, [a, b]) and admit(a, [])
    assert admit(b, [a])  # 2 + 2 of 4
    assert not admit(c, [a, b])  # a and b hold all four, though neither has a container yet
    # a's container exists (it holds GPU-a0, GPU-a1): counted once, not twice
    started: Any = FakeBackend([holder("ca", "GPU-a0,GPU-a1", "run-1")])
    assert gpu_admission(started, "run-1")(b, [a])
    # another run's containers are busy GPUs like any other
    other: Any = FakeBackend([holder("x", "GPU-a0,GPU-a1,GPU-a2", "run-2")])
    assert gpu_admission(other, "run-1")(c, []) and not gpu_admission(other, "run-1")(a, [])


def test_a_multi_node_job_is_admitted_for_all_its_nodes_gpus() -> None:
    """The nodes of a multi-node torchrun are containers on this one host: 2 nodes x 2 GPUs hold all four."""
    from typing import Any

    from dtrun.backends.docker.gpus import gpu_admission, job_request

    idle: Any = FakeBackend([])
    admit = gpu_admission(idle, "run-1")
    ddp: Any = FakeJob("ddp", 2, nodes=2)
    one: Any = FakeJob("one", 1)
    assert job_request(ddp) == gpu(4) and job_request(one) == gpu(1)
    assert admit(ddp, []) and not admit(one, [ddp])  # ddp's two nodes hold all four GPUs
    assert not admit(ddp, [one])  # three left: not enough for both nodes, so it waits whole
    assert not admit(FakeJob("big", 3, nodes=2), [])  # type: ignore[arg-type]


def test_check_counts_every_node_of_a_multi_node_job() -> None:
    from typing import Any

    from dtrun.backends.docker.resources import check_resources
    from dtrun.spec.models import Resources

    host: Any = FakeBackend([])
    check_resources(host, "ddp", Resources.validate({"gpu": 2, "cpu": 16}), nodes=2)
    with pytest.raises(ResourceError, match=r"asks for 6 GPUs, but .* has 4 x NVIDIA A100.*\(its 2 nodes together"):
        check_resources(host, "ddp", Resources.validate({"gpu": 3}), nodes=2)
    check_resources(host, "ddp", Resources.validate({"gpu": 3}))  # one node of three fits
    with pytest.raises(ResourceError, match=r"asks for 40 CPUs, but .* has 32 \(its 2 nodes together"):
        check_resources(host, "ddp", Resources.validate({"cpu": 20}), nodes=2)


class LaggingDaemon:
    """A daemon whose containers are stamped when their creation begins and listed only once it ends,
    as Docker's are (the layer is made in between). `during_create` runs inside the first create, between
    the stamp and the listing: the moment a second client's whole claim can slip in."""

    def __init__(self) -> None:
        self.listed: list[dict[str, object]] = []
        self.stamps: dict[str, str] = {}
        self.during_create: list[object] = []
        self.client = type("Client", (), {"api": self})()

    def containers(self, all: bool, filters: dict[str, str]) -> list[dict[str, object]]:
        return list(self.listed)

    def inspect_container(self, cid: str) -> dict[str, str]:
        return {"Created": self.stamps[cid]}

    def create(self, spec: object) -> object:
        from dataclasses import dataclass

        cid = f"c{len(self.stamps)}"
        self.stamps[cid] = f"2026-01-01T00:00:00.{len(self.stamps):09d}Z"
        while self.during_create:
            self.during_create.pop()()  # type: ignore[operator]
        self.listed.append({"Id": cid, "Names": [f"/{cid}"], "State": "created",
                            "Labels": dict(spec.labels)})  # type: ignore[attr-defined]

        @dataclass
        class Handle:
            id: str

        return Handle(cid)

    def remove(self, handle: object) -> None:
        self.listed = [c for c in self.listed if c["Id"] != handle.id]  # type: ignore[attr-defined]

    def holding(self) -> list[str]:
        return sorted(str(c["Labels"]["dev.dtrun.gpus"]) for c in self.listed)  # type: ignore[index]


def test_a_claim_stamped_first_but_listed_last_backs_off() -> None:
    """The older container of a racing pair may be invisible when the younger checks; deciding by age
    would then let both keep GPU 0. Backing off on any overlap leaves each its own GPU."""
    from dtrun.backends.base import ContainerSpec
    from dtrun.backends.docker.gpus import create_with_gpus

    daemon = LaggingDaemon()
    host = HostInfo("unix://", "box", "id", "24", "Ubuntu", 32, 2**37, ["nvidia"], A100[:2])

    def claim(name: str) -> object:
        spec = ContainerSpec(name=name, image="img", command=["true"], entrypoint=None, env={}, working_dir="/",
                             labels={})
        return create_with_gpus(daemon, spec, gpu(1), host, poll=0.001)  # type: ignore[arg-type]

    daemon.during_create.append(lambda: claim("younger"))
    claim("older")
    assert daemon.holding() == ["GPU-a0", "GPU-a1"]
