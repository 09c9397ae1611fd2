"""Resources enforced on the container: memory limit visible inside, OOM reported as such, requests larger
than the host refused before anything starts, ports published and reported."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import BUSYBOX_IMAGE, DtrunRunner

WORKFLOWS = f"""
workflows:
  - name: limits
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - echo "limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
      - echo "shm=$(df -k /dev/shm | tail -1 | awk '{{print $2}}')"
      - echo "cpus=$(cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)"
    resources:
      memory: 64MiB
      shm_size: 32MiB
      cpu: 0.5
  - name: hog
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - echo starting
      - x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo "${{#x}}"
    resources:
      memory: 32MiB
  - name: huge
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands: [echo never]
    resources:
      memory: 64TB
  - name: many-cpus
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands: [echo never]
    resources:
      cpu: 4096
  - name: gpu
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands: [echo "gpu job ran"]
    resources:
      gpu: {{name: A100, count: 2, memory: 40GB}}
  - name: served
    provider: docker
    image: {BUSYBOX_IMAGE}
    ports: 2
    commands:
      - echo "ports=$PORT_0,$PORT_1"
      - sleep 1  # published ports exist while the container runs
"""


def _project(make_project: Callable[..., Path]) -> Path:
    return make_project({".dtrun/workflows.yaml": WORKFLOWS})


def _containers(docker_client: Any, dtrun: DtrunRunner) -> list[Any]:
    found: list[Any] = docker_client.containers.list(all=True,
                                                     filters={"label": f"dev.dtrun.store={dtrun.store_label}"})
    return found


def test_limits_are_visible_inside_the_container(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    result = dtrun("run", "limits", cwd=_project(make_project))
    assert result.code == 0, result.output
    assert "limit=67108864" in result.stdout
    assert "shm=32768" in result.stdout
    # cgroup v2 prints "50000 100000", v1 the quota alone (period 100000)
    assert re.search(r"cpus=50000\b", result.stdout), result.stdout


def test_job_over_its_memory_limit_is_reported_out_of_memory(make_project: Callable[..., Path],
                                                              dtrun: DtrunRunner) -> None:
    result = dtrun("run", "hog", cwd=_project(make_project))
    assert result.code != 0
    assert "starting" in result.stdout
    assert "out of memory: the job exceeded its memory limit (32 MiB)" in result.stderr, result.stderr
    assert "FAILED" in result.stderr


def test_more_memory_than_the_host_has_is_refused_before_start(make_project: Callable[..., Path],
                                                               dtrun: DtrunRunner, docker_client: Any) -> None:
    project = _project(make_project)
    result = dtrun("run", "huge", cwd=project)
    assert result.code == 2
    assert re.search(r"workflow 'huge' asks for 64 TB of memory, but the Docker host \S+ has [\d.]+ GB",
                     result.stderr), result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.output
    result = dtrun("run", "many-cpus", cwd=project)
    assert result.code == 2
    assert re.search(r"asks for 4096 CPUs, but the Docker host \S+ has \d+", result.stderr), result.stderr
    assert _containers(docker_client, dtrun) == []


def test_gpu_request_on_a_host_without_gpus_is_refused_and_gpus_flag_overrides(
        make_project: Callable[..., Path], dtrun: DtrunRunner, docker_client: Any) -> None:
    project = _project(make_project)
    result = dtrun("run", "gpu", cwd=project)
    assert result.code == 2
    assert "asks for 2 GPUs of model A100 with at least 40 GB, but the Docker host" in result.stderr
    assert "has no NVIDIA runtime" in result.stderr
    assert _containers(docker_client, dtrun) == []
    result = dtrun("run", "gpu", "--gpus", "1", cwd=project)
    assert result.code == 2 and "asks for 1 GPU of model A100" in result.stderr, result.stderr
    result = dtrun("run", "gpu", "--gpus", "0", cwd=project)
    assert result.code == 0, result.output
    assert "gpu job ran" in result.stdout
    result = dtrun("run", "served", "--gpus", "-1", cwd=project)
    assert result.code == 2 and "--gpus" in result.stderr


def test_ports_are_given_to_the_job_and_published(make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    result = dtrun("run", "served", cwd=_project(make_project))
    assert result.code == 0, result.output
    assert "ports=8000,8001" in result.stdout
    assert re.search(r"PORT_0 \(8000 in the job\) -> http://127\.0\.0\.1:\d+", result.stderr), result.stderr
    assert re.search(r"PORT_1 \(8001 in the job\) -> http://127\.0\.0\.1:\d+", result.stderr), result.stderr
