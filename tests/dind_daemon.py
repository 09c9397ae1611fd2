"""A second Docker daemon that shares no filesystem with the client: docker-in-docker, reached over
tcp:// and ssh://. Shared by the remote integration tests and the remote benchmark.

The daemon runs in a container built locally from the base image (tests/integration/dind: Debian's
docker.io, openssh-server and iproute2), so no registry is needed. ssh:// goes through the system ssh
client with a key made here and a wrapper on PATH that points it at a config of our own: the user's
~/.ssh (config, known hosts, agent keys) is never read or written.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIND_DIR = Path(__file__).resolve().parent / "integration" / "dind"
# Everything --privileged would grant except what this machine's own bounding set lacks (runc refuses
# --privileged here: "unable to apply caps"). dockerd inside needs mounts, networking and cgroups;
# NET_ADMIN also lets the benchmark shape the container's link with tc.
CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "SYSLOG"]


@dataclass
class RemoteDaemon:
    """The running daemon: its endpoints, the environment the ssh:// one needs, and two clients."""

    tcp: str
    ssh: str
    #: PATH with the ssh wrapper first: give it to every process that speaks ssh:// (dtrun, docker -H)
    ssh_env: dict[str, str]
    #: docker-py client of the inner daemon, over tcp://
    client: Any
    #: the outer container (docker-py object on the client's own daemon)
    container: Any
    #: the host port published for the container's 2222, where nothing listens until `second_sshd`
    spare_port: str = ""

    def second_sshd(self, *options: str) -> str:
        """Start an sshd on the spare port with the sshd `options` (`AllowStreamLocalForwarding=no`), beside
        the one every test uses, in place of the one a previous call started; returns its ssh:// URL (same
        key, same wrapper)."""
        pid_file = "/run/sshd-2222.pid"
        self.container.exec_run(["sh", "-c", f"[ -f {pid_file} ] && kill $(cat {pid_file}) && rm {pid_file}"])
        args = ["/usr/sbin/sshd", "-p", "2222", "-o", "PasswordAuthentication=no",
                "-o", "PermitRootLogin=prohibit-password", "-o", f"PidFile={pid_file}"]
        code, output = self.container.exec_run([*args, *(a for o in options for a in ("-o", o))])
        if code != 0:
            raise RuntimeError(f"second sshd did not start: {output.decode(errors='replace')}")
        return f"ssh://root@127.0.0.1:{self.spare_port}"


def dind_image(docker_client: Any, base_image: str) -> str:
    """Built once per content (Dockerfile, entrypoint, base image id) and kept across sessions."""
    digest = hashlib.sha256()
    for name in ("Dockerfile", "entrypoint.sh"):
        digest.update((DIND_DIR / name).read_bytes())
    digest.update(docker_client.images.get(base_image).id.encode())
    tag = f"dtrun-test/dind:{digest.hexdigest()[:16]}"
    try:
        docker_client.images.get(tag)
    except Exception:
        docker_client.images.build(path=str(DIND_DIR), tag=tag, buildargs={"BASE": base_image}, rm=True,
                                   forcerm=True, labels={"dtrun-test": "dind"})
    return tag


def wait_for(client_factory: Callable[[], Any], timeout: float = 60) -> Any:
    """The first client that answers a ping (the daemon inside takes a few seconds to start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = client_factory()
            client.ping()
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def ssh_wrapper(workdir: Path, key: Path) -> dict[str, str]:
    """A `ssh` on PATH that uses only `key` and forgets host keys; returns the environment naming it."""
    config = workdir / "ssh_config"
    config.write_text(f"Host 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
                      "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {config} "$@"\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


@contextmanager
def remote_daemon(docker_client: Any, base_image: str, *, name: str, labels: dict[str, str],
                  workdir: Path) -> Iterator[RemoteDaemon]:
    """Start the daemon (container `name`, carrying `labels`), give it `base_image`, and remove it with
    its volumes on the way out, whatever happened. `workdir` (empty, the caller's) gets the key and the
    ssh wrapper."""
    import docker

    key = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    image = dind_image(docker_client, base_image)
    container = docker_client.containers.run(
        image, detach=True, name=name, labels=labels,
        cap_add=CAPS, cgroupns="private", security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        ports={"2375/tcp": ("127.0.0.1", None), "22/tcp": ("127.0.0.1", None), "2222/tcp": ("127.0.0.1", None)},
        environment={"AUTHORIZED_KEY": (workdir / "id_ed25519.pub").read_text().strip()})
    try:
        container.reload()
        ports = container.attrs["NetworkSettings"]["Ports"]
        tcp = f"tcp://127.0.0.1:{ports['2375/tcp'][0]['HostPort']}"
        ssh_port = ports["22/tcp"][0]["HostPort"]
        inner = wait_for(lambda: docker.DockerClient(base_url=tcp, timeout=120))
        # The inner daemon starts empty and reaches no registry: give it the base image, through the API,
        # streamed (held whole it would raise this process's peak memory, and with it every child's as
        # wait4 reports it: a child started by vfork inherits its parent's high-water mark at exec).
        inner.images.load(docker_client.images.get(base_image).save(named=True))
        yield RemoteDaemon(tcp=tcp, ssh=f"ssh://root@127.0.0.1:{ssh_port}", ssh_env=ssh_wrapper(workdir, key),
                           client=inner, container=container, spare_port=ports["2222/tcp"][0]["HostPort"])
    finally:
        container.remove(force=True, v=True)
