"""`backend: slurm` end to end through the CLI, on the private cluster `scripts/start-slurm` starts.

Every test runs `dtrun` as a user would after `eval "$(scripts/start-slurm)"` (the environment is the
script's own `export` lines), with a store folder both the client and the node reach. The engine,
the shared agent path (`dtrun/backends/agent/`) and `SlurmBackend` are all real; the jobs run in
Docker containers on the node (the `docker` runtime), each through the in-job agent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DtrunRunner
from tests.integration.slurm.conftest import SCRIPT, Cluster

pytestmark = pytest.mark.xdist_group("slurm")  # one cluster per test session

WORKFLOWS = """
workflows:
  - name: hello
    provider: bash
    commands:
      - echo "hello from slurm job $SLURM_JOB_ID"
      - mkdir -p out && echo 42 > out/answer.txt
    artifacts: [out]
  - name: secret
    provider: bash
    secrets: [API_TOKEN]
    commands:
      - echo "env=$API_TOKEN arg=${{ secrets.API_TOKEN }}"
  - name: fail3
    provider: bash
    commands: [echo failing, exit 3]
  - name: long
    provider: bash
    commands:
      - mkdir -p out
      - "trap 'echo got TERM; echo saved > out/at-stop.txt; exit 0' TERM"
      - for i in $(seq 1 90); do echo tick $i; sleep 1 & wait $!; done
    artifacts: [out]
  - name: twelve
    provider: bash
    commands:
      - for i in $(seq 1 12); do echo tick $i; sleep 1; done
      - mkdir -p out && echo finished > out/done.txt
    artifacts: [out]
  - name: gpu-a
    provider: bash
    commands: ["echo CUDA=$CUDA_VISIBLE_DEVICES", sleep 6]
    resources:
      gpu: 1
  - name: gpu-b
    provider: bash
    commands: ["echo CUDA=$CUDA_VISIBLE_DEVICES", sleep 6]
    resources:
      gpu: 1
  - name: gpus
    provider: bash
    depends-on: [gpu-a, gpu-b]
    commands: [echo both done]
  - name: two-gpus
    provider: bash
    commands: [sleep 60]
    resources:
      gpu: 2
  - name: two-gpus-short
    provider: bash
    commands: [sleep 15]
    resources:
      gpu: 2
  - name: resumable
    provider: bash
    commands:
      - mkdir -p out
      - "if [ -f out/state.txt ]; then echo resumed from $(cat out/state.txt); exit 0; fi"
      - "trap 'echo 7 > out/state.txt; exit 0' TERM"
      - for i in $(seq 1 90); do echo tick $i; sleep 1 & wait $!; done
    artifacts: [out]
"""


@pytest.fixture
def slurm_dtrun(dtrun: DtrunRunner, slurm_cluster: Cluster) -> Iterator[DtrunRunner]:
    """`dtrun` with the settings `scripts/start-slurm` prints, and this test's own store folder."""
    exported = {k: v for k, v in slurm_cluster.env.items() if k.startswith(("DTRUN_SLURM_", "SLURM_CONF"))}
    runner = DtrunRunner(env={**dtrun.env, **exported, "DTRUN_BACKEND": "slurm"}, store=dtrun.store)
    yield runner
    for job in _queue(slurm_cluster):  # nothing of this store left in the queue
        if f"store={runner.store_label}" in job[2]:
            slurm_cluster.run("scancel", job[0], check=False)


@pytest.fixture
def project(make_project: Any) -> Path:
    path: Path = make_project({".dtrun/workflows.yaml": WORKFLOWS})
    return path


def _queue(cluster: Cluster) -> list[list[str]]:
    out = cluster.run("squeue", "-h", "-t", "all", "-o", "%i|%T|%k", check=False).stdout
    return [line.split("|", 2) for line in out.splitlines() if line.strip()]


def _jobs(store: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in store.glob("repos/**/jobs/*/job.json")]


