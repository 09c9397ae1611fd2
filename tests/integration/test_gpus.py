"""GPU assignment on a real daemon: containers are created with DeviceRequests for specific device ids,
and concurrent jobs (separate backends, as separate dtrun processes would be) never get the same GPU.

This machine has no GPU: `start` would fail, so these tests stop at `create` and inspect what Docker
recorded. The inventory is given (as `nvidia-smi` would list it on a GPU host)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dtrun.backends.docker import ContainerSpec, DockerBackend
from dtrun.backends.docker.gpus import busy_gpus, create_with_gpus, was_preempted
from dtrun.backends.docker.hostinfo import GpuInfo, HostInfo
from dtrun.spec.models import Gpu
from tests.conftest import BUSYBOX_IMAGE, SESSION

INVENTORY = [GpuInfo(i, f"GPU-{SESSION}-{i}", "NVIDIA A100-SXM4-40GB", 40 * 2**30, "535.104.05") for i in range(3)]
HOST = HostInfo("unix:///var/run/docker.sock", "test", "id", "20.10", "Debian", 2, 2**34, ["nvidia", "runc"],
                INVENTORY)
LABELS = {"dev.dtrun": "1", "dev.dtrun.store": f"gpu-test-{SESSION}"}


@pytest.fixture
def backends(docker_client: Any) -> Iterator[list[DockerBackend]]:
    """Two independent backends on one daemon: no state shared between them but the daemon itself."""
    from dtrun.backends.docker.connection import connect

    made = [DockerBackend(connect(), HOST.endpoint) for _ in range(2)]
    yield made
    for c in docker_client.containers.list(all=True, filters={"label": f"dev.dtrun.store=gpu-test-{SESSION}"}):
        c.remove(force=True)
    for v in docker_client.volumes.list(filters={"label": "dev.dtrun.preempted-by"}):
        if SESSION in v.name:
            v.remove(force=True)


def spec(name: str) -> ContainerSpec:
    return ContainerSpec(name=f"dtrun-gpu-test-{SESSION}-{name}", image=BUSYBOX_IMAGE, command=["true"],
                         entrypoint=None, env={}, working_dir="/", labels=dict(LABELS))


def device_requests(docker_client: Any, container: Any) -> list[dict[str, Any]]:
    return list(docker_client.api.inspect_container(container.id)["HostConfig"]["DeviceRequests"])


def running_holder(docker_client: Any, name: str, gpus: list[str]) -> Any:
    """A started container that holds `gpus` by label, as a started interruptible GPU job does (without a
    DeviceRequest, which this GPU-less daemon could not start)."""
    return docker_client.containers.run(
        BUSYBOX_IMAGE, ["sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"], detach=True,
        name=f"dtrun-gpu-test-{SESSION}-{name}",
        labels={**LABELS, "dev.dtrun.gpus": ",".join(gpus), "dev.dtrun.interruptible": "1",
                "dev.dtrun.run": f"spot-{SESSION}"})


def test_created_containers_request_specific_device_ids(backends: list[DockerBackend], docker_client: Any,
                                                        dtrun_client: Any) -> None:
    one, two = backends
    notes: list[str] = []
    first = create_with_gpus(one, spec("a"), Gpu(count=2), HOST, notify=notes.append)
    second = create_with_gpus(two, spec("b"), Gpu(count=1), HOST, notify=notes.append)
    assert device_requests(docker_client, first) == [
        {"Driver": "", "Count": 0, "DeviceIDs": [INVENTORY[0].uuid, INVENTORY[1].uuid],
         "Capabilities": [["gpu"]], "Options": {}}]
    assert device_requests(docker_client, second)[0]["DeviceIDs"] == [INVENTORY[2].uuid]
    assert notes == ["  GPUs 0 (NVIDIA A100-SXM4-40GB), 1 (NVIDIA A100-SXM4-40GB)",
                     "  GPU 2 (NVIDIA A100-SXM4-40GB)"]
    assert docker_client.api.inspect_container(first.id)["Config"]["Labels"]["dev.dtrun.gpus"] == \
        f"{INVENTORY[0].uuid},{INVENTORY[1].uuid}"
    # the busy set is read back from the daemon by any process
    assert {k: v.name for k, v in busy_gpus(dtrun_client).items() if SESSION in k} == {
        INVENTORY[0].uuid: first.name, INVENTORY[1].uuid: first.name, INVENTORY[2].uuid: second.name}


def test_a_job_waits_for_a_gpu_until_one_is_released(backends: list[DockerBackend]) -> None:
    one, two = backends
    held = create_with_gpus(one, spec("holder"), Gpu(count=3), HOST)
    notes: list[str] = []
    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.append(
        create_with_gpus(two, spec("waiter"), Gpu(count=1), HOST, notify=notes.append, poll=0.2)))
    waiter.start()
    waiter.join(1.0)
    assert waiter.is_alive() and result == []
    assert notes and notes[0].startswith("  waiting for 1 GPU: held by dtrun-gpu-test-")
    held.remove(force=True)
    waiter.join(10)
    assert result and notes[-1] == "  GPU 0 (NVIDIA A100-SXM4-40GB)"


def test_racing_claims_never_share_a_gpu(backends: list[DockerBackend], docker_client: Any) -> None:
    """Three threads claim at the same moment, each through its own connection: the check after create
    makes a claim that overlaps another back off and pick again, until each holds a GPU of its own.
    A lost race is a matter of timing, so the race is run several times."""
    for attempt in range(4):
        created: dict[str, Any] = {}
        barrier = threading.Barrier(3)

        def claim(index: int, attempt: int, barrier: threading.Barrier, created: dict[str, Any]) -> None:
            barrier.wait()
            created[str(index)] = create_with_gpus(backends[index % 2], spec(f"r{attempt}-{index}"), Gpu(count=1),
                                                   HOST, poll=0.2)

        threads = [threading.Thread(target=claim, args=(i, attempt, barrier, created)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        ids = [device_requests(docker_client, c)[0]["DeviceIDs"][0] for c in created.values()]
        assert sorted(ids) == sorted(g.uuid for g in INVENTORY), f"attempt {attempt}"
        for container in created.values():
            container.remove(force=True)


def test_a_job_that_is_not_interruptible_preempts_an_interruptible_one(backends: list[DockerBackend],
                                                                        docker_client: Any) -> None:
    one, two = backends
    # a running interruptible job (a GPU container cannot start on this GPU-less daemon: it holds by label)
    interruptible = running_holder(docker_client, "spot", [g.uuid for g in INVENTORY])
    notes: list[str] = []
    urgent = create_with_gpus(two, spec("urgent"), Gpu(count=1), HOST, notify=notes.append)
    assert device_requests(docker_client, urgent)[0]["DeviceIDs"] == [INVENTORY[0].uuid]
    assert notes[0] == f"  stopping the interruptible job {interruptible.name} to free GPU(s) for this one"
    assert was_preempted(one, interruptible.name) == urgent.name
    assert was_preempted(one, interruptible.name) is None  # the mark is consumed once


SPOT = f"""
workflows:
  - name: spot
    provider: docker
    image: {BUSYBOX_IMAGE}
    resources:
      interruptible: true
    artifacts: [ckpt, /out]
    commands:
      - |
        if [ -f ckpt/step ]; then
          echo "resumed at step $(cat ckpt/step), extra=$(cat /out/x)"
          exit 0
        fi
        mkdir -p ckpt /out
        echo 1 > ckpt/step
        echo keep > /out/x
        echo "checkpoint written"
        trap 'echo "got SIGTERM, exiting cleanly"; exit 0' TERM
        sleep 60 & wait
