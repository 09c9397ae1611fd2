"""The client: `client.containers`, `.volumes`, `.images`, `.networks`, `.api`, `info()`, `version()`, `ping()`.

The subset of docker-py's `DockerClient` that dtrun calls, on this package's own transport. Connecting
is one `/_ping` (which also gives the API version to use); nothing else is asked until a call needs it.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dtrun.backends.docker.engineapi.api import Api, encode_filters, progress, quoted, raise_stream_error, send_ping
from dtrun.backends.docker.engineapi.create import container_config, created_attrs
from dtrun.backends.docker.engineapi.errors import ContainerError, ImageNotFound
from dtrun.backends.docker.engineapi.models import Container, Image, Network, Volume
from dtrun.backends.docker.engineapi.transport import Pool, dialer

if TYPE_CHECKING:
    from dtrun.backends.docker.engineapi.tls import TLSConfig

#: the API version asked of a daemon that does not say its own (API 1.24: Docker 1.12, 2016)
FALLBACK_VERSION = "1.24"


class Containers:
    def __init__(self, api: Api) -> None:
        self.api = api

    def create(self, image: str, command: str | list[str] | None = None, *, name: str | None = None,
               **kwargs: Any) -> Container:
        """Create (not start) a container; its `attrs` are what was asked, no inspect (`reload()` for more)."""
        body = container_config(image, command, **kwargs)
        created = self.api.post("/containers/create", {"name": name}, json_body=body, image=True)
        return Container(self.api, created_attrs(str(created["Id"]), name, body))

    def get(self, container_id: str) -> Container:
        return Container(self.api, self.api.inspect_container(container_id))

    def list(self, all: bool = False, filters: dict[str, Any] | None = None) -> builtins.list[Container]:
        """The matching containers, each inspected (as docker-py did: full `attrs`)."""
        from dtrun.backends.docker.engineapi.errors import NotFound

        found = []
        for summary in self.api.containers(all=all, filters=filters):
            try:
                found.append(self.get(str(summary["Id"])))
            except NotFound:  # removed between the list and the inspect
                continue
        return found

    def run(self, image: str, command: str | builtins.list[str] | None = None, *, remove: bool = False,
            stdout: bool = True, stderr: bool = False, **kwargs: Any) -> bytes:
        """Create, start and wait for a container; its output (`stdout`/`stderr`). A non-zero exit raises
        ContainerError with what it wrote on stderr."""
        container = self.create(image, command, **kwargs)
        try:
            container.start()
            code = int(container.wait().get("StatusCode", 1))
            out = container.logs(stdout=stdout, stderr=stderr) if stdout or stderr else b""
            if code != 0:
                raise ContainerError(image, command, code, container.logs(stdout=False, stderr=True))
            return out
        finally:
            if remove:
                container.remove(force=True)


class Volumes:
    def __init__(self, api: Api) -> None:
        self.api = api

    def create(self, name: str | None = None, driver: str | None = None, driver_opts: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> Volume:
        body: dict[str, Any] = {"Name": name or "", "Driver": driver or "local", "DriverOpts": driver_opts or {}}
        if labels:
            body["Labels"] = labels
        return Volume(self.api, dict(self.api.post("/volumes/create", json_body=body)))

    def get(self, name: str) -> Volume:
        return Volume(self.api, self.api.inspect_volume(name))

    def list(self, filters: dict[str, Any] | None = None) -> list[Volume]:
        return [Volume(self.api, v) for v in self.api.volumes(filters=filters).get("Volumes") or []]


class Images:
    def __init__(self, api: Api) -> None:
        self.api = api

    def get(self, ref: str) -> Image:
        return Image(self.api, self.api.inspect_image(ref))

    def list(self, name: str | None = None, all: bool = False, filters: dict[str, Any] | None = None) -> list[Image]:
        return [Image(self.api, i) for i in self.api.images(name=name, all=all, filters=filters)]

    def remove(self, image: str, force: bool = False, noprune: bool = False) -> None:
        self.api.remove_image(image, force=force, noprune=noprune)

    def pull(self, ref: str, tag: str | None = None, auth_config: dict[str, str] | None = None) -> Image:
        """Pull `ref` (its `latest` when it names no tag); the daemon's error message raised as APIError."""
        from dtrun.backends.docker.engineapi.registry import auth_header, split_reference

        repository, found = split_reference(ref)
        tag = tag or found or "latest"
        joined = f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"
        response = self.api.call("POST", "/images/create", {"fromImage": repository, "tag": tag},
                                 headers={"X-Registry-Auth": auth_header(joined, auth_config)}, timeout=None,
                                 image=True)
        raise_stream_error(progress(response))
        return self.get(joined)

    def push(self, repository: str, tag: str | None = None, auth_config: dict[str, str] | None = None,
             stream: bool = True, decode: bool = True) -> Iterator[dict[str, Any]]:
        """The push's progress messages (an `error` message when the registry refused)."""
        from dtrun.backends.docker.engineapi.registry import auth_header

        if not (stream and decode):
            raise ValueError("push() answers a stream of decoded progress messages only (stream=True, decode=True)")
        response = self.api.call("POST", f"/images/{quoted(repository)}/push", {"tag": tag},
                                 headers={"X-Registry-Auth": auth_header(repository, auth_config)}, timeout=None,
                                 image=True)
        return progress(response)

    def get_registry_data(self, ref: str, auth_config: dict[str, str] | None = None) -> dict[str, Any]:
        """The registry's description of `ref` (its digest and platforms): a manifest lookup, nothing pulled."""
        from dtrun.backends.docker.engineapi.registry import auth_header

        return dict(self.api.get(f"/distribution/{quoted(ref)}/json",
                                 headers={"X-Registry-Auth": auth_header(ref, auth_config)}))


