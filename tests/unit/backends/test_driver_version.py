"""The NVIDIA driver a GPU image is checked against: read from the host, the oldest when GPUs differ."""

from __future__ import annotations

from typing import Any

import pytest

from dtrun.backends.docker import DockerBackend
from dtrun.backends.docker.hostinfo import GpuInfo, HostInfo


class StubClient:
    """Only `info()`: a GPU host cannot be had here, so its answer is given."""

    def __init__(self, runtimes: dict[str, Any]) -> None:
        self.runtimes = runtimes

    def info(self) -> dict[str, Any]:
        return {"Runtimes": self.runtimes}


def host(*drivers: str) -> HostInfo:
    gpus = [GpuInfo(index=i, uuid=f"GPU-{i}", name="A100", memory=40 * 10**9, driver=d) for i, d in enumerate(drivers)]
    return HostInfo(endpoint="unix://x", name="box", daemon_id="d", server_version="24", os="linux", cpus=8,
                    memory=64 * 10**9, runtimes=["nvidia", "runc"], gpus=gpus)


def test_oldest_driver_of_a_gpu_host(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = DockerBackend(StubClient({"nvidia": {}, "runc": {}}), "unix://x")
    monkeypatch.setattr(backend, "host_info", lambda refresh=False: host("535.104.05", "470.82.01", "535.54"))
    assert backend.driver_version() == "470.82.01"


def test_no_gpu_runtime_means_nothing_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = DockerBackend(StubClient({"runc": {}}), "unix://x")
    monkeypatch.setattr(backend, "host_info", lambda refresh=False: pytest.fail("must not probe for GPUs"))
    assert backend.driver_version() is None
