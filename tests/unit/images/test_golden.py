"""The rendered Dockerfile of every provider x CPU/GPU x python_install, compared with golden files.

Regenerate after an intended template change with `DTRUN_UPDATE_GOLDEN=1 pytest tests/unit/images`,
then read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dtrun.config import Settings
from dtrun.images.dockerfile import plan_build
from dtrun.images.manager import base_image
from dtrun.images.probe import BaseInfo
from dtrun.providers import PROVIDERS, ProviderContext
from dtrun.spec.models import Workflow

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DTRUN_UPDATE_GOLDEN") == "1"

#: The bases as the probe sees them: the local Debian base (python 3.11, venv, apt, no curl) for CPU
#: jobs, and an nvidia/cuda base (apt only) for GPU jobs.
CPU_BASE = BaseInfo("sha256:" + "c" * 64, python="3.11", venv=True, apt=True)
GPU_BASE = BaseInfo("sha256:" + "9" * 64, apt=True)
SETTINGS = Settings(store="unused", base_image="dtrun-local/base:bookworm")

GENERATED = sorted(name for name in PROVIDERS if name != "docker")
INSTALLS = ("auto", "system", "conda", "uv")


def workflow(provider: str, gpu: bool, install: str) -> Workflow:
    data: dict[str, object] = {"name": "w", "provider": provider, "python_install": install,
                               "commands": ["echo ready"]}
    if provider in ("python", "torchrun"):
        data["file"] = "train.py"
        data["args"] = ["--epochs", "2"]
    if gpu:
        data["resources"] = {"gpu": 2}
    return Workflow.validate(data)


def render(provider: str, gpu: bool, install: str, project: Path, *, buildkit: bool = True) -> str:
    shape = PROVIDERS[provider].shape(workflow(provider, gpu, install), ProviderContext(project_root=project))
    settings = Settings(store="unused", base_image=None) if gpu else SETTINGS
    choice = base_image(shape.image, settings)
    return plan_build(shape.image, choice.ref, GPU_BASE if gpu else CPU_BASE, buildkit=buildkit,
                      cuda=choice.cuda).dockerfile


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert path.is_file(), f"no golden file {path}; run with DTRUN_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{name} differs from its golden file (DTRUN_UPDATE_GOLDEN=1 regenerates)"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "requirements.txt").write_text("requests==2.32.3\n")
    return tmp_path


@pytest.mark.parametrize("install", INSTALLS)
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
@pytest.mark.parametrize("provider", GENERATED)
def test_rendered_dockerfile_matches_golden(provider: str, gpu: bool, install: str, project: Path) -> None:
    text = render(provider, gpu, install, project)
    check(f"{provider}-{'gpu' if gpu else 'cpu'}-{install}.Dockerfile", text)
    assert not text.startswith("# syntax"), "a syntax line would pull a frontend image"
    assert "# syntax=" not in text


@pytest.mark.parametrize("provider", GENERATED)
def test_legacy_builder_variant_has_no_mounts(provider: str, project: Path) -> None:
    text = render(provider, False, "system", project, buildkit=False)
    check(f"{provider}-cpu-system-legacy.Dockerfile", text)
    assert "--mount" not in text


def test_every_generated_provider_has_goldens() -> None:
    if UPDATE:
        return
    expected = {f"{p}-{g}-{i}.Dockerfile" for p in GENERATED for g in ("cpu", "gpu") for i in INSTALLS}
    expected |= {f"{p}-cpu-system-legacy.Dockerfile" for p in GENERATED}
    present = {p.name for p in GOLDEN.glob("*.Dockerfile")}
    assert expected == present, f"missing: {sorted(expected - present)}; stale: {sorted(present - expected)}"