class Networks:
    def __init__(self, api: Api) -> None:
        self.api = api

    def create(self, name: str, driver: str | None = None, labels: dict[str, str] | None = None,
               check_duplicate: bool | None = None) -> Network:
        body: dict[str, Any] = {"Name": name, "Driver": driver or "bridge", "Labels": labels or {}}
        if check_duplicate is not None:
            body["CheckDuplicate"] = check_duplicate
        created = self.api.post("/networks/create", json_body=body)
        return self.get(str(created["Id"]))

    def get(self, network_id: str) -> Network:
        return Network(self.api, dict(self.api.get(f"/networks/{quoted(network_id)}")))

    def list(self, filters: dict[str, Any] | None = None) -> list[Network]:
        return [Network(self.api, n) for n in self.api.get("/networks", {"filters": encode_filters(filters)}) or []]


class Client:
    """A connection to one daemon (a pool of sockets) and the API version agreed with it.

    `url`: unix:///path, tcp://host:port, http(s)://host:port (with `tls`, the
    endpoint's certificate files). Raises `DaemonUnreachable` (or the daemon's APIError) when /_ping fails."""

    def __init__(self, url: str, *, tls: TLSConfig | None = None, pool_size: int = 16,
                 version: str | None = None) -> None:
        self.base_url = url
        self.pool = Pool(dialer(url, tls.context() if tls else None), pool_size)
        if version is None:
            version = send_ping(self.pool) or FALLBACK_VERSION
        self.api = Api(self.pool, version)
        self.containers = Containers(self.api)
        self.volumes = Volumes(self.api)
        self.images = Images(self.api)
        self.networks = Networks(self.api)
        #: what lives as long as this client (an ssh tunnel or dial-stdio listener: connection.py)
        self._dtrun_tunnel: Any = None

    @property
    def api_version(self) -> str:
        return self.api.api_version

    def info(self) -> dict[str, Any]:
        return self.api.info()

    def version(self) -> dict[str, Any]:
        return self.api.version()

    def ping(self) -> bool:
        return self.api.ping()

    def close(self) -> None:
        self.pool.close()


__all__ = ["Client", "Container", "ImageNotFound"]