"""


def test_interruptible_job_is_resumed_from_its_saved_outputs_after_preemption(
        make_project: Any, dtrun: Any, docker_client: Any, dtrun_client: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from dtrun.backends.docker.gpus import Holder, preempt

    project = make_project({".dtrun/workflows.yaml": SPOT})
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "spot"], cwd=project, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dtrun.env)
    assert proc.stdout is not None
    seen = ""
    while "checkpoint written" not in seen:
        line = proc.stdout.readline()
        assert line, seen
        seen += line
    [container] = docker_client.containers.list(filters={"label": f"dev.dtrun.store={dtrun.store_label}"})
    backend = DockerBackend(dtrun_client, "unix:///var/run/docker.sock")
    preempt(backend, Holder(container.id, container.name, (), "", True), by="an urgent job", grace=2)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SUBMITTED spot (interruptible: preempted by an urgent job, outputs saved; resumes when its GPUs " \
           "are free)" in err
    assert "got SIGTERM, exiting cleanly" in out  # a clean exit after preemption still resumes
    assert "resumed at step 1, extra=keep" in out
    assert err.rstrip().endswith("DONE")
    [log] = Path(dtrun.store).glob("repos/**/jobs/*/logs.txt")
    text = log.read_text()
    assert text.index("checkpoint written") < text.index("--- dtrun: interruptible: preempted by an urgent job") \
        < text.index("resumed at step 1")


@pytest.mark.gpu
def test_on_a_real_gpu_host_a_job_sees_only_its_gpu(make_project: Any, dtrun: Any, docker_client: Any,
                                                    tmp_path: Any) -> None:
    if "nvidia" not in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this Docker host has no NVIDIA runtime (no GPU here)")
    hosts = dtrun("hosts", "--json", cwd=tmp_path)
    assert hosts.code == 0, hosts.output
    import json

    gpus = json.loads(hosts.stdout)[0]["gpus"]
    assert gpus, hosts.stdout
    project = make_project({".dtrun/workflows.yaml": """
