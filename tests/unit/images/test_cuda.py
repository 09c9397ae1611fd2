"""CUDA choice, base tags, torch wheels and the driver check, from the data table."""

from __future__ import annotations

import pytest

from dtrun.errors import BuildError, ResourceError
from dtrun.images import cuda


def test_the_workflow_cuda_wins_over_a_pinned_torch() -> None:
    choice = cuda.resolve_cuda("11.8", b"torch==2.5.1\n")
    assert (choice.version, choice.source) == ("11.8", "workflow")


def test_a_pinned_torch_picks_the_cuda_it_ships_with() -> None:
    assert cuda.resolve_cuda(None, b"numpy\ntorch==2.1.2  # pinned\n").version == "12.1"
    assert cuda.resolve_cuda(None, b"torch~=2.7.0\n").version == "12.6"
    assert cuda.resolve_cuda(None, b"torch==2.4.0+cu118\n").version == "11.8"


def test_without_cuda_or_torch_pin_the_default_applies() -> None:
    assert cuda.resolve_cuda(None, b"torch>=2\n") == cuda.CudaChoice(cuda.table()["default_cuda"], "default")
    assert cuda.resolve_cuda(None, None).source == "default"


def test_patch_versions_and_bare_majors_map_to_known_minors() -> None:
    assert cuda.minor("12.4.1") == "12.4"
    assert cuda.minor("11") == "11.8"
    with pytest.raises(BuildError, match="not a CUDA version"):
        cuda.minor("twelve")


def test_base_tags_per_flavour() -> None:
    assert cuda.base_for("12.4") == "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    assert cuda.base_for("12.4.0", "cudnn-devel") == "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"
    with pytest.raises(BuildError, match=r"no base image is known for CUDA 10\.2") as info:
        cuda.base_for("10.2")
    assert "gpu_base_image" in str(info.value)


def test_torch_comes_from_the_index_of_the_cuda() -> None:
    assert cuda.torch_index("12.1") == "cu121"
    assert cuda.torch_index(None) == "cpu"
    assert cuda.torch_for("11.8", None) == "torch==2.7.*"
    assert cuda.torch_for("12.1", b"torch==2.2.0\n") == "torch==2.2.*"
    with pytest.raises(BuildError, match="no torch release"):
        cuda.torch_for("12.2", None)


def test_a_cuda_newer_than_the_driver_is_refused_with_the_best_alternative() -> None:
    cuda.check_cuda_supported("12.4", None)  # no GPU on the host: nothing to check
    cuda.check_cuda_supported("12.2", "535.104.05")
    with pytest.raises(ResourceError) as info:
        cuda.check_cuda_supported("12.4", "535.104.05")
    text = str(info.value)
    assert "CUDA 12.4 needs NVIDIA driver 550.54.14" in text and "535.104.05" in text
    assert "cuda: 12.2" in text
    with pytest.raises(ResourceError, match="too old for any CUDA"):
        cuda.check_cuda_supported("11.8", "390.1")


def test_the_table_follows_the_torch_on_pypi_today() -> None:
    # torch 2.15 is the newest on PyPI; its wheel bundles CUDA 13.2 (nvidia-cuda-runtime 13.2.x), so GPU
    # images default to 13.2 and a torchrun image gets 2.15 unless a CUDA or a pin says otherwise.
    assert cuda.table()["default_cuda"] == "13.2"
    assert cuda.resolve_cuda(None, None).version == "13.2"
    assert cuda.torch_for(None, None) == "torch==2.15.*"
    assert cuda.torch_for("13.2", None) == "torch==2.15.*"
    assert cuda.torch_for("13.0", None) == "torch==2.14.*"
    assert cuda.torch_for("12.8", None) == "torch==2.11.*"
    assert cuda.resolve_cuda(None, b"torch==2.12.1\n").version == "13.0"
    assert cuda.base_for("13.2", "cudnn-devel") == "nvidia/cuda:13.2.1-cudnn-devel-ubuntu24.04"
    cuda.check_cuda_supported("13.2", "580.95.05")
    with pytest.raises(ResourceError, match=r"580\.65\.06"):
        cuda.check_cuda_supported("13.0", "575.57.08")


def test_the_default_cuda_steps_down_to_what_the_host_driver_runs() -> None:
    # driver 570 runs CUDA up to 12.8: the default (13.2) would be refused, so the default becomes 12.8
    choice = cuda.resolve_cuda(None, None, "570.124.06")
    assert choice.version == "12.8" and "driver 570.124.06" in choice.source
    cuda.check_cuda_supported(choice.version, "570.124.06")
    assert cuda.resolve_cuda(None, None, "580.95.05") == cuda.CudaChoice("13.2", "default")
    # what the user asked for is kept, and then refused by the check with the best alternative
    assert cuda.resolve_cuda("13.0", None, "570.124.06").version == "13.0"
    assert cuda.resolve_cuda(None, b"torch==2.14.1\n", "570.124.06").version == "13.0"
