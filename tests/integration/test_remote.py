"""One end-to-end chain against a second Docker daemon that shares no filesystem with the client.

The daemon is docker-in-docker (tests/dind_daemon.py, shared with benchmarks/remote.py), built locally
from the base image (tests/integration/dind: Debian's docker.io and openssh-server). It is reached once
over tcp:// (its published 2375) and once over ssh:// (its published sshd, root with a key made here; the
system ssh client, configured through a wrapper on PATH so the user's own ~/.ssh is never touched), and
over ssh:// without the socket forward (`DTRUN_SSH_TUNNEL=0`, or an sshd that refuses it): one
`ssh HOST docker system dial-stdio` per connection (dtrun/backends/docker/dialstdio.py).
The chain: an image built on that daemon, the code snapshot shipped in, a runtime dependency's artifact
materialised there, artifacts and logs back in the client's store, and a Ctrl+C that stops the job
gracefully with its outputs saved.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dtrun.engine.artifacts import tar_name
from tests.conftest import BASE_IMAGE, SESSION, DtrunRunner
from tests.dind_daemon import RemoteDaemon, remote_daemon

# One docker-in-docker daemon per session: keep these tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("remote-daemon")

WORKFLOWS = """
workflows:
  - name: prepare
    provider: bash
    python_install: system
    commands:
      - mkdir -p data
      - python3 make_data.py > data/numbers.txt
      - echo "prepared on $(hostname)"
    artifacts: [data]
  - name: train
    provider: bash
    python_install: system
    depends-on: [prepare]
    commands:
      - mkdir -p model
      - python3 -c "print(sum(int(x) for x in open('data/numbers.txt')))" > model/sum.txt
      - echo "trained, sum=$(cat model/sum.txt)"
    artifacts: [model]
  - name: long
    provider: bash
    python_install: system
    commands:
      - mkdir -p ckpt
      - echo step-1 > ckpt/state.txt
      - echo "checkpoint written"
      - sleep 60
    artifacts: [ckpt]
