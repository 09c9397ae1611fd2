"""The pyxis and apptainer runtimes, live where their binaries exist on this machine; skipped with the
reason otherwise (this machine has neither: their scripts are covered by the golden files in
tests/unit/backends/slurm). They pull the image from a registry: DTRUN_TEST_SLURM_IMAGE names an
image there that holds the agent (python with dtrun and fsspec)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from dtrun.agent.manifest import JobManifest
from dtrun.backends.slurm.commands import SlurmCommands
from dtrun.backends.slurm.queue import SlurmQueue
from dtrun.backends.slurm.script import SbatchJob, render
from dtrun.backends.slurm.settings import SlurmSettings
from dtrun.store import Store
from dtrun.store.records import State
from tests.conftest import SESSION
from tests.integration.slurm.conftest import Cluster

pytestmark = pytest.mark.xdist_group("slurm")


def _has_pyxis() -> bool:
    if shutil.which("srun") is None:
        return False
    out = subprocess.run(["srun", "--help"], capture_output=True, text=True, check=False)
    return "--container-image" in out.stdout


def _image() -> str:
    image = os.environ.get("DTRUN_TEST_SLURM_IMAGE")
    if not image:
        pytest.skip("set DTRUN_TEST_SLURM_IMAGE to an image in a registry the node can pull, holding the agent")
    return image


@pytest.mark.parametrize("runtime", ["pyxis", "apptainer"])
def test_runtime_runs_the_agent(runtime: str, slurm_cluster: Cluster, slurm_commands: SlurmCommands) -> None:
    if runtime == "apptainer" and shutil.which("apptainer") is None:
        pytest.skip("apptainer is not installed on this machine (Debian does not package it)")
    if runtime == "pyxis" and not _has_pyxis():
        pytest.skip("srun has no --container-image: the pyxis SPANK plugin is not installed")
    image = _image()
    store_dir = slurm_cluster.folder / f"store-{runtime}-{SESSION}"
    store_dir.mkdir(exist_ok=True)
    job = f"{runtime}{SESSION}"
    manifest = JobManifest(store=str(store_dir), repo="local/rt", run="r", job=job, workflow="w",
                           command=["sh", "-c", "echo from $0; exit 3", runtime])
    sbatch = SbatchJob(run="r", job_id=job, workflow="w", image=image, manifest=manifest.to_json(),
                       store_label=SESSION, store_mount=str(store_dir))
    queue = SlurmQueue(slurm_commands)
    job_id = queue.submit(render(sbatch, SlurmSettings(runtime=runtime, output_dir=str(slurm_cluster.folder))))
    deadline = time.monotonic() + 600
    while not (found := queue.job(job_id)) or not found.finished:
        assert time.monotonic() < deadline
        time.sleep(1)
    assert (found.state, found.exit_code) == (State.FAILED, 3)
    store = Store(str(store_dir), "local/rt")
    assert f"from {runtime}" in store.read_bytes(store.job_path(job, "logs.txt")).decode()
