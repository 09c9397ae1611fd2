"""The Docker daemon restarted under a running job, on a docker-in-docker daemon this test owns (never
the shared one): the client does not hang, the job ends FAILED saying the daemon restarted, the outputs
the job had written are saved, and `dtrun resume` continues from them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_IMAGE, BUSYBOX_IMAGE, SESSION, DtrunRunner
from tests.dind_daemon import CAPS, dind_image, wait_for
from tests.faults.reliability import Row
from tests.integration.test_store_s3 import free_port

pytestmark = pytest.mark.xdist_group("restartable-daemon")

CKPT = f"""
workflows:
  - name: long
    provider: docker
    image: {BUSYBOX_IMAGE}
    commands:
      - mkdir -p ckpt
      - 'n=$(cat ckpt/step 2>/dev/null || echo 0); echo "start at $n"'
      - 'while [ $n -lt 40 ]; do n=$((n+1)); echo $n > ckpt/step; echo step $n; sleep 0.25; done'
    artifacts: [ckpt]
"""


@pytest.fixture(scope="module")
def restartable(docker_client: Any) -> Iterator[tuple[str, Any]]:
    """A docker-in-docker daemon on a fixed loopback port, so that it keeps its address across restarts."""
    import docker

    port = free_port()
    # dockerd refuses to start while its pid file names a live process, and after a restart the file
    # left by the previous dockerd names PID 1 again (this very process): remove the stale files first,
    # as an init system would, or the restarted daemon never comes back.
    stale = "rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid"
    container = docker_client.containers.run(
        dind_image(docker_client, BASE_IMAGE), detach=True, name=f"dtrun-test-dind-restart-{SESSION}",
        entrypoint=["/bin/sh", "-c", f"{stale}; exec /usr/local/bin/dind-entrypoint"],
        labels={"dtrun-test-session": SESSION}, cap_add=CAPS, cgroupns="private",
        security_opt=["seccomp=unconfined", "apparmor=unconfined"], ports={"2375/tcp": ("127.0.0.1", port)})
    try:
        url = f"tcp://127.0.0.1:{port}"
        inner = wait_for(lambda: docker.DockerClient(base_url=url, timeout=120))
        inner.images.load(b"".join(docker_client.images.get(BUSYBOX_IMAGE).save(named=True)))
        yield url, container
    finally:
        container.remove(force=True, v=True)


@pytest.mark.timeout(400)
@pytest.mark.fault("the Docker daemon restarted during a run (docker-in-docker, owned by the test)",
                   "the client ends within 60 s; the job is FAILED with `the Docker daemon restarted`; "
                   "its checkpoint is saved; `dtrun resume` continues from it")
def test_daemon_restart_fails_the_job_clearly_and_resume_continues(
        restartable: tuple[str, Any], make_project: Any, dtrun: DtrunRunner, fault_row: Row) -> None:
    import docker

    url, dind = restartable
    project: Path = make_project({".dtrun/workflows.yaml": CKPT})
    env = {**dtrun.env, "DOCKER_HOST": url}
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "long", "--no-cache"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = ""
    while "step 4" not in seen:
        line = proc.stdout.readline()
        assert line, f"the run ended early: {seen}{proc.stderr.read() if proc.stderr else ''}"
        seen += line
    dind.restart(timeout=1)
    started = time.monotonic()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the client hung after the daemon restarted") from None
    fault_row.runs = 1
    assert time.monotonic() - started < 60
    assert proc.returncode != 0
    assert "Traceback" not in err, err[-3000:]
    assert "the Docker daemon restarted" in err, err[-3000:]

    wait_for(lambda: docker.DockerClient(base_url=url, timeout=30))
    runs = json.loads(subprocess.run([sys.executable, "-m", "dtrun", "status", "--json", "--last", "1"],
                                     cwd=project, env=env, capture_output=True, text=True, check=True).stdout)
    job = runs[0]["jobs"][0]
    assert job["state"] == "FAILED" and "the Docker daemon restarted" in job["message"], job
    assert [a["path"] for a in job["artifacts"]] == ["ckpt"], job
    fault_row.artifacts_saved = 1

    resumed = dtrun("resume", runs[0]["name"], cwd=project, env={"DOCKER_HOST": url})
    fault_row.runs = 2
    assert resumed.code == 0, resumed.output[-3000:]
    first = int(resumed.stdout.split("start at ", 1)[1].split()[0])
    assert first >= 4, resumed.stdout
    assert "step 40" in resumed.stdout