"""
CODE = {".dtrun/workflows.yaml": WORKFLOWS, "make_data.py": "for i in range(1, 11):\n    print(i)\n"}


@pytest.fixture(scope="module")
def remote(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteDaemon]:
    with remote_daemon(docker_client, BASE_IMAGE, name=f"dtrun-test-dind-{SESSION}",
                       labels={"dtrun-test-session": SESSION}, workdir=tmp_path_factory.mktemp("remote")) as daemon:
        yield daemon


def _stored_files(store: Path, workflow: str) -> dict[str, bytes]:
    """The files of `workflow`'s saved artifacts, read from the client's store."""
    files: dict[str, bytes] = {}
    for job_file in store.glob("repos/**/jobs/*/job.json"):
        record = json.loads(job_file.read_text())
        if record["workflow"] != workflow:
            continue
        for art in record["artifacts"]:
            with tarfile.open(job_file.parent / "artifacts" / tar_name(art["key"], art["digest"])) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        data = tar.extractfile(member)
                        files[f"{art['path']}/{member.name}"] = data.read() if data else b""
    return files


@pytest.mark.timeout(300)
@pytest.mark.parametrize("via", ["tcp", "ssh", "ssh-dial-stdio"])
def test_chain_on_a_daemon_that_shares_no_filesystem(via: str, remote: RemoteDaemon,
                                                      make_project: Callable[..., Path], dtrun: DtrunRunner,
                                                      docker_client: Any) -> None:
    project = make_project(CODE)
    host = remote.tcp if via == "tcp" else remote.ssh
    env = {"DOCKER_HOST": host, **(remote.ssh_env if via != "tcp" else {})}
    if via == "ssh-dial-stdio":
        env["DTRUN_SSH_TUNNEL"] = "0"  # no socket forward: every connection is its own ssh

    result = dtrun("run", "train", cwd=project, env=env)
    assert result.code == 0, result.output
    # logs streamed from the remote containers
    assert "prepared on " in result.stdout and "trained, sum=55" in result.stdout
    # artifacts came back into the client's store (the remote daemon cannot see it)
    assert _stored_files(dtrun.store, "prepare")["data/numbers.txt"].split() == [str(i).encode()
                                                                                  for i in range(1, 11)]
    assert _stored_files(dtrun.store, "train") == {"model/sum.txt": b"55\n"}
    logs = list(dtrun.store.glob("repos/**/jobs/*/logs.txt"))
    assert any(b"trained, sum=55" in p.read_bytes() for p in logs)
    runs = [json.loads(p.read_text()) for p in dtrun.store.glob("repos/**/runs/*.json")]
    assert [r["host"] for r in runs] == [host]
    # the image was built on the remote daemon, not here
    label = f"dev.dtrun.store={dtrun.store_label}"
    assert any(t.startswith("dtrun/bash:") for i in remote.client.images.list() for t in i.tags)
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert remote.client.containers.list(all=True, filters={"label": label}) == []
    # prepare's artifact reached train through a volume on the remote daemon, filled through the API
    [digest] = [a["digest"] for p in dtrun.store.glob("repos/**/jobs/*/job.json")
                for a in json.loads(p.read_text())["artifacts"] if a["path"] == "data"]
    assert remote.client.volumes.list(filters={"name": f"dtrun-art-{digest[:32]}"})
    assert not docker_client.volumes.list(filters={"name": f"dtrun-art-{digest[:32]}"})

    # stop: Ctrl+C while the job runs stops it gracefully and its outputs are still saved. As a terminal
    # sends it: to the whole process group, so dtrun's ssh children get it too, and must outlive it.
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "long"], cwd=project, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**dtrun.env, **env},
                            start_new_session=True)
    assert proc.stdout is not None
    seen = ""
    while "checkpoint written" not in seen:
        line = proc.stdout.readline()
        assert line, f"the job ended early: {seen}{proc.stderr.read() if proc.stderr else ''}"
        seen += line
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, err
    assert "STOPPED" in err and "saved artifact ckpt" in err, err
    assert _stored_files(dtrun.store, "long") == {"ckpt/state.txt": b"step-1\n"}
    assert remote.client.containers.list(all=True, filters={"label": label}) == []


def test_ports_are_reported_at_the_remote_hosts_address(remote: RemoteDaemon, make_project: Callable[..., Path],
                                                        dtrun: DtrunRunner) -> None:
    """The address printed for a published port is the remote host's (here the tcp:// host, 127.0.0.1,
    written as `localhost` to tell it apart from the local-socket default)."""
    remote.client.images.load(b"".join(_busybox_image()))
    project = make_project({".dtrun/workflows.yaml": """
workflows:
  - name: web
    provider: docker
    image: dtrun-local/busybox:latest
    ports: 1
    commands: ['echo "port=$PORT_0"', 'sleep 1']
"""})
    host = remote.tcp.replace("127.0.0.1", "localhost")
    result = dtrun("run", "web", "--host", host, cwd=project)
    assert result.code == 0, result.output
    assert "port=8000" in result.stdout
    assert "PORT_0 (8000 in the job) -> http://localhost:" in result.stderr, result.stderr


def _busybox_image() -> Iterator[bytes]:
    import docker

    from tests.conftest import BUSYBOX_IMAGE

    yield from docker.from_env().images.get(BUSYBOX_IMAGE).save(named=True)



def test_hosts_describes_each_daemon(remote: RemoteDaemon, dtrun: DtrunRunner, tmp_path: Path) -> None:
    result = dtrun("hosts", remote.tcp, cwd=tmp_path)
    assert result.code == 0, result.output
    info = remote.client.info()
    assert result.stdout.splitlines()[0] == f"{remote.tcp}  (--host)"
    assert f"  cpus      {info['NCPU']}" in result.stdout
    assert "  nvidia    no (runtimes: " in result.stdout and "  gpus      none" in result.stdout
    # the endpoint dtrun would use: here DOCKER_HOST, over ssh
    result = dtrun("hosts", "--json", cwd=tmp_path, env={"DOCKER_HOST": remote.ssh, **remote.ssh_env})
    assert result.code == 0, result.output
    [described] = json.loads(result.stdout)
    assert (described["source"], described["endpoint"], described["daemon_id"], described["gpus"]) == \
        ("DOCKER_HOST", remote.ssh, info["ID"], [])
    result = dtrun("hosts", "tcp://127.0.0.1:1", cwd=tmp_path)
    assert result.code == 1
    assert "unreachable no Docker daemon answers at tcp://127.0.0.1:1 (from --host): connection refused" \
        in result.stderr, result.stderr
    # `ssh HOST docker system dial-stdio` per connection, where the socket is not forwarded: the same daemon
    result = dtrun("hosts", "--json", remote.ssh, cwd=tmp_path, env={"DTRUN_SSH_TUNNEL": "0", **remote.ssh_env})
    assert result.code == 0, result.output
    assert json.loads(result.stdout)[0]["daemon_id"] == info["ID"]


FORWARDLESS = f"""
workflows:
  - name: hello
    provider: docker
    image: {BASE_IMAGE}
    commands:
      - mkdir -p out
      - echo "written on $(hostname)" > out/where.txt
      - echo "hello through dial-stdio"
    artifacts: [out]
