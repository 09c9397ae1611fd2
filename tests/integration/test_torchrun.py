"""`provider: torchrun` for real on this machine: torch from PyPI (download.pytorch.org does not resolve
here), a distributed all-reduce under torchrun on the Docker backend (CPU, gloo).

The first build downloads torch and its CUDA libraries (several GB; about five minutes here); the layer
and then the image are cached, keyed by content, so later runs build nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DtrunRunner

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("images")]
ALLREDUCE = (Path(__file__).parent.parent / "torchrun" / "allreduce.py").read_text()


@pytest.mark.timeout(2400)
def test_torchrun_runs_an_all_reduce_with_torch_from_pypi(dtrun: DtrunRunner, make_project: Any) -> None:
    workflow = ("workflows:\n  - name: ddp\n    provider: torchrun\n    python_install: system\n"
                "    file: allreduce.py\n")
    root = make_project({".dtrun/workflows.yaml": workflow, "allreduce.py": ALLREDUCE})
    built = dtrun("images", "build", "ddp", cwd=root, timeout=1800)
    assert built.code == 0, built.output
    run = dtrun("run", "ddp", cwd=root, timeout=900)
    assert run.code == 0, run.output
    assert "rank 0/1 (node 0, local 0): sum of ranks 0 == 0 ok" in run.output
