"""The Slurm command layer against the live cluster: submit, find by name and comment, states, exit
codes, pending reasons, signals, cancel, refusals, and the hosts listing."""

from __future__ import annotations

import time

import pytest

from dtrun.backends.slurm.commands import SlurmCommands, SlurmError
from dtrun.backends.slurm.hosts import partitions
from dtrun.backends.slurm.queue import SlurmJob, SlurmQueue
from dtrun.backends.slurm.script import job_name
from dtrun.store.records import State
from tests.conftest import SESSION
from tests.integration.slurm.conftest import Cluster

pytestmark = pytest.mark.xdist_group("slurm")  # one cluster per test session


def script(cluster: Cluster, job: str, body: str, *options: str) -> str:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name('r' + SESSION, job)}",
             f"#SBATCH --comment=dtrun,run=r{SESSION},job={job},workflow=w,store={SESSION}",
             f"#SBATCH --output={cluster.folder}/{job}.out", *(f"#SBATCH {o}" for o in options), body]
    return "\n".join(lines) + "\n"


def wait(queue: SlurmQueue, job_id: str, until: State | None = None, timeout: float = 60) -> SlurmJob:
    deadline = time.monotonic() + timeout
    while True:
        job = queue.job(job_id)
        assert job is not None
        if (until is None and job.finished) or job.state is until:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stayed {job.slurm_state}"
        time.sleep(0.3)


def test_submit_find_and_finish(slurm_cluster: Cluster, slurm_commands: SlurmCommands) -> None:
    queue = SlurmQueue(slurm_commands)
    job_id = queue.submit(script(slurm_cluster, "ok1", 'echo "secret=$MY_SECRET"'), env={"MY_SECRET": "v42"})
    [found] = queue.find("r" + SESSION, "ok1")
    assert found.id == job_id and found.tags == {"run": "r" + SESSION, "job": "ok1", "workflow": "w",
                                                 "store": SESSION}
    done = wait(queue, job_id)
    assert (done.state, done.exit_code, done.node) == (State.DONE, 0, "dtrun-node1")
    assert (slurm_cluster.folder / "ok1.out").read_text() == "secret=v42\n"  # env reached the job
    assert job_id in [j.id for j in queue.dtrun_jobs(store_label=SESSION, run="r" + SESSION)]
    assert job_id not in [j.id for j in queue.dtrun_jobs(store_label="another-store")]


def test_exit_code_reaches_the_state(slurm_cluster: Cluster, slurm_commands: SlurmCommands) -> None:
    queue = SlurmQueue(slurm_commands)
    job = wait(queue, queue.submit(script(slurm_cluster, "exit3", "exit 3")))
    assert (job.state, job.exit_code, job.message) == (State.FAILED, 3, "the job failed (exit code 3)")


def test_pending_reason_then_cancel(slurm_cluster: Cluster, slurm_commands: SlurmCommands) -> None:
    queue = SlurmQueue(slurm_commands)
    job_id = queue.submit(script(slurm_cluster, "later", "true", "--begin=now+3600"))
    wait(queue, job_id, State.SUBMITTED)
    time.sleep(1.5)  # the scheduler sets the reason on its first pass
    pending = queue.job(job_id)
    assert pending is not None and pending.pending_reason == "BeginTime: its start time has not come yet"
    queue.cancel(job_id)
    job = wait(queue, job_id)
    assert (job.state, job.message) == (State.STOPPED, "cancelled in Slurm (scancel)")


def test_signal_reaches_the_step_then_the_job_ends(slurm_cluster: Cluster, slurm_commands: SlurmCommands) -> None:
    queue = SlurmQueue(slurm_commands)
    out = slurm_cluster.folder / "sig.out"
    body = ("srun --ntasks=1 bash -c \"trap 'echo got TERM; exit 5' TERM; echo ready; "
            "while true; do sleep 0.1; done\"")
    job_id = queue.submit(script(slurm_cluster, "sig", body))
    deadline = time.monotonic() + 60
    while "ready" not in (out.read_text() if out.exists() else ""):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    queue.signal(job_id, "TERM")
    job = wait(queue, job_id)
    assert "got TERM" in out.read_text()
    assert (job.state, job.exit_code) == (State.FAILED, 5)


def test_refused_job_is_a_clear_error(slurm_cluster: Cluster, slurm_commands: SlurmCommands) -> None:
    queue = SlurmQueue(slurm_commands)
    with pytest.raises(SlurmError, match=r"sbatch refused the job: .*Requested node configuration is not available"):
        queue.submit(script(slurm_cluster, "toobig", "true", "--gres=gpu:5"))


def test_unknown_job_is_none(slurm_commands: SlurmCommands) -> None:
    assert SlurmQueue(slurm_commands).job("999999") is None


def test_hosts_lists_partitions_nodes_and_gpus(slurm_commands: SlurmCommands) -> None:
    debug, multi = sorted(partitions(slurm_commands), key=lambda p: p.name)
    assert (debug.name, debug.default, [n.name for n in debug.nodes]) == ("debug", True, ["dtrun-node1"])
    # the second node (another slurmd on this machine) is only in `multi`, for multi-node jobs
    assert (multi.name, multi.default, [n.name for n in multi.nodes]) == ("multi", False,
                                                                           ["dtrun-node1", "dtrun-node2"])
    node = debug.nodes[0]
    assert (node.cpus, node.memory_mb, node.available) == (8, 8192, True)
    assert debug.gpus["fake"][1] == 2


def test_a_job_survives_a_slurmctld_restart(slurm_cluster: Cluster, slurm_commands: SlurmCommands) -> None:
    import subprocess

    from tests.integration.slurm.conftest import SCRIPT

    queue = SlurmQueue(slurm_commands)
    job_id = queue.submit(script(slurm_cluster, "restart", "sleep 4; echo survived"))
    wait(queue, job_id, State.RUNNING)
    subprocess.run([str(SCRIPT), "restart-ctld"], env=slurm_cluster.env, check=True, timeout=60)
    done = wait(queue, job_id)  # squeue retries until the new slurmctld answers
    assert (done.state, done.exit_code) == (State.DONE, 0)
    assert (slurm_cluster.folder / "restart.out").read_text() == "survived\n"
