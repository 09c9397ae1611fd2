"""The docker runtime end to end on the live cluster: the rendered sbatch script runs the agent in a
container on the node, which writes logs, artifacts and its exit to a store folder shared with the
client; Slurm sees the command's exit code; a graceful stop saves outputs; nothing is left behind."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from dtrun.agent.manifest import JobManifest, OutputArtifact
from dtrun.backends.slurm.commands import SlurmCommands
from dtrun.backends.slurm.queue import SlurmJob, SlurmQueue
from dtrun.backends.slurm.script import SbatchJob, render
from dtrun.backends.slurm.settings import SlurmSettings
from dtrun.store import Store
from dtrun.store.records import State
from tests.conftest import SESSION
from tests.integration.slurm.conftest import Cluster

pytestmark = pytest.mark.xdist_group("slurm")  # one cluster per test session

REPO = "local/slurm-docker"


def submit(cluster: Cluster, commands: SlurmCommands, image: str, job: str, command: str,
           env: dict[str, str] | None = None, gpus: int = 0) -> tuple[str, Store]:
    store_dir = cluster.folder / f"store-{SESSION}"
    store_dir.mkdir(exist_ok=True)
    manifest = JobManifest(store=str(store_dir), repo=REPO, run=f"r{SESSION}", job=job, workflow="w",
                           command=["sh", "-c", command], secrets=sorted(env or {}), log_interval=0.5,
                           stop_grace=5, artifacts=[OutputArtifact("out", "/workspace/out")])
    sbatch = SbatchJob(run=f"r{SESSION}", job_id=job, workflow="w", image=image, manifest=manifest.to_json(),
                       gpus=gpus, shm_size=64 * 2**20, secrets=tuple(sorted(env or {})), store_label=SESSION,
                       store_mount=str(store_dir))
    settings = SlurmSettings(runtime="docker", docker_gpus=False, agent_python="python3",
                             output_dir=str(cluster.folder), stop_grace=5)
    return SlurmQueue(commands).submit(render(sbatch, settings), env=env), Store(str(store_dir), REPO)


def wait(queue: SlurmQueue, job_id: str, timeout: float = 120) -> SlurmJob:
    deadline = time.monotonic() + timeout
    while True:
        job = queue.job(job_id)
        assert job is not None
        if job.finished:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stayed {job.slurm_state}"
        time.sleep(0.3)


def containers(job: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label=dev.dtrun.job={job}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def log(store: Store, job: str) -> str:
    return store.read_bytes(store.job_path(job, "logs.txt")).decode()


def status(store: Store, job: str) -> dict[str, object]:
    return json.loads(store.read_bytes(store.job_path(job, "agent.json")))  # type: ignore[no-any-return]


@pytest.fixture
def queue(slurm_commands: SlurmCommands) -> SlurmQueue:
    return SlurmQueue(slurm_commands)


def test_job_runs_in_a_container_with_slurms_gpu_and_its_exit_code(
        slurm_cluster: Cluster, slurm_commands: SlurmCommands, queue: SlurmQueue, agent_image: str) -> None:
    job = f"d1{SESSION}"
    command = ("echo gpu=$CUDA_VISIBLE_DEVICES; echo shm=$(df -k /dev/shm | tail -1 | awk '{print $2}'); "
               "echo token=$TOK; mkdir -p out; echo hi > out/a.txt; exit 3")
    job_id, store = submit(slurm_cluster, slurm_commands, agent_image, job, command, {"TOK": "tok-s3cr3t"}, gpus=1)
    done = wait(queue, job_id)
    assert (done.state, done.exit_code) == (State.FAILED, 3)
    text = log(store, job)
    assert "gpu=0" in text and "shm=65536" in text and "token=***" in text and "s3cr3t" not in text
    st = status(store, job)
    assert (st["exit_code"], st["stopped"], st["slurm_job_id"]) == (3, False, job_id)
    assert [m["artifact"]["files"] for m in store.manifests(job)] == [1]
    assert containers(job) == []  # the EXIT trap removed it


def test_graceful_stop_saves_outputs_and_leaves_no_container(
        slurm_cluster: Cluster, slurm_commands: SlurmCommands, queue: SlurmQueue, agent_image: str) -> None:
    job = f"d2{SESSION}"
    command = ("mkdir -p out; trap 'echo saving; echo late > out/last.txt; exit 7' TERM; echo ready; "
               "while true; do sleep 0.1; done")
    job_id, store = submit(slurm_cluster, slurm_commands, agent_image, job, command)
    deadline = time.monotonic() + 120
    while not store.exists(store.job_path(job, "logs.txt")) or "ready" not in log(store, job):
        assert time.monotonic() < deadline, "the job never printed 'ready'"
        time.sleep(0.3)
    queue.signal(job_id, "TERM", batch=True)  # what `dtrun stop` does for the docker runtime
    done = wait(queue, job_id)
    st = status(store, job)
    assert (st["exit_code"], st["stopped"]) == (7, True)
    assert done.exit_code == 7
    assert "saving" in log(store, job)
    [saved] = store.manifests(job)
    assert saved["artifact"]["files"] == 1  # out/last.txt, written by the command's own TERM handler
    assert containers(job) == []


def test_scancel_from_outside_leaves_no_container(
        slurm_cluster: Cluster, slurm_commands: SlurmCommands, queue: SlurmQueue, agent_image: str) -> None:
    job = f"d3{SESSION}"
    job_id, store = submit(slurm_cluster, slurm_commands, agent_image, job, "echo ready; sleep 300")
    deadline = time.monotonic() + 120
    while not containers(job) or not store.exists(store.job_path(job, "logs.txt")):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    queue.cancel(job_id)
    done = wait(queue, job_id)
    assert done.state is State.STOPPED
    deadline = time.monotonic() + 60
    while containers(job):  # the batch shell's traps stop and remove it within Slurm's KillWait
        assert time.monotonic() < deadline, "a container outlived its Slurm job"
        time.sleep(0.5)
    assert status(store, job)["stopped"] is True