workflows:
  - name: one
    provider: bash
    python_install: system
    commands: [nvidia-smi -L]
    resources: {gpu: 1}
"""})
    result = dtrun("run", "one", cwd=project)
    assert result.code == 0, result.output
    assert result.stdout.count("GPU ") == 1 and gpus[0]["uuid"] in result.stdout


def test_admission_check_for_a_scheduler(backends: list[DockerBackend]) -> None:
    from dtrun.backends.docker.gpus import can_start

    one, _ = backends
    assert can_start(one, Gpu(count=3), HOST) and can_start(one, None, None)
    create_with_gpus(one, spec("all"), Gpu(count=3), HOST, interruptible=True)
    assert not can_start(one, Gpu(count=1), HOST, interruptible=True)
    assert can_start(one, Gpu(count=1), HOST)  # by preempting the interruptible holder


def test_a_running_victim_is_stopped_before_the_preempting_job_gets_its_gpu(backends: list[DockerBackend],
                                                                            docker_client: Any) -> None:
    one, _ = backends
    victim = running_holder(docker_client, "victim", [g.uuid for g in INVENTORY])
    urgent = create_with_gpus(one, spec("urgent2"), Gpu(count=1), HOST)
    victim.reload()
    assert victim.status == "exited" and device_requests(docker_client, urgent)[0]["DeviceIDs"] == [INVENTORY[0].uuid]


def test_a_preemption_that_fails_to_stop_its_victim_fails_admission(backends: list[DockerBackend],
                                                                   docker_client: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon refusing the stop is injected (it cannot be caused on a healthy daemon); the rest is real."""
    from dtrun.backends.docker.engineapi import errors as api_errors
    from dtrun.backends.docker.engineapi.models import Container
    from dtrun.errors import ResourceError

    one, _ = backends
    victim = running_holder(docker_client, "stubborn", [g.uuid for g in INVENTORY])
    real_stop = Container.stop

    def refusing_stop(self: Container, **kwargs: Any) -> None:
        if self.id == victim.id:
            raise api_errors.APIError("Server Error", 500, "cannot stop container: permission denied")
        real_stop(self, **kwargs)

    monkeypatch.setattr(Container, "stop", refusing_stop)
    with pytest.raises(ResourceError, match=f"could not preempt the interruptible job {victim.name}") as info:
        create_with_gpus(one, spec("blocked"), Gpu(count=1), HOST)
    assert "permission denied" in info.value.message and "still in use" in info.value.message
    victim.reload()
    assert victim.status == "running"  # still holding its GPUs, and nothing else was started on them
    assert docker_client.containers.list(all=True, filters={"name": f"dtrun-gpu-test-{SESSION}-blocked"}) == []


def test_ages_of_containers_are_read_on_the_daemons_clock(dtrun_client: Any, backends: list[DockerBackend]) -> None:
    from dtrun.backends.docker.clock import age, daemon_now

    one, _ = backends
    made = create_with_gpus(one, spec("aged"), Gpu(count=1), HOST)
    seconds = age(dtrun_client, dtrun_client.api.inspect_container(made.id)["Created"])
    assert seconds is not None and -1 < seconds < 30
    assert abs(daemon_now(dtrun_client) - __import__("time").time()) < 60  # same machine: the clocks agree
