"""Where a job's ports listen (the host's loopback unless --publish-all; all interfaces on a tcp:// host)
and which of them the client reaches without an ssh forward."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dtrun.backends.base import ContainerSpec
from dtrun.backends.docker import DockerBackend
from dtrun.backends.docker.endpoint import Endpoint
from dtrun.backends.docker.portforward import PortForward, free_port
from dtrun.errors import BackendError


class Handle:
    id = "c1"


def spec(publish_all: bool = False) -> ContainerSpec:
    return ContainerSpec(name="c", image="i", command=None, entrypoint=None, env={}, working_dir="/",
                         labels={}, ports=2, publish_all=publish_all)


def backend(url: str, ports: dict[str, Any] | None = None) -> DockerBackend:
    class Api:
        def inspect_container(self, _id: str) -> dict[str, Any]:
            return {"NetworkSettings": {"Ports": ports or {}}}

    class Client:
        api = Api()

    return DockerBackend(Client(), url, endpoint=Endpoint(url, "test"))


@pytest.mark.parametrize(("url", "publish_all", "bind"), [
    ("unix:///var/run/docker.sock", False, ("127.0.0.1",)),
    ("unix:///var/run/docker.sock", True, None),
    ("ssh://me@gpu-box", False, ("127.0.0.1",)),
    ("ssh://me@gpu-box", True, None),
    ("tcp://gpu-box:2376", False, None),  # its loopback is out of the client's reach: the token guards it
])
def test_ports_bind_the_hosts_loopback_unless_published_to_all(url: str, publish_all: bool,
                                                               bind: tuple[str] | None) -> None:
    assert backend(url)._bind(spec(publish_all)) == bind


def test_an_ssh_hosts_loopback_ports_are_reached_only_through_a_forward() -> None:
    bindings = {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49001"}],
                "8001/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49002"}, {"HostIp": "::", "HostPort": "49002"}]}
    ssh = backend("ssh://me@gpu-box", bindings).published_ports(Handle())
    assert [(p.name, p.url, p.reachable) for p in ssh] == [("PORT_0", "127.0.0.1:49001", False),
                                                          ("PORT_1", "gpu-box:49002", True)]
    local = backend("unix:///var/run/docker.sock", bindings).published_ports(Handle())
    assert [(p.url, p.reachable) for p in local] == [("127.0.0.1:49001", True), ("127.0.0.1:49002", True)]
    tcp = backend("tcp://gpu-box:2376", bindings)
    ports = tcp.published_ports(Handle())
    assert tcp.forward_ports(ports)[0] == ports  # nothing to forward


def test_a_forward_uses_the_same_port_number_when_it_is_free_here() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert free_port(taken) != taken
    assert free_port(taken) == taken


def test_a_failed_forward_says_what_ssh_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ssh"
    fake.write_text("#!/bin/sh\necho 'channel_setup_fwd_listener: administratively prohibited' >&2\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    forward = PortForward("ssh://me@gpu-box:2222", [(41001, 49001)])
    assert "127.0.0.1:41001:127.0.0.1:49001" in forward.argv and forward.argv[-2:] == ["--", "gpu-box"]
    with pytest.raises(BackendError, match="administratively prohibited") as caught:
        forward.start()
    assert caught.value.hint and "AllowTcpForwarding" in caught.value.hint