"""


@pytest.mark.parametrize("tunnel", ["1", "0"])
def test_an_ssh_host_that_refuses_says_why(tunnel: str, remote: RemoteDaemon, dtrun: DtrunRunner,
                                           make_project: Callable[..., Path]) -> None:
    """ssh's own words (dial-stdio's, after the tunnel failed or was not tried), the hint, exit 1, no traceback."""
    env = {"DTRUN_SSH_TUNNEL": tunnel, **remote.ssh_env}
    project = make_project({".dtrun/workflows.yaml": FORWARDLESS})
    refused_key = remote.ssh.replace("root@", "nobody@")
    no_server = "ssh://root@127.0.0.1:1"
    for host, why in [(refused_key, "Permission denied (publickey)"), (no_server, "Connection refused")]:
        result = dtrun("run", "hello", "--host", host, cwd=project, env=env)
        assert result.code == 2, result.output
        assert f"no Docker daemon answers at {host} (from --host): " in result.stderr, result.stderr
        assert why in result.stderr and "docker info` works" in result.stderr, result.stderr
        assert "Traceback" not in result.output


def test_a_host_without_the_docker_cli_says_so(remote: RemoteDaemon, make_project: Callable[..., Path],
                                               dtrun: DtrunRunner) -> None:
    """`docker system dial-stdio` needs the docker CLI on the host: where ssh finds none, the shell's words."""
    host = remote.second_sshd("SetEnv=PATH=/nowhere", "AllowStreamLocalForwarding=no")
    project = make_project({".dtrun/workflows.yaml": FORWARDLESS})
    result = dtrun("run", "hello", "--host", host, cwd=project, env=remote.ssh_env)
    assert result.code == 2, result.output
    assert f"no Docker daemon answers at {host} (from --host): " in result.stderr, result.stderr
    assert "docker: command not found" in result.stderr and "docker info` works" in result.stderr, result.stderr
    assert "Traceback" not in result.output


@pytest.mark.timeout(300)
def test_a_host_that_refuses_socket_forwarding_is_reached_through_dial_stdio(
        remote: RemoteDaemon, make_project: Callable[..., Path], dtrun: DtrunRunner) -> None:
    """sshd with `AllowStreamLocalForwarding no`: the tunnel cannot reach the socket, so dtrun falls back on
    its own to `ssh HOST docker system dial-stdio`, and the run works as over the tunnel."""
    host = remote.second_sshd("AllowStreamLocalForwarding=no")
    env = {"DOCKER_HOST": host, **remote.ssh_env}
    project = make_project({".dtrun/workflows.yaml": FORWARDLESS})
    doctor = dtrun("doctor", cwd=project, env=env)
    lines = {line.split()[1]: line for line in doctor.output.splitlines() if len(line.split()) > 1}
    assert lines["docker"].startswith("ok ") and f"at {host} (from DOCKER_HOST)" in lines["docker"], doctor.output
    assert lines["ssh"].startswith("warn ") and "cannot forward the Docker socket" in lines["ssh"], doctor.output

    result = dtrun("run", "hello", cwd=project, env=env)
    assert result.code == 0, result.output
    assert "hello through dial-stdio" in result.stdout
    assert _stored_files(dtrun.store, "hello")["out/where.txt"].startswith(b"written on ")
    runs = [json.loads(p.read_text()) for p in dtrun.store.glob("repos/**/runs/*.json")]
    assert [r["host"] for r in runs] == [host]
    label = f"dev.dtrun.store={dtrun.store_label}"
    assert remote.client.containers.list(all=True, filters={"label": label}) == []


