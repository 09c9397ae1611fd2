"""Flows run on the one engine: everything a workflow job has, a flow job has (issue 11).

Secrets masked in stored logs and summaries, GPU claims shared with workflows, `dtrun stop`, the
reconcile after a killed client, and `dtrun logs --since`, all on a real daemon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUSYBOX_IMAGE, SESSION, DtrunRunner, job_volumes

SECRET = f"s3cr3t-{SESSION}-value"
MULTILINE = f"-----BEGIN KEY-----\nline-{SESSION}-one\nline-{SESSION}-two\n-----END KEY-----"


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def runs(dtrun: DtrunRunner, cwd: Path) -> list[dict[str, Any]]:
    result = dtrun("status", "--json", "--last", "5", cwd=cwd)
    assert result.code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_secret_in_a_step_output_is_absent_from_the_store(dtrun: DtrunRunner,
                                                             make_project: Callable[..., Path]) -> None:
    root = make_project({"flow.yaml": f"""
        name: leak
        jobs:
          j:
            image: {BUSYBOX_IMAGE}
            steps:
              - id: say
                env:
                  KEY: ${{{{ secrets.KEY }}}}
                run: |
                  echo "token ${{{{ secrets.TOKEN }}}} end"
                  printf '%s\\n' "$KEY"
                  echo "::leak::${{{{ secrets.TOKEN }}}}"
        """})
    result = dtrun("flow", "run", str(root / "flow.yaml"), "--json", cwd=root,
                   env={"DTRUN_SECRET_TOKEN": SECRET, "DTRUN_SECRET_KEY": MULTILINE})
    assert result.code == 0, result.output
    assert "[j/say] token *** end" in result.stderr  # with --json, stdout is the JSON alone
    assert json.loads(result.stdout)["jobs"]["j"]["steps"][0]["outputs"] == {"leak": "***"}
    assert SECRET not in result.output and f"line-{SESSION}-one" not in result.output
    stored = [p for p in dtrun.store.rglob("*") if p.is_file()]
    assert any(p.name == "logs.txt" for p in stored)
    for path in stored:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert f"line-{SESSION}-one".encode() not in data and f"line-{SESSION}-two".encode() not in data, path
    logs = next(p for p in stored if p.name == "logs.txt").read_text()
    assert "token *** end" in logs


def test_dtrun_stop_stops_a_running_flow(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                         docker_client: Any) -> None:
    root = make_project({"flow.yaml": f"""
        name: long
        jobs:
          a:
            image: {BUSYBOX_IMAGE}
            steps:
              - run: echo waiting; sleep 60
              - run: echo SHOULD-NOT-RUN
        """})
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "flow", "run", str(root / "flow.yaml")], cwd=root,
                            env=dtrun.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "[a/1] waiting\n"
        name = runs(dtrun, root)[0]["name"]
        stopped = dtrun("stop", name, cwd=root)
        assert stopped.code == 0, stopped.output
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "SHOULD-NOT-RUN" not in out
    run = runs(dtrun, root)[0]
    assert run["state"] == "STOPPED" and run["jobs"][0]["state"] == "STOPPED", run
    selector = {"label": f"dev.dtrun.store={dtrun.store_label}"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert job_volumes(docker_client, dtrun.store_label) == []


def test_a_killed_flow_run_is_reconciled_by_the_next_command(dtrun: DtrunRunner, make_project: Callable[..., Path],
                                                            docker_client: Any) -> None:
    root = make_project({"flow.yaml": f"""
        name: orphan
        jobs:
          a:
            image: {BUSYBOX_IMAGE}
            steps:
              - run: echo started; sleep 3; echo first done
              - run: echo NEVER
        """})
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "flow", "run", str(root / "flow.yaml")], cwd=root,
                            env=dtrun.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "[a/1] started\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    selector = {"label": [f"dev.dtrun.store={dtrun.store_label}", "dev.dtrun.workflow=a"]}
    container = docker_client.containers.list(all=True, filters=selector)[0]
    container.wait(timeout=30)  # the step outlives its client

    run = runs(dtrun, root)[0]
    assert run["state"] == "FAILED", run
    job = run["jobs"][0]
    assert job["state"] == "FAILED" and "ended before its last 1 step ran" in job["message"], job
    assert dtrun("logs", run["name"], cwd=root).stdout == "started\nfirst done\n"
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert job_volumes(docker_client, dtrun.store_label) == []


def test_logs_since_shows_flow_step_lines(dtrun: DtrunRunner, make_project: Callable[..., Path]) -> None:
    root = make_project({"flow.yaml": f"""
        name: chatty
        jobs:
          a:
            image: {BUSYBOX_IMAGE}
            steps:
              - run: echo from step one
              - run: echo from step two
        """})
    result = dtrun("flow", "run", str(root / "flow.yaml"), cwd=root)
    assert result.code == 0, result.output
    name = runs(dtrun, root)[0]["name"]
    assert dtrun("logs", name, "--since", "1m", cwd=root).stdout == "from step one\nfrom step two\n"
    assert dtrun("logs", name, "--since", "2099-01-01T00:00:00Z", cwd=root).stdout == ""


def test_concurrent_gpu_flow_jobs_get_different_gpus(tmp_path: Path, dtrun: DtrunRunner) -> None:
    """No GPU here: the steps' containers are created holding specific GPUs (a given inventory), both at
    once (their start waits for the other), then fail to start; what Docker recorded is what counts."""
    from dtrun.api import Session
    from dtrun.backends.docker import DockerBackend
    from dtrun.backends.docker.connection import connect
    from dtrun.backends.docker.hostinfo import GpuInfo, HostInfo
    from dtrun.config import Settings

    inventory = [GpuInfo(i, f"GPU-{SESSION}-flow-{i}", "NVIDIA A100", 40 * 2**30, "535.104.05") for i in range(2)]
    host = HostInfo("unix:///var/run/docker.sock", "test", "id", "20.10", "Debian", 4, 2**34, ["nvidia", "runc"],
                    inventory)
    both = threading.Barrier(2)
    claimed: dict[str, list[str]] = {}

    class FakeGpuHost(DockerBackend):
        def start(self, handle: Any) -> None:
            requests = self.client.api.inspect_container(handle.id)["HostConfig"]["DeviceRequests"]
            claimed[handle.labels["dev.dtrun.workflow"]] = list(requests[0]["DeviceIDs"])
            both.wait(timeout=60)
            super().start(handle)

    backend = FakeGpuHost(connect(), host.endpoint)
    backend._host_info = host
    backend._info = {"Runtimes": {"nvidia": {}, "runc": {}}, "NCPU": 4}
    backend.driver_version = lambda: None  # type: ignore[method-assign]
    (tmp_path / "flow.yaml").write_text(f"""
name: gpus
jobs:
  one:
    image: {BUSYBOX_IMAGE}
    resources: {{gpu: 1}}
    steps:
      - run: nvidia-smi -L
  two:
    image: {BUSYBOX_IMAGE}
    resources: {{gpu: 1}}
    steps:
      - run: nvidia-smi -L
""")
    settings = Settings(store=str(dtrun.store), max_parallel="2")
    result, _ = Session(tmp_path, settings=settings, backend=backend).flow_run(tmp_path / "flow.yaml")
    assert set(claimed) == {"one", "two"}
    assert claimed["one"] != claimed["two"], claimed
    assert {*claimed["one"], *claimed["two"]} == {g.uuid for g in inventory}
    if result.succeeded:  # a GPU host with these very GPUs cannot exist: the start must have failed
        pytest.fail("the steps started on GPUs of a made-up inventory")
