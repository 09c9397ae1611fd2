"""Containers, volumes, images and networks as objects, with the methods and attributes dtrun uses.

The shapes of docker-py's models (`container.attrs`, `.labels`, `.status`, `.put_archive(...)`...), so
that the backend reads the same; each method is one Engine API call through `Api`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from dtrun.backends.docker.engineapi.api import TIMEOUT, quoted

if TYPE_CHECKING:
    from dtrun.backends.docker.engineapi.api import Api


class Model:
    def __init__(self, api: Api, attrs: dict[str, Any]) -> None:
        self.api = api
        self.attrs = attrs

    @property
    def id(self) -> str:
        return str(self.attrs.get("Id") or self.attrs.get("ID") or self.attrs.get("Name") or "")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.__class__) and other.id == self.id

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self.id))

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}: {self.id[:12]}>"


class Container(Model):
    @property
    def name(self) -> str:
        if not self.attrs.get("Name"):
            self.reload()
        return str(self.attrs.get("Name") or "").lstrip("/")

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})

    @property
    def status(self) -> str:
        return str((self.attrs.get("State") or {}).get("Status") or "")

    def reload(self) -> None:
        self.attrs = self.api.inspect_container(self.id)

    def start(self) -> None:
        self.api.call("POST", f"/containers/{quoted(self.id)}/start").read()

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Until the container exits: `{"StatusCode": N, "Error": ...}`."""
        return dict(self.api.post(f"/containers/{quoted(self.id)}/wait", timeout=timeout))

    def logs(self, *, stdout: bool = True, stderr: bool = True, timestamps: bool = False) -> bytes:
        out = self.api.logs(self.id, stdout=stdout, stderr=stderr, timestamps=timestamps)
        assert isinstance(out, bytes)
        return out

    def put_archive(self, path: str, data: IO[bytes] | bytes | Any) -> bool:
        """Extract a tar (bytes, a file or an iterator of bytes, sent chunked) at `path` in the container."""
        self.api.call("PUT", f"/containers/{quoted(self.id)}/archive", {"path": path}, body=data,
                      headers={"Content-Type": "application/x-tar"}).read()
        return True

    def get_archive(self, path: str, chunk_size: int = 1 << 20) -> tuple[Iterator[bytes], dict[str, Any]]:
        """A tar of `path` as a stream of large pieces, and the path's stat (from the daemon's header)."""
        response = self.api.call("GET", f"/containers/{quoted(self.id)}/archive", {"path": path}, download=True)
        header = response.headers.get("x-docker-container-path-stat")
        stat = json.loads(base64.b64decode(header)) if header else {}
        return response.iter_raw(chunk_size, gather=True), stat

    def remove(self, force: bool = False, v: bool = False) -> None:
        self.api.remove_container(self.id, force=force, v=v)

    def kill(self, signal: str | int | None = None) -> None:
        self.api.call("POST", f"/containers/{quoted(self.id)}/kill", {"signal": signal}).read()

    def stop(self, timeout: int = 10) -> None:
        self.api.call("POST", f"/containers/{quoted(self.id)}/stop", {"t": timeout},
                      timeout=TIMEOUT + timeout).read()

    def rename(self, name: str) -> None:
        self.api.call("POST", f"/containers/{quoted(self.id)}/rename", {"name": name}).read()
        if self.attrs.get("Name") is not None:
            self.attrs["Name"] = f"/{name}"


class Volume(Model):
    @property
    def name(self) -> str:
        return str(self.attrs.get("Name") or "")

    @property
    def id(self) -> str:
        return self.name

    def reload(self) -> None:
        self.attrs = self.api.inspect_volume(self.name)

    def remove(self, force: bool = False) -> None:
        self.api.remove_volume(self.name, force=force)


class Image(Model):
    @property
    def tags(self) -> list[str]:
        return [t for t in self.attrs.get("RepoTags") or [] if t != "<none>:<none>"]

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})

    def reload(self) -> None:
        self.attrs = self.api.inspect_image(self.id)

    def tag(self, repository: str, tag: str | None = None, force: bool = False) -> bool:
        self.api.call("POST", f"/images/{quoted(self.id)}/tag", {"repo": repository, "tag": tag, "force": force},
                      image=True).read()
        return True


class Network(Model):
    @property
    def name(self) -> str:
        return str(self.attrs.get("Name") or "")

    def connect(self, container: Container | str, aliases: list[str] | None = None) -> None:
        ident = container.id if isinstance(container, Container) else container
        body: dict[str, Any] = {"Container": ident}
        if aliases:
            body["EndpointConfig"] = {"Aliases": aliases}
        self.api.call("POST", f"/networks/{quoted(self.id)}/connect", json_body=body).read()

    def disconnect(self, container: Container | str, force: bool = False) -> None:
        ident = container.id if isinstance(container, Container) else container
        self.api.call("POST", f"/networks/{quoted(self.id)}/disconnect",
                      json_body={"Container": ident, "Force": force}).read()

    def remove(self) -> None:
        self.api.delete(f"/networks/{quoted(self.id)}")
