"""Choosing how Python gets in, what the tag covers, and how a failed build is reported."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dtrun.config import Settings
from dtrun.errors import BuildError, DtrunError
from dtrun.images.builder import BuildLog
from dtrun.images.dockerfile import plan_build, resolve_python_install
from dtrun.images.manager import base_image
from dtrun.images.probe import BaseInfo
from dtrun.images.spec import ImageSpec

DEBIAN = BaseInfo("sha256:" + "1" * 64, python="3.11", venv=True, apt=True)
CONDA = BaseInfo("sha256:" + "2" * 64, python="3.12", venv=True, apt=True, conda=True, curl=True)
BARE = BaseInfo("sha256:" + "3" * 64, apt=True)
BUSYBOX = BaseInfo("sha256:" + "4" * 64)


@pytest.mark.parametrize(("base", "python", "expected"), [
    (DEBIAN, None, "system"),     # the base's python3 will do
    (DEBIAN, "3.11", "system"),
    (DEBIAN, "3.10", "conda"),    # the wrong version: Miniforge brings the right one
    (CONDA, "3.9", "conda"),      # the base's own conda creates the environment
    (BARE, None, "conda"),        # no Python at all (nvidia/cuda): Miniforge
])
def test_auto_adapts_to_the_base(base: BaseInfo, python: str | None, expected: str) -> None:
    assert resolve_python_install(ImageSpec("bash", python=python), base) == expected


def test_conda_from_the_base_does_not_install_miniforge() -> None:
    text = plan_build(ImageSpec("bash", python="3.9"), "conda-base", CONDA, buildkit=True).dockerfile
    assert "miniforge" not in text.lower()
    assert "create -y -q -p /opt/dtrun/env python=3.9 pip" in text


def test_system_with_another_python_is_an_error_with_a_hint() -> None:
    with pytest.raises(BuildError) as info:
        plan_build(ImageSpec("bash", python="3.10", python_install="system"), "b", DEBIAN, buildkit=True)
    assert "python 3.11" in str(info.value) and "python_install: conda" in str(info.value)


def test_a_base_without_python_or_apt_is_an_error() -> None:
    with pytest.raises(BuildError, match="has no python3 and no apt-get"):
        plan_build(ImageSpec("bash", python_install="system"), "busybox", BUSYBOX, buildkit=True)
    with pytest.raises(BuildError, match="unknown python_install"):
        plan_build(ImageSpec("bash", python_install="pixi"), "b", DEBIAN, buildkit=True)


def test_the_tag_covers_base_id_requirements_and_templates_but_not_a_forced_rebuild() -> None:
    spec = ImageSpec("bash", requirements=b"six\n")
    tag = plan_build(spec, "b", DEBIAN, buildkit=True).tag
    assert tag.startswith("dtrun/bash:")
    assert plan_build(spec, "b", DEBIAN, buildkit=True).tag == tag
    assert plan_build(spec, "b", dataclasses.replace(DEBIAN, image_id="sha256:x"), buildkit=True).tag != tag
    assert plan_build(dataclasses.replace(spec, requirements=b"six==1\n"), "b", DEBIAN, buildkit=True).tag != tag
    assert plan_build(spec, "b", DEBIAN, buildkit=False).tag != tag
    assert plan_build(spec, "b", DEBIAN, buildkit=True, platform="linux/arm64").tag != tag
    forced = plan_build(spec, "b", DEBIAN, buildkit=True, rebuild="123")
    assert forced.tag == tag and forced.build_args == {"DTRUN_REBUILD": "123"}
    assert "ARG DTRUN_REBUILD\n" in forced.dockerfile


def test_labels_record_the_spec() -> None:
    labels = plan_build(ImageSpec("lab", tools=("jupyterlab",)), "b", DEBIAN, buildkit=True).labels
    assert labels["dev.dtrun.provider"] == "lab" and labels["dev.dtrun.tools"] == "jupyterlab"
    assert '"python_install":"auto"' in labels["dev.dtrun.spec"]
    assert labels["dev.dtrun.base-id"] == DEBIAN.image_id


def test_base_selection_cpu_gpu_and_overrides() -> None:
    plain = Settings(store="s")
    assert base_image(ImageSpec("bash"), plain).ref == "debian:bookworm-slim"
    gpu = base_image(ImageSpec("bash", gpu=True, requirements=b"torch==2.1.0\n"), plain)
    assert (gpu.ref, gpu.cuda) == ("nvidia/cuda:12.1.1-runtime-ubuntu22.04", "12.1")
    torch = base_image(ImageSpec("torchrun", gpu=True, cuda="11.8", tools=("torch",)), plain)
    assert torch.ref == "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"
    airgapped = Settings(store="s", base_image="site/base:1")
    assert base_image(ImageSpec("bash", gpu=True), airgapped).ref == "site/base:1"
    assert base_image(ImageSpec("bash", gpu=True), Settings(store="s", gpu_base_image="site/gpu")).cuda == "13.2"
    assert base_image(ImageSpec("bash", base="mine:1"), airgapped).ref == "mine:1"


def test_a_base_per_provider_from_the_environment_or_the_config(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    from dtrun.config import write_file_setting

    monkeypatch.setenv("DTRUN_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.delenv("DTRUN_BASE_IMAGE_LAB", raising=False)
    settings = Settings(store="s", base_image="site/base:1")
    write_file_setting("base_image.lab", "site/lab:1")
    write_file_setting("gpu_base_image.torchrun", "site/torch:cuda")
    assert base_image(ImageSpec("lab"), settings).ref == "site/lab:1"
    assert base_image(ImageSpec("bash"), settings).ref == "site/base:1"
    assert base_image(ImageSpec("torchrun", gpu=True), settings).ref == "site/torch:cuda"
    monkeypatch.setenv("DTRUN_BASE_IMAGE_LAB", "env/lab:2")
    assert base_image(ImageSpec("lab"), settings).ref == "env/lab:2"
    with pytest.raises(DtrunError, match="unknown setting"):
        write_file_setting("base_image.", "x")


BUILDKIT_FAILURE = """\
#5 [1/3] FROM docker.io/library/base
#5 CACHED
#6 [2/3] RUN python3 -m venv /opt/dtrun/venv
#6 DONE 2.1s
#7 [3/3] RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-pip,target=/root/.cache/pip \
if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca; fi; \
pip install -r /opt/dtrun/requirements.txt
#7 0.812 Collecting nosuchpackage
#7 1.532 ERROR: No matching distribution found for nosuchpackage
#7 ERROR: process "/bin/sh -c pip install" did not complete successfully: exit code: 1
------
 > [3/3] RUN pip install -r /opt/dtrun/requirements.txt:
------
"""


def test_the_failing_buildkit_step_and_only_its_log_is_reported() -> None:
    steps: list[str] = []
    log = BuildLog(steps.append)
    for line in BUILDKIT_FAILURE.splitlines():
        log.feed(line)
    assert steps == ["[1/3] FROM docker.io/library/base", "[2/3] RUN python3 -m venv /opt/dtrun/venv",
                     "[3/3] RUN pip install -r /opt/dtrun/requirements.txt"]
    report = log.failure()
    assert report.startswith("failing step: [3/3] RUN pip install")
    assert "No matching distribution found for nosuchpackage" in report
    assert "venv" not in report.split("\n", 1)[1]


def test_the_failing_legacy_step_is_reported() -> None:
    log = BuildLog()
    for line in ["Step 1/2 : FROM base", " ---> abc", "Step 2/2 : RUN false", " ---> Running in 1"]:
        log.feed(line)
    assert log.failure() == "failing step: Step 2/2 : RUN false\n   ---> Running in 1"


def test_a_cuda_the_host_driver_cannot_run_is_refused_before_any_docker_call() -> None:
    from dtrun.errors import ResourceError
    from dtrun.images.manager import ensure_image

    spec = ImageSpec("torchrun", gpu=True, requirements=b"torch==2.7.1\n", tools=("torch",))
    with pytest.raises(ResourceError, match=r"CUDA 12\.6 needs NVIDIA driver 560\.28\.03"):
        ensure_image(None, spec, Settings(store="s"), docker_host=None,  # type: ignore[arg-type]
                     output=print, driver_version="550.54.14")
