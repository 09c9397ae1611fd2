"""The generated image of a `python` action: DataTorch's SDK in a layer of its own, before the action's
requirements (so a change of requirements does not reinstall it), for every way of installing Python."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dtrun.flows.models import ActionManifest
from dtrun.flows.runs import image_tools
from dtrun.images.dockerfile import plan_build
from dtrun.images.probe import BaseInfo
from dtrun.images.spec import ImageSpec

GOLDEN = Path(__file__).parent / "golden"
CPU_BASE = BaseInfo("sha256:" + "c" * 64, python="3.11", venv=True, apt=True)
MANIFEST = ActionManifest.validate({"name": "a", "runs": {"using": "python", "main": "main.py"}})


@pytest.mark.parametrize("install", ["auto", "system", "conda", "uv"])
def test_the_sdk_has_its_own_layer(install: str) -> None:
    spec = ImageSpec(provider="action-python", python_install=install, requirements=b"numpy\n",
                     tools=image_tools(MANIFEST))
    text = plan_build(spec, "dtrun-local/base:bookworm", CPU_BASE, buildkit=True).dockerfile
    sdk = [line for line in text.splitlines() if '"datatorch>=0.8,<1"' in line]
    assert len(sdk) == 1 and "opencv-python-headless" in text
    assert text.index("datatorch>=0.8") < text.index("requirements")
    path = GOLDEN / f"action-python-{install}.Dockerfile"
    if os.environ.get("DTRUN_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} differs (DTRUN_UPDATE_GOLDEN=1 regenerates)"
