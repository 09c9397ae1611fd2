"""A container's creation request, from docker-py's keyword names (the ones dtrun passes).

`Mount` and `DeviceRequest` are the API's own JSON objects (dicts), built from docker-py's argument names.
An unknown keyword is a TypeError, not silently dropped.
"""

from __future__ import annotations

import re
import shlex
from typing import Any


class Mount(dict):  # type: ignore[type-arg]
    """A mount (`HostConfig.Mounts` item): a named volume, never a host path. A path of this client means
    nothing to a remote daemon (design principle 1), so a bind mount cannot be asked for here at all."""

    def __init__(self, target: str, source: str, type: str = "volume", read_only: bool = False,
                 labels: dict[str, str] | None = None) -> None:
        if type != "volume":
            raise ValueError(f"only named volumes are mounted, not {type!r} mounts")
        super().__init__(Target=target, Source=source, Type=type, ReadOnly=read_only)
        if labels:
            self["VolumeOptions"] = {"Labels": labels}


class DeviceRequest(dict):  # type: ignore[type-arg]
    """A request for devices (`HostConfig.DeviceRequests` item): GPUs by count (-1: all) or by id."""

    def __init__(self, driver: str = "", count: int = 0, device_ids: list[str] | None = None,
                 capabilities: list[list[str]] | None = None, options: dict[str, str] | None = None) -> None:
        super().__init__(Driver=driver, Count=count, DeviceIDs=device_ids or [], Capabilities=capabilities or [],
                         Options=options or {})


_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_bytes(value: int | str) -> int:
    """`512m`, `2g`, `1024` -> bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmg])?b?\s*", value.lower())
    if not match:
        raise ValueError(f"not a size: {value!r} (expected a number of bytes, or one with k, m or g)")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "b"])


def _argv(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else list(value)


def _port_bindings(ports: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """docker-py's `ports`: {"8000/tcp": None (any port), 8080, ("IP",), ("IP", port)} -> exposed, bindings."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for key, bind in ports.items():
        name = str(key) if "/" in str(key) else f"{key}/tcp"
        exposed[name] = {}
        binds = bind if isinstance(bind, list) else [bind]
        out = []
        for one in binds:
            if one is None:
                out.append({"HostIp": "", "HostPort": ""})
            elif isinstance(one, tuple):
                out.append({"HostIp": str(one[0]), "HostPort": str(one[1]) if len(one) > 1 else ""})
            else:
                out.append({"HostIp": "", "HostPort": str(one)})
        bindings[name] = out
    return exposed, bindings


def container_config(image: str, command: str | list[str] | None = None, *, entrypoint: str | list[str] | None = None,
                     environment: dict[str, str] | list[str] | None = None, working_dir: str | None = None,
                     labels: dict[str, str] | None = None, mounts: list[dict[str, Any]] | None = None,
                     init: bool | None = None, device_requests: list[dict[str, Any]] | None = None,
                     ports: dict[str, Any] | None = None, mem_limit: int | str | None = None,
                     shm_size: int | str | None = None, nano_cpus: int | None = None,
                     network_disabled: bool = False, user: str | None = None,
                     detach: bool = True) -> dict[str, Any]:
    """The body of POST /containers/create. `detach` is docker-py's: creating never attaches."""
    host: dict[str, Any] = {}
    body: dict[str, Any] = {"Image": image, "Tty": False, "OpenStdin": False, "AttachStdin": False,
                            "AttachStdout": False, "AttachStderr": False}
    if command is not None:
        body["Cmd"] = _argv(command)
    if entrypoint is not None:
        body["Entrypoint"] = _argv(entrypoint)
    if environment:
        body["Env"] = ([f"{k}={v}" for k, v in environment.items()] if isinstance(environment, dict)
                       else list(environment))
    if working_dir:
        body["WorkingDir"] = working_dir
    if labels:
        body["Labels"] = dict(labels)
    if user:
        body["User"] = user
    if network_disabled:
        body["NetworkDisabled"] = True
    if ports:
        body["ExposedPorts"], host["PortBindings"] = _port_bindings(ports)
    if mounts:
        host["Mounts"] = [dict(m) for m in mounts]
    if init is not None:
        host["Init"] = init
    if device_requests:
        host["DeviceRequests"] = [dict(d) for d in device_requests]
    if mem_limit is not None:
        host["Memory"] = parse_bytes(mem_limit)
    if shm_size is not None:
        host["ShmSize"] = parse_bytes(shm_size)
    if nano_cpus:
        host["NanoCpus"] = int(nano_cpus)
    body["HostConfig"] = host
    return body


def created_attrs(container_id: str, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """A just-created container's attributes, from what was asked (no inspect: one call less per job).

    Enough for what the backend reads of a fresh container (name, labels, exposed ports, volume mounts,
    status); `reload()` gives the daemon's full view."""
    mounts = [{"Type": m.get("Type"), "Name": m.get("Source"), "Source": "", "Destination": m.get("Target"),
               "RW": not m.get("ReadOnly")} for m in body.get("HostConfig", {}).get("Mounts") or []]
    config = {k: body[k] for k in ("Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "Labels", "ExposedPorts",
                                   "Tty", "User") if k in body}
    config.setdefault("Labels", {})
    return {"Id": container_id, "Name": f"/{name}" if name else "", "Config": config,
            "State": {"Status": "created", "Running": False}, "Mounts": mounts,
            "HostConfig": body.get("HostConfig", {})}
