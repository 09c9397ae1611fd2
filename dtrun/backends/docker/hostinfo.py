"""What a Docker host offers: CPUs, memory, runtimes, and its GPUs (model, memory, driver).

CPUs, memory and runtimes come from `docker info`. Docker does not list GPUs, so where the NVIDIA
runtime is present dtrun asks the host itself: a short container with all GPUs attached runs
`nvidia-smi --query-gpu=... --format=csv` (the NVIDIA runtime injects the binary into any glibc
image). That costs a container start, so the answer is cached per daemon (its ID) for a day, and
whenever the daemon's CPUs, memory or runtimes change it is asked again. `dtrun hosts --refresh`
forces it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, field
from typing import Any

from dtrun.cachefile import cache_path, read_json, write_json
from dtrun.structs import struct

CACHE_TTL = 24 * 3600
QUERY = "index,uuid,name,memory.total,driver_version"


@struct(frozen=True)
class GpuInfo:
    index: int
    uuid: str
    name: str
    memory: int  # bytes
    driver: str

    @property
    def memory_gb(self) -> float:
        return self.memory / 2**30


@struct(frozen=True)
class HostInfo:
    endpoint: str
    name: str
    daemon_id: str
    server_version: str
    os: str
    cpus: int
    memory: int  # bytes
    runtimes: list[str]
    gpus: list[GpuInfo] = field(default_factory=list)
    gpu_error: str | None = None
    checked_at: float = 0.0

    @property
    def nvidia(self) -> bool:
        return "nvidia" in self.runtimes

    def describe_gpus(self) -> str:
        """What a user needs to read in a refusal: `2 x NVIDIA A100 (40 GiB)`, or why there are none."""
        if not self.gpus:
            return "no GPUs" + ("" if self.nvidia else " (no NVIDIA runtime)")
        groups: dict[str, int] = {}
        for gpu in self.gpus:
            key = f"{gpu.name} ({gpu.memory_gb:.0f} GiB)"
            groups[key] = groups.get(key, 0) + 1
        return ", ".join(f"{n} x {key}" for key, n in groups.items())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostInfo:
        gpus = [GpuInfo(**g) for g in data.get("gpus", [])]
        return cls(**{**data, "gpus": gpus})


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """`nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version --format=csv[,noheader][,nounits]`.

    Memory is MiB without `nounits` ("81559 MiB") and a plain number with it; a header line is skipped.
    """
    gpus: list[GpuInfo] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 5 or not cells[0].isdigit():
            continue
        amount, _, unit = cells[-2].partition(" ")
        factor = {"mib": 2**20, "gib": 2**30, "kib": 2**10}.get(unit.strip().lower() or "mib", 2**20)
        try:
            size = int(float(amount) * factor)
        except ValueError:
            size = 0
        gpus.append(GpuInfo(index=int(cells[0]), uuid=cells[1], name=", ".join(cells[2:-2]),
                            memory=size, driver=cells[-1]))
    return gpus


def query_gpus(client: Any, images: list[str]) -> list[GpuInfo]:
    """Run nvidia-smi on the host in a throwaway container; raises RuntimeError saying why not."""
    from dtrun.backends.docker.engineapi import errors as api_errors
    from dtrun.backends.docker.engineapi.create import DeviceRequest

    image = _first_present(client, images)
    try:
        out = client.containers.run(
            image, entrypoint=["nvidia-smi"], command=[f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])],
            environment={"NVIDIA_DRIVER_CAPABILITIES": "utility"}, labels={"dev.dtrun": "1", "dev.dtrun.probe": "gpus"},
            network_disabled=True, remove=True, stdout=True, stderr=True)
    except api_errors.DockerException as exc:
        raise RuntimeError(f"nvidia-smi failed on the host: {getattr(exc, 'explanation', None) or exc}") from None
    return parse_nvidia_smi(out.decode(errors="replace"))


def _first_present(client: Any, images: list[str]) -> str:
    from dtrun.backends.docker.engineapi import errors as api_errors

    for ref in images:
        try:
            client.images.get(ref)
            return ref
        except api_errors.APIError:  # missing, or a reference the daemon cannot parse (400): the next one
            continue
    for ref in images:
        try:
            client.images.pull(ref)
            return ref
        except api_errors.APIError:
            continue
    raise RuntimeError(f"no image to run nvidia-smi in: none of {', '.join(images)} is on the host or pullable")


def host_info(client: Any, endpoint: str, *, images: list[str], refresh: bool = False) -> HostInfo:
    """The host's description, from the cache when it is fresh and the daemon did not change."""
    info = client.info()
    base = HostInfo(endpoint=endpoint, name=str(info.get("Name", "")), daemon_id=str(info.get("ID", "")),
                    server_version=str(info.get("ServerVersion", "")), os=str(info.get("OperatingSystem", "")),
                    cpus=int(info.get("NCPU") or 0), memory=int(info.get("MemTotal") or 0),
                    runtimes=sorted(info.get("Runtimes") or {}), checked_at=time.time())
    if not base.nvidia:
        return base
    cache = cache_path(f"hosts/{(base.daemon_id or endpoint).replace(':', '_')}.json")
    if not refresh:
        try:
            cached = HostInfo.from_json(read_json(cache))
            if (time.time() - cached.checked_at < CACHE_TTL and cached.gpu_error is None
                    and (cached.cpus, cached.memory, cached.runtimes) == (base.cpus, base.memory, base.runtimes)):
                return HostInfo(**{**asdict(base), "gpus": cached.gpus, "checked_at": cached.checked_at})
        except (OSError, ValueError, TypeError, KeyError):
            pass
    try:
        result = HostInfo(**{**asdict(base), "gpus": query_gpus(client, images)})
    except RuntimeError as exc:
        return HostInfo(**{**asdict(base), "gpu_error": str(exc)})
    write_json(cache, result.to_json())
    return result
