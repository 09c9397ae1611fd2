"""The cluster `scripts/start-slurm` brings up is a working Slurm: jobs run, fake GPUs are allocated."""

from __future__ import annotations

import time

import pytest

from tests.integration.slurm.conftest import Cluster

pytestmark = pytest.mark.xdist_group("slurm")  # one cluster per test session


def _wait_done(cluster: Cluster, job_ids: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [cluster.run("scontrol", "show", "job", "-o", j).stdout for j in job_ids]
        if all("JobState=COMPLETED" in s for s in states):
            return
        assert not any("JobState=FAILED" in s or "JobState=CANCELLED" in s for s in states), states
        time.sleep(0.3)
    raise AssertionError(f"jobs {job_ids} did not complete: {states}")


def test_exports_point_at_the_private_cluster(slurm_cluster: Cluster) -> None:
    env = slurm_cluster.env
    assert env["SLURM_CONF"] == str(slurm_cluster.folder / "etc" / "slurm.conf")
    assert env["DTRUN_BACKEND"] == "slurm" and env["DTRUN_SLURM_LOGIN"] == "local"
    assert env["DTRUN_STORE"] == str(slurm_cluster.folder / "store")
    info = slurm_cluster.run("sinfo", "-h", "-o", "%P %G %T").stdout.split()
    assert info[:2] == ["debug*", "gpu:fake:2"]


def test_sbatch_parsable_runs_a_job_to_completion(slurm_cluster: Cluster) -> None:
    out = slurm_cluster.folder / "trivial.out"
    job = slurm_cluster.run("sbatch", "--parsable", "-o", str(out), "--wrap", "echo hello from $SLURM_JOB_ID")
    job_id = job.stdout.strip()
    assert job_id.isdigit(), job.stdout
    _wait_done(slurm_cluster, [job_id])
    assert out.read_text().strip() == f"hello from {job_id}"


def test_two_concurrent_gpu_jobs_get_different_gpus(slurm_cluster: Cluster) -> None:
    outs = [slurm_cluster.folder / f"gpu{i}.out" for i in range(2)]
    # Each job waits until both run, so they are certainly concurrent when they report.
    marker = slurm_cluster.folder / "gpu-marks"
    marker.mkdir(exist_ok=True)
    script = (f"touch {marker}/$SLURM_JOB_ID; for i in $(seq 100); do [ $(ls {marker} | wc -l) -ge 2 ] && break; "
              "sleep 0.2; done; echo $(ls " + str(marker) + " | wc -l) $CUDA_VISIBLE_DEVICES")
    ids = [slurm_cluster.run("sbatch", "--parsable", "--gres=gpu:1", "-o", str(o), "--wrap", script).stdout.strip()
           for o in outs]
    _wait_done(slurm_cluster, ids)
    seen = [o.read_text().split() for o in outs]
    assert [s[0] for s in seen] == ["2", "2"], seen  # both were running at the same time
    assert sorted(s[1] for s in seen) == ["0", "1"], seen
