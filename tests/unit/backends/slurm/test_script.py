"""sbatch scripts, compared with golden files (one per runtime and resource shape), and checked by bash.

Regenerate after an intended change with `DTRUN_UPDATE_GOLDEN=1 pytest tests/unit/backends/slurm`,
then read the diff: it is the change users' jobs will see.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dtrun.agent.manifest import JobManifest
from dtrun.backends.slurm.script import (
    SbatchJob,
    comment,
    enroot_uri,
    parse_comment,
    render,
    sbatch_options,
    slurm_time,
)
from dtrun.backends.slurm.settings import Login, SlurmSettings
from dtrun.errors import DtrunError
from dtrun.providers.torchrun_launch import Torchrun

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DTRUN_UPDATE_GOLDEN") == "1"

MANIFEST = JobManifest(store="s3://bucket/dtrun", repo="github.com/acme/digits", run="brave-otter-1",
                       job="a1b2c3d4e5f6", workflow="train", command=["python", "train.py", "--epochs", "3"],
                       env={"EPOCHS": "3"}, secrets=["WANDB_API_KEY"],
                       artifacts=[]).to_json()

CPU = SbatchJob(run="brave-otter-1", job_id="a1b2c3d4e5f6", workflow="train", image="dtrun/digits-cpu:3f2a",
                manifest=MANIFEST, cpus=2, memory=4 * 2**30, timeout=90 * 60, store_label="0123456789ab")
GPU = SbatchJob(run="brave-otter-1", job_id="a1b2c3d4e5f6", workflow="train", image="dtrun/digits-gpu:3f2a",
                manifest=MANIFEST, gpus=2, gpu_name="A100", cpus=0.5, memory=10**9, shm_size=2 * 2**30,
                interruptible=True, secrets=("WANDB_API_KEY",), store_label="0123456789ab",
                store_mount="/shared/dtrun-store")
NODES = SbatchJob(run="brave-otter-1", job_id="a1b2c3d4e5f6", workflow="ddp", image="dtrun/torchrun:3f2a",
                  manifest=MANIFEST, cpus=2, store_label="0123456789ab", store_mount="/shared/dtrun-store",
                  torchrun=Torchrun(nodes=2, nproc_per_node=2))

CASES = {
    "docker-2-nodes": (NODES, SlurmSettings(runtime="docker", partition="multi")),
    "pyxis-2-nodes": (NODES, SlurmSettings(runtime="pyxis", partition="gpu")),
    "apptainer-2-nodes": (NODES, SlurmSettings(runtime="apptainer", partition="gpu")),
    "docker-cpu": (CPU, SlurmSettings(runtime="docker", partition="debug")),
    "docker-gpu": (GPU, SlurmSettings(runtime="docker", account="ml-team", registry="registry.lab:5000/dtrun")),
    "docker-fake-gpu": (GPU, SlurmSettings(runtime="docker", docker_gpus=False)),
    "pyxis-gpu": (GPU, SlurmSettings(runtime="pyxis", partition="gpu", registry="registry.lab:5000/dtrun")),
    "apptainer-gpu": (GPU, SlurmSettings(runtime="apptainer", partition="gpu", registry="registry.lab:5000/dtrun")),
    "apptainer-cpu": (CPU, SlurmSettings(runtime="apptainer", output_dir="/scratch/me/logs/")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    job, settings = CASES[name]
    text = render(job, settings)
    path = GOLDEN / f"{name}.sbatch"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs; DTRUN_UPDATE_GOLDEN=1 regenerates it"
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)  # valid bash


def test_resources_become_sbatch_options() -> None:
    opts = sbatch_options(GPU, SlurmSettings(partition="gpu", account="acct"))
    assert "--gres=gpu:a100:2" in opts and "--cpus-per-task=1" in opts and "--mem=954M" in opts
    assert "--requeue" in opts and "--partition=gpu" in opts and "--account=acct" in opts
    opts = sbatch_options(CPU, SlurmSettings())
    assert "--no-requeue" in opts and "--time=0-01:30:00" in opts and not any(o.startswith("--gres") for o in opts)
    assert "--mem=4096M" in opts and not any(o.startswith("--partition") for o in opts)


def test_secrets_never_in_the_script() -> None:
    job = SbatchJob(**{**GPU.__dict__, "manifest": MANIFEST})
    text = render(job, SlurmSettings())
    assert "-e WANDB_API_KEY" in text  # passed by name; the value stays in the environment


def test_time_limits_round_up_to_minutes() -> None:
    assert slurm_time(1) == "0-00:01:00"
    assert slurm_time(61) == "0-00:02:00"
    assert slurm_time(2 * 86400 + 3600) == "2-01:00:00"


def test_comment_round_trip_and_foreign_jobs() -> None:
    assert parse_comment(comment(CPU)) == {"run": "brave-otter-1", "job": "a1b2c3d4e5f6", "workflow": "train",
                                           "store": "0123456789ab"}
    assert parse_comment("somebody else's job") == {}
    assert parse_comment("") == {}


def test_enroot_image_names() -> None:
    assert enroot_uri("registry.lab:5000/dtrun/img:1") == "registry.lab:5000#dtrun/img:1"
    assert enroot_uri("localhost/img:1") == "localhost#img:1"
    assert enroot_uri("nvidia/cuda:12.4") == "nvidia/cuda:12.4"
    assert enroot_uri("ubuntu") == "ubuntu"


def test_settings_are_checked() -> None:
    assert Login.parse("local").local
    login = Login.parse("ssh://me@login.hpc.org:2222")
    assert (login.user, login.host, login.port, str(login)) == ("me", "login.hpc.org", 2222,
                                                                "ssh://me@login.hpc.org:2222")
    with pytest.raises(DtrunError, match="neither 'local' nor ssh://"):
        Login.parse("me@login")
    with pytest.raises(DtrunError, match=r"slurm\.runtime 'singularity' is not one of docker, pyxis, apptainer"):
        SlurmSettings(runtime="singularity")
    with pytest.raises(DtrunError, match="not a valid Slurm partition name"):
        SlurmSettings(partition="gpu; rm -rf /")