def _wait_for(predicate: Any, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _running(store: Path, workflow: str) -> dict[str, Any] | None:
    found = [j for j in _jobs(store) if j["workflow"] == workflow and j["state"] == "RUNNING"]
    return found[0] if found else None


def _background(runner: DtrunRunner, project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dtrun", *args], cwd=project, env=runner.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _tick_seen(store: Path, job: dict[str, Any]) -> bool:
    log = next(store.glob(f"repos/**/jobs/{job['id']}/logs.txt"), None)
    return log is not None and b"tick 2" in log.read_bytes()


def test_the_printed_settings_run_hello_and_exit_codes_reach_dtrun_run(slurm_dtrun: DtrunRunner,
                                                                       project: Path) -> None:
    first = slurm_dtrun("run", "hello", cwd=project)
    assert first.code == 0, first.output
    assert "submitted hello as Slurm job" in first.output
    assert "hello from slurm job " in first.output
    job = next(j for j in _jobs(slurm_dtrun.store) if j["workflow"] == "hello")
    assert job["state"] == "DONE" and [a["path"] for a in job["artifacts"]] == ["out"]
    again = slurm_dtrun("run", "hello", cwd=project)  # the job cache works as on Docker
    assert again.code == 0 and "CACHED hello" in again.output, again.output
    failed = slurm_dtrun("--backend", "slurm", "run", "fail3", cwd=project, env={"DTRUN_BACKEND": ""})
    assert failed.code == 3, failed.output
    assert "exited with code 3" in failed.output and "as Slurm job" in failed.output
    hosts = slurm_dtrun("hosts", cwd=project)
    assert hosts.code == 0 and "partition debug" in hosts.stdout and "2/2 free" in hosts.stdout, hosts.output


def test_two_concurrent_one_gpu_jobs_get_different_gpus_from_slurm(slurm_dtrun: DtrunRunner, project: Path) -> None:
    result = slurm_dtrun("run", "gpus", cwd=project)
    assert result.code == 0, result.output
    seen = sorted(line.split("=", 1)[1] for line in result.stdout.splitlines() if line.startswith("CUDA="))
    assert seen == ["0", "1"], result.output
    jobs = {j["workflow"]: j for j in _jobs(slurm_dtrun.store)}
    a, b = jobs["gpu-a"], jobs["gpu-b"]
    a_run = next(h["at"] for h in a["history"] if h["state"] == "RUNNING")
    b_run = next(h["at"] for h in b["history"] if h["state"] == "RUNNING")
    assert a_run < b["finished_at"] and b_run < a["finished_at"], "the two jobs overlapped"


def test_stop_saves_outputs_and_leaves_no_container(slurm_dtrun: DtrunRunner, project: Path) -> None:
    client = _background(slurm_dtrun, project, "run", "long")
    try:
        _wait_for(lambda: (j := _running(slurm_dtrun.store, "long")) is not None and _tick_seen(slurm_dtrun.store, j),
                  what="the job to print")
        job = _running(slurm_dtrun.store, "long")
        assert job is not None
        stop = slurm_dtrun("stop", job["run"], cwd=project)
        assert stop.code == 0, stop.output
        out, _ = client.communicate(timeout=120)
    finally:
        client.kill()
    assert "got TERM" in out and "STOPPED long" in out, out
    record = next(j for j in _jobs(slurm_dtrun.store) if j["id"] == job["id"])
    assert record["state"] == "STOPPED" and record["artifacts"], record
    tar = next(slurm_dtrun.store.glob(f"repos/**/jobs/{job['id']}/artifacts/*.tar"))
    import tarfile

    with tarfile.open(tar) as archive:
        assert any(name.endswith("at-stop.txt") for name in archive.getnames())
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=dev.dtrun.job={job['id']}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == [], "the job's container is gone"


def test_scancel_from_outside_is_reported_as_stopped(slurm_dtrun: DtrunRunner, project: Path,
                                                     slurm_cluster: Cluster) -> None:
    client = _background(slurm_dtrun, project, "run", "long")
    try:
        _wait_for(lambda: (j := _running(slurm_dtrun.store, "long")) is not None and _tick_seen(slurm_dtrun.store, j),
                  what="the job to print")
        job = _running(slurm_dtrun.store, "long")
        assert job is not None
        ids = [q[0] for q in _queue(slurm_cluster) if f"job={job['id']}" in q[2] and q[1] == "RUNNING"]
        assert len(ids) == 1
        slurm_cluster.run("scancel", ids[0])
        out, _ = client.communicate(timeout=120)
    finally:
        client.kill()
    assert "STOPPED long (cancelled in Slurm (scancel) outside dtrun)" in out, out
    assert client.returncode != 0


def test_a_slurmctld_restart_during_a_run_loses_nothing(slurm_dtrun: DtrunRunner, project: Path,
                                                        slurm_cluster: Cluster) -> None:
    client = _background(slurm_dtrun, project, "run", "twelve")
    try:
        _wait_for(lambda: _running(slurm_dtrun.store, "twelve") is not None, what="the job to run")
        restart = subprocess.run([str(SCRIPT), "restart-ctld"], env=slurm_cluster.env, capture_output=True,
                                 text=True, timeout=60)
        assert restart.returncode == 0, restart.stderr
        out, _ = client.communicate(timeout=180)
    finally:
        client.kill()
    assert client.returncode == 0, out
    assert "tick 12" in out and "DONE twelve" in out, out


def test_a_killed_client_is_reconciled_by_the_next_command(slurm_dtrun: DtrunRunner, project: Path,
                                                           slurm_cluster: Cluster) -> None:
    client = _background(slurm_dtrun, project, "run", "twelve")
    try:
        _wait_for(lambda: _running(slurm_dtrun.store, "twelve") is not None, what="the job to run")
        job = _running(slurm_dtrun.store, "twelve")
        assert job is not None
        os.kill(client.pid, signal.SIGKILL)
        client.wait(timeout=30)
    finally:
        client.kill()
    _wait_for(lambda: not any(f"job={job['id']}" in q[2] and q[1] in ("PENDING", "RUNNING")
                              for q in _queue(slurm_cluster)), timeout=120, what="the Slurm job to end")
    status = slurm_dtrun("status", cwd=project)
    assert status.code == 0, status.output
    record = next(j for j in _jobs(slurm_dtrun.store) if j["id"] == job["id"])
    assert record["state"] == "DONE", record
    assert [a["path"] for a in record["artifacts"]] == ["out"]
    log = slurm_dtrun("logs", job["run"], cwd=project)
    assert "tick 12" in log.stdout, log.output


def test_a_queued_job_shows_slurms_reason_and_abort_cancels_it(slurm_dtrun: DtrunRunner, project: Path,
                                                               slurm_cluster: Cluster) -> None:
    holder = _background(slurm_dtrun, project, "run", "two-gpus")
    waiter = None
    try:
        _wait_for(lambda: _running(slurm_dtrun.store, "two-gpus") is not None, what="both GPUs to be taken")
        waiter = _background(slurm_dtrun, project, "run", "gpu-a")
        _wait_for(lambda: "queued: Resources" in slurm_dtrun("status", cwd=project).stdout, timeout=120,
                  what="the one-GPU job to wait for resources")
        status = slurm_dtrun("status", cwd=project).stdout
        assert "SUBMITTED (queued: Resources: waiting for free resources" in status, status
        for workflow in ("gpu-a", "two-gpus"):
            run = next(j["run"] for j in _jobs(slurm_dtrun.store) if j["workflow"] == workflow)
            abort = slurm_dtrun("stop", "-a", run, cwd=project)
            assert abort.code == 0 and "ABORTED" in abort.output, abort.output
        for client in (waiter, holder):
            client.communicate(timeout=120)
            assert client.returncode != 0
    finally:
        for left in (holder, waiter):
            if left is not None:
                left.kill()
    assert not [q for q in _queue(slurm_cluster) if f"store={slurm_dtrun.store_label}" in q[2]
                and q[1] in ("PENDING", "RUNNING")]


def test_resume_continues_a_stopped_job_with_its_saved_outputs(slurm_dtrun: DtrunRunner, project: Path) -> None:
    client = _background(slurm_dtrun, project, "run", "resumable")
    try:
        _wait_for(lambda: (j := _running(slurm_dtrun.store, "resumable")) is not None
                  and _tick_seen(slurm_dtrun.store, j), what="the job to print")
        job = _running(slurm_dtrun.store, "resumable")
        assert job is not None
        assert slurm_dtrun("stop", job["run"], cwd=project).code == 0
        client.communicate(timeout=120)
    finally:
        client.kill()
    resumed = slurm_dtrun("resume", job["id"], cwd=project)
    assert resumed.code == 0, resumed.output
    assert "resumed from 7" in resumed.stdout and "DONE resumable" in resumed.output, resumed.output


def test_secrets_reach_the_job_masked_and_never_the_batch_script(slurm_dtrun: DtrunRunner, project: Path,
                                                                 slurm_cluster: Cluster) -> None:
    token = "tok-9f8e7d6c5b4a"
    assert slurm_dtrun("secrets", "add", "API_TOKEN", cwd=project, input=token + "\n").code == 0
    result = slurm_dtrun("run", "secret", cwd=project)
    assert result.code == 0, result.output
    assert "env=*** arg=***" in result.stdout and token not in result.output
    job_id = result.output.split("submitted secret as Slurm job ")[1].split()[0]
    script = slurm_cluster.run("scontrol", "write", "batch_script", job_id, "-").stdout
    # the command refers to the secret's variable (Job.with_secrets); its value is never in the script
    assert "DTRUN_SECRET_API_TOKEN" in script and token not in script


def test_a_client_killed_while_its_job_is_queued_leaves_the_job_to_run(slurm_dtrun: DtrunRunner, project: Path,
                                                                       slurm_cluster: Cluster) -> None:
    holder = _background(slurm_dtrun, project, "run", "two-gpus-short")
    waiter = None
    try:
        _wait_for(lambda: _running(slurm_dtrun.store, "two-gpus-short") is not None, what="both GPUs to be taken")
        waiter = _background(slurm_dtrun, project, "run", "gpu-a")
        _wait_for(lambda: any(j["workflow"] == "gpu-a" and j.get("message", "") and "queued" in j["message"]
                              for j in _jobs(slurm_dtrun.store)), what="the one-GPU job to be queued")
        os.kill(waiter.pid, signal.SIGKILL)
        waiter.wait(timeout=30)
        assert slurm_dtrun("status", cwd=project).code == 0  # reconciles: the queued job is left alone
        job = next(j for j in _jobs(slurm_dtrun.store) if j["workflow"] == "gpu-a")
        assert job["state"] == "SUBMITTED", job
        holder.communicate(timeout=120)
    finally:
        for left in (holder, waiter):
            if left is not None:
                left.kill()
    _wait_for(lambda: not any(f"job={job['id']}" in q[2] and q[1] in ("PENDING", "RUNNING")
                              for q in _queue(slurm_cluster)), timeout=120, what="the queued job to run and end")
    assert slurm_dtrun("status", cwd=project).code == 0
    record = next(j for j in _jobs(slurm_dtrun.store) if j["id"] == job["id"])
    assert record["state"] == "DONE", record
    assert "CUDA=" in slurm_dtrun("logs", job["run"], cwd=project).stdout
