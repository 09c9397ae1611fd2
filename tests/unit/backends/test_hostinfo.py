"""Parsing what nvidia-smi says about a host's GPUs, and describing it in refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtrun.backends.docker.hostinfo import GpuInfo, HostInfo, parse_nvidia_smi

FIXTURES = Path(__file__).parent / "fixtures"


def test_parse_with_header_and_units() -> None:
    text = (FIXTURES / "nvidia-smi-units.csv").read_text()
    gpus = parse_nvidia_smi(text)
    assert [(g.index, g.name, g.memory, g.driver) for g in gpus] == [
        (0, "NVIDIA A100-SXM4-40GB", 40960 * 2**20, "535.104.05"),
        (1, "NVIDIA A100-SXM4-40GB", 40960 * 2**20, "535.104.05"),
    ]
    assert gpus[0].uuid.startswith("GPU-") and gpus[0].uuid != gpus[1].uuid


def test_parse_noheader_nounits_as_dtrun_asks() -> None:
    gpus = parse_nvidia_smi("0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n")
    assert gpus == [GpuInfo(0, "GPU-aaaa", "NVIDIA H100 80GB HBM3", 81559 * 2**20, "550.54.15")]
    assert round(gpus[0].memory_gb) == 80


@pytest.mark.parametrize("text", ["", "No devices were found\n", "index, uuid\n", "x, y, z, 1, 2\n"])
def test_parse_nothing_useful(text: str) -> None:
    assert parse_nvidia_smi(text) == []


def test_describe_groups_models() -> None:
    gpus = [GpuInfo(i, f"GPU-{i}", "NVIDIA A100-SXM4-40GB", 40960 * 2**20, "535") for i in range(2)]
    gpus.append(GpuInfo(2, "GPU-2", "Tesla T4", 15360 * 2**20, "535"))
    host = HostInfo("ssh://box", "box", "id", "24.0", "Ubuntu", 32, 2**37, ["nvidia", "runc"], gpus)
    assert host.describe_gpus() == "2 x NVIDIA A100-SXM4-40GB (40 GiB), 1 x Tesla T4 (15 GiB)"
    assert HostInfo.from_json(host.to_json()) == host
    bare = HostInfo("unix://", "h", "id", "20", "Debian", 2, 2**34, ["runc"])
    assert bare.describe_gpus() == "no GPUs (no NVIDIA runtime)"
