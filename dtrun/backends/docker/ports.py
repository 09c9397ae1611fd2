"""Published ports of Docker jobs: where each listens on the host, and how the client reaches it.

A mixin of `DockerBackend` (it reads `self.client` and `self.endpoint`), kept apart from the container
life cycle in `backend.py`: loopback-only publishing, remote addresses, ssh forwards (portforward.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dtrun.backends.base import FIRST_PORT, ContainerSpec, PublishedPort
from dtrun.backends.docker.nodes import NodeGroup

if TYPE_CHECKING:
    from dtrun.backends.docker.endpoint import Endpoint


class PortOps:
    client: Any
    endpoint: Endpoint | None

    def _bind(self, spec: ContainerSpec) -> tuple[str] | None:
        """Where a job's port listens on the host. The host's loopback, so that only its user reaches
        it: directly on a local daemon, through an ssh forward on an ssh:// host (`forward_ports`). All
        interfaces with `--publish-all`, and on a tcp:// host, whose loopback the client cannot reach
        (the app's token still guards it). The client reads ("IP",) as "this IP, any free port"."""
        scheme = self.endpoint.scheme if self.endpoint else "unix"
        return None if spec.publish_all or scheme not in ("unix", "npipe", "ssh") else ("127.0.0.1",)

    def published_ports(self, handle: Any) -> list[PublishedPort]:
        """Where the job's ports are published: the host's address (remote hosts) and the published port;
        a port on an ssh:// host's loopback is not `reachable` from here until `forward_ports`."""
        handle = handle.lead if isinstance(handle, NodeGroup) else handle
        config = (getattr(handle, "attrs", None) or {}).get("Config")
        if isinstance(config, dict) and not config.get("ExposedPorts"):
            return []  # created without ports (its create-time inspect says): no inspect after the start
        attrs = self.client.api.inspect_container(handle.id)
        bindings = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        address = self.endpoint.address if self.endpoint else "127.0.0.1"
        remote = self.endpoint is not None and not self.endpoint.is_local
        found = []
        for key, binds in bindings.items():
            port = int(key.split("/")[0])
            if not binds or port < FIRST_PORT:
                continue
            bind = next((b for b in binds if ":" not in b.get("HostIp", "")), binds[0])
            host_ip = bind.get("HostIp") or "0.0.0.0"
            where = address if host_ip in ("0.0.0.0", "::", "") else host_ip
            where = f"[{where}]" if ":" in where else where
            found.append(PublishedPort(f"PORT_{port - FIRST_PORT}", port, int(bind["HostPort"]),
                                       f"{where}:{bind['HostPort']}",
                                       reachable=not (remote and host_ip.startswith("127."))))
        return sorted(found, key=lambda p: p.container_port)

    def forward_ports(self, ports: list[PublishedPort]) -> tuple[list[PublishedPort], Callable[[], None]]:
        """Ports on an ssh:// host's loopback come to this client's loopback through ssh (portforward.py)."""
        hidden = [p for p in ports if not p.reachable]
        if not hidden or self.endpoint is None or self.endpoint.scheme != "ssh":
            return ports, lambda: None
        from dataclasses import replace

        from dtrun.backends.docker.portforward import PortForward, free_port

        local = {p.name: free_port(p.host_port) for p in hidden}
        forward = PortForward(self.endpoint.url, [(local[p.name], p.host_port) for p in hidden])
        forward.start()
        out = [replace(p, url=f"127.0.0.1:{local[p.name]}", reachable=True) if p.name in local else p
               for p in ports]
        return out, forward.close
