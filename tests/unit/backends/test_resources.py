"""Requests larger than the host are refused with both sizes named; sizes read as they were written."""

from __future__ import annotations

from typing import Any

import pytest

from dtrun.backends.docker.hostinfo import HostInfo
from dtrun.backends.docker.resources import check_resources
from dtrun.errors import ResourceError
from dtrun.spec.models import Gpu, Resources, Workflow, with_gpus
from dtrun.units import size

HOST = HostInfo("tcp://box:2375", "box", "id", "24", "Debian", 8, 32 * 10**9, ["runc"])


class FakeBackend:
    def host_info(self) -> HostInfo:
        return HOST


def check(resources: dict[str, Any]) -> None:
    check_resources(FakeBackend(), "train", Resources.validate(resources))  # type: ignore[arg-type]


def test_within_the_host_passes() -> None:
    check({"memory": "16GB", "cpu": 8, "shm_size": "1GB"})
    check({})


@pytest.mark.parametrize(("resources", "message"), [
    ({"memory": "64GB"}, "workflow 'train' asks for 64 GB of memory, but the Docker host tcp://box:2375 has 32 GB"),
    ({"cpu": 16}, "asks for 16 CPUs, but the Docker host tcp://box:2375 has 8"),
    ({"shm_size": "40GiB"}, "asks for 40 GiB of shared memory (shm_size), but the Docker host"),
    ({"gpu": 1}, "asks for 1 GPU, but the Docker host tcp://box:2375 has no NVIDIA runtime"),
])
def test_too_much_is_refused(resources: dict[str, Any], message: str) -> None:
    with pytest.raises(ResourceError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        check(resources)
    assert info.value.hint


@pytest.mark.parametrize(("n", "text"), [(32 * 2**20, "32 MiB"), (64 * 10**9, "64 GB"), (25_265_524_736, "25.3 GB"),
                                         (2**40, "1 TiB"), (512, "512 B")])
def test_size(n: int, text: str) -> None:
    assert size(n) == text


def test_gpus_flag_overrides_count_and_keeps_model() -> None:
    workflow = Workflow.validate({"name": "t", "provider": "bash", "commands": ["x"],
                                        "resources": {"gpu": {"name": "A100", "count": 4}}})
    assert with_gpus(workflow, 1).resources.gpu == Gpu(name="A100", count=1)
    assert with_gpus(workflow, 0).resources.gpu is None
    plain = Workflow.validate({"name": "t", "provider": "bash", "commands": ["x"]})
    assert with_gpus(plain, 2).resources.gpu_count == 2
