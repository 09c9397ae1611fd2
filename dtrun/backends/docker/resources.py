"""Refusing, before anything is built or started, what a host can never give a job.

A dstack workflow may ask for `memory: 64GB` or four A100s; on a Docker host that has less, the job
would fail late (OOM, `could not select device driver`) or not at all. These checks compare the
request with what `docker info` and the host's GPU list say, and name both in the message.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from dtrun.errors import ResourceError
from dtrun.units import size

if TYPE_CHECKING:
    from dtrun.backends.docker import DockerBackend
    from dtrun.backends.docker.hostinfo import GpuInfo, HostInfo
    from dtrun.spec.models import Gpu, Resources




def check_resources(backend: DockerBackend, workflow: str, resources: Resources, nodes: int = 1) -> None:
    """`resources` are per node; a multi-node job's `nodes` containers all run on this one host, so the
    host must have `nodes` x each of them (what a single node may use at most: memory, CPUs, GPUs)."""
    if nodes > 1:
        gpu = replace(resources.gpu, count=resources.gpu.count * nodes) if resources.gpu else None
        resources = replace(
            resources, memory=resources.memory * nodes if resources.memory else resources.memory,
            cpu=resources.cpu * nodes if resources.cpu else resources.cpu,
            shm_size=resources.shm_size * nodes if resources.shm_size else resources.shm_size, gpu=gpu)
        try:
            _check(backend, workflow, resources)
        except ResourceError as err:  # say that the sizes are the nodes' together
            raise ResourceError(f"{err.message} (its {nodes} nodes together: all of them run on this one host)",
                                hint=err.hint) from None
        return
    _check(backend, workflow, resources)


def _check(backend: DockerBackend, workflow: str, resources: Resources) -> None:
    needs_host = resources.memory or resources.cpu or resources.shm_size or resources.gpu_count
    if not needs_host:
        return
    host = backend.host_info()
    hint = "ask for less in the workflow's `resources`, or run on a bigger host (--host / DOCKER_HOST); " \
           "`dtrun hosts` shows what a host has"
    if resources.memory and host.memory and resources.memory > host.memory:
        raise ResourceError(f"workflow '{workflow}' asks for {size(resources.memory)} of memory, but the Docker "
                            f"host {host.endpoint} has {size(host.memory)}", hint=hint)
    if resources.shm_size and host.memory and resources.shm_size > host.memory:
        raise ResourceError(f"workflow '{workflow}' asks for {size(resources.shm_size)} of shared memory "
                            f"(shm_size), but the Docker host {host.endpoint} has {size(host.memory)} of memory",
                            hint=hint)
    if resources.cpu and host.cpus and resources.cpu > host.cpus:
        raise ResourceError(f"workflow '{workflow}' asks for {resources.cpu:g} CPUs, but the Docker host "
                            f"{host.endpoint} has {host.cpus}", hint=hint)
    if resources.gpu is not None:
        check_gpu_request(host, resources.gpu, workflow)


def suitable(inventory: list[GpuInfo], request: Gpu) -> list[GpuInfo]:
    """The GPUs that match the request's model name (a substring, case and spaces ignored) and memory."""
    name = (request.name or "").lower().replace(" ", "")
    # nvidia-smi reports a little less than the marketing size (an "80GB" H100 shows 79.6 GiB)
    return [g for g in inventory
            if (not name or name in g.name.lower().replace(" ", ""))
            and (not request.memory or g.memory >= request.memory * 0.9)]


def describe_request(request: Gpu) -> str:
    what = f"{request.count} GPU{'s' if request.count != 1 else ''}"
    if request.name:
        what += f" of model {request.name}"
    if request.memory:
        what += f" with at least {size(request.memory)}"
    return what


def check_gpu_request(host: HostInfo, request: Gpu, workflow: str) -> None:
    """A GPU request the host could never satisfy, even with all its GPUs free, is refused here."""
    if request.count <= 0:
        return
    hint = ("run on a host that has them (--host / DOCKER_HOST=ssh://me@gpu-box), ask for fewer "
            "(`dtrun run WORKFLOW --gpus N`), or see `dtrun hosts`")
    if not host.nvidia:
        raise ResourceError(
            f"workflow '{workflow}' asks for {describe_request(request)}, but the Docker host {host.endpoint} has "
            f"no NVIDIA runtime (runtimes: {', '.join(host.runtimes) or 'none'})",
            hint="install the NVIDIA Container Toolkit there (`nvidia-ctk runtime configure --runtime=docker`, "
            "then restart dockerd), or run on a GPU host: DOCKER_HOST=ssh://me@gpu-box dtrun run ...")
    if host.gpu_error and not host.gpus:
        raise ResourceError(f"workflow '{workflow}' asks for {describe_request(request)}, but the GPUs of "
                            f"{host.endpoint} could not be listed: {host.gpu_error}", hint=hint)
    if len(suitable(host.gpus, request)) < request.count:
        raise ResourceError(f"workflow '{workflow}' asks for {describe_request(request)}, but the Docker host "
                            f"{host.endpoint} has {host.describe_gpus()}", hint=hint)