def test_the_current_docker_context_is_used(remote: RemoteDaemon, dtrun: DtrunRunner, tmp_path: Path) -> None:
    """A context made and chosen with the docker CLI itself (`docker context create/use`) is read from
    the CLI's own store, without running the CLI."""
    import shutil

    cli = shutil.which("docker")
    if cli is None:
        pytest.skip("no docker CLI to create a context with")
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    env.pop("DOCKER_HOST", None)
    env.pop("DOCKER_CONTEXT", None)
    subprocess.run([cli, "context", "create", "inner", "--docker", f"host={remote.tcp}"], env=env, check=True,
                   capture_output=True)
    subprocess.run([cli, "context", "use", "inner"], env=env, check=True, capture_output=True)
    result = dtrun("hosts", "--json", cwd=tmp_path,
                   env={"DOCKER_CONFIG": env["DOCKER_CONFIG"], "DOCKER_HOST": "", "DOCKER_CONTEXT": ""})
    assert result.code == 0, result.output
    [described] = json.loads(result.stdout)
    assert (described["source"], described["endpoint"], described["daemon_id"]) == \
        ("Docker context 'inner'", remote.tcp, remote.client.info()["ID"])


WEB = f"""
workflows:
  - name: web
    provider: docker
    image: {BASE_IMAGE}
    ports: 1
    commands: ['echo serving', 'exec python3 -m http.server "$PORT_0" --bind 0.0.0.0']
"""
PORT_LINE = re.compile(r"PORT_0 \(8000 in the job\) -> http://(127\.0\.0\.1:\d+)")


def _read_until(proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float = 180) -> re.Match[str]:
    """Lines of `proc`'s merged output until one matches (a reader thread: readline alone cannot time out)."""
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            assert proc.poll() is None or not lines.empty(), "".join(seen)
            continue
        seen.append(line)
        found = pattern.search(line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern.pattern} within {timeout}s:\n{''.join(seen)}")


def _get(url: str, timeout: float = 30) -> int:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.mark.timeout(300)
def test_ssh_host_ports_are_forwarded_to_the_clients_loopback(remote: RemoteDaemon, make_project: Callable[..., Path],
                                                              dtrun: DtrunRunner) -> None:
    """On an ssh:// host a job's port listens on that host's 127.0.0.1 only; dtrun forwards it through ssh
    to 127.0.0.1 here while the run is attached, and `dtrun attach` forwards it again for a detached run."""
    project = make_project({".dtrun/workflows.yaml": WEB})
    env = {**dtrun.env, "DOCKER_HOST": remote.ssh, **remote.ssh_env}
    label = f"dev.dtrun.store={dtrun.store_label}"
    proc = subprocess.Popen([sys.executable, "-m", "dtrun", "run", "web"], cwd=project, text=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        address = _read_until(proc, PORT_LINE).group(1)
        assert _get(f"http://{address}/") == 200  # on this client's loopback, through ssh
        [container] = remote.client.containers.list(filters={"label": label})
        binds = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"]
        assert {b["HostIp"] for b in binds} == {"127.0.0.1"}  # the remote host's loopback only
        stopped = dtrun("stop", container.labels["dev.dtrun.run"], cwd=project, env=env)
        assert stopped.code == 0, stopped.output
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(OSError):  # the forward ended with the run
        _get(f"http://{address}/", timeout=0)

    started = dtrun("run", "web", "-d", cwd=project, env=env)
    assert started.code == 0, started.output
    name = started.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 120
    while not remote.client.containers.list(filters={"label": label}):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    attach = subprocess.Popen([sys.executable, "-m", "dtrun", "attach", name], cwd=project, text=True, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        address = _read_until(attach, PORT_LINE).group(1)
        assert _get(f"http://{address}/") == 200
        attach.send_signal(signal.SIGINT)  # detaches: the run goes on, this forward ends
        assert attach.wait(timeout=30) == 0
        with pytest.raises(OSError):
            _get(f"http://{address}/", timeout=0)
        assert remote.client.containers.list(filters={"label": label})
    finally:
        if attach.poll() is None:
            attach.kill()
        assert dtrun("stop", name, cwd=project, env=env).code == 0
