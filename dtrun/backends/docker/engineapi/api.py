"""The Engine API's endpoints that dtrun calls, one method each, answering the daemon's JSON as dicts.

Named and shaped as docker-py's `APIClient` methods were (`inspect_container`, `logs`, `remove_volume`...),
so the backend's call sites read the same. Paths carry the API version agreed once at connection
(`/_ping`'s `API-Version`), so an older or newer daemon answers in the shapes of its own version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from dtrun.backends.docker.engineapi import frames
from dtrun.backends.docker.engineapi.errors import APIError, from_status
from dtrun.backends.docker.engineapi.transport import Body, Pool, Response, query, send

#: how long a call waits for the daemon's answer (a log stream, a wait: no limit)
TIMEOUT = 120.0


def encode_filters(filters: dict[str, Any] | None) -> str | None:
    """The `filters` parameter: each value a list of strings (booleans as true/false)."""
    if not filters:
        return None
    out: dict[str, list[str]] = {}
    for key, value in filters.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        out[key] = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]
    return json.dumps(out)


def quoted(name: str) -> str:
    """An object's name or id in a path (image references keep their `/` and `:`)."""
    return quote(name, safe="/:@")


class Api:
    """Low-level calls: `client.api.<method>`."""

    def __init__(self, pool: Pool, version: str) -> None:
        self.pool = pool
        self.api_version = version

    # -- plumbing -----------------------------------------------------------------------------------
    def call(self, method: str, path: str, params: dict[str, Any] | None = None, *, body: Body = None,
             json_body: Any = None, headers: dict[str, str] | None = None, timeout: float | None = TIMEOUT,
             image: bool = False, download: bool = False) -> Response:
        """Send a request; its response when the status is a success, else the daemon's error raised
        (`download`: a long body, see `transport.send`)."""
        extra = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            extra["Content-Type"] = "application/json"
        response = send(self.pool, method, f"/v{self.api_version}{path}{query(params)}", body=body, headers=extra,
                        timeout=timeout, download=download)
        if response.status >= 400:
            raise error_of(response, image=image)
        return response

    def get(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.call("GET", path, params, **kwargs).json()

    def post(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.call("POST", path, params, **kwargs).json()

    def delete(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.call("DELETE", path, params, **kwargs).read()

    # -- containers ---------------------------------------------------------------------------------
    def inspect_container(self, container: str) -> dict[str, Any]:
        return dict(self.get(f"/containers/{quoted(container)}/json"))

    def containers(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self.get("/containers/json", {"all": all or None, "filters": encode_filters(filters)}) or [])

    def remove_container(self, container: str, force: bool = False, v: bool = False) -> None:
        self.delete(f"/containers/{quoted(container)}", {"force": force, "v": v})

    def logs(self, container: str, *, stream: bool = False, follow: bool = False, stdout: bool = True,
             stderr: bool = True, timestamps: bool = False, since: float | int | None = None,
             tail: int | str = "all") -> Iterator[bytes] | bytes:
        """The container's output: an iterator of its writes with `stream`, else all of it as bytes."""
        params: dict[str, Any] = {"follow": follow and stream, "stdout": stdout, "stderr": stderr,
                                  "timestamps": timestamps, "tail": tail}
        if since is not None:
            params["since"] = f"{since:.9f}" if isinstance(since, float) else since
        response = self.call("GET", f"/containers/{quoted(container)}/logs", params,
                             timeout=None if stream and follow else TIMEOUT)
        content = response.headers.get("content-type", "")
        multiplexed = True if content == frames.MULTIPLEXED else None
        if content != frames.MULTIPLEXED and _at_least(self.api_version, "1.42"):
            multiplexed = False  # such a daemon says a multiplexed stream by its type
        pieces = frames.output(response.iter_raw(1 << 16), multiplexed=multiplexed)
        return pieces if stream else b"".join(pieces)

    # -- images -------------------------------------------------------------------------------------
    def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(self.get(f"/images/{quoted(image)}/json", image=True))

    def images(self, name: str | None = None, all: bool = False,
               filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        found = dict(filters or {})
        if name:
            found["reference"] = name
        return list(self.get("/images/json", {"all": all or None, "filters": encode_filters(found)}) or [])

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> None:
        self.delete(f"/images/{quoted(image)}", {"force": force, "noprune": noprune}, image=True)

    def import_image_from_data(self, data: bytes, repository: str | None = None, tag: str | None = None,
                               changes: list[str] | None = None) -> None:
        """A one-layer image from a tar (`docker import`)."""
        response = self.call("POST", "/images/create", {"fromSrc": "-", "repo": repository, "tag": tag,
                                                         "changes": changes},
                             body=data, headers={"Content-Type": "application/tar"})
        raise_stream_error(progress(response))

    # -- volumes ------------------------------------------------------------------------------------
    def inspect_volume(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/volumes/{quoted(name)}"))

    def volumes(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self.get("/volumes", {"filters": encode_filters(filters)}) or {})

    def remove_volume(self, name: str, force: bool = False) -> None:
        self.delete(f"/volumes/{quoted(name)}", {"force": force})

    # -- the daemon ---------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return dict(self.get("/info"))

    def version(self) -> dict[str, Any]:
        return dict(self.get("/version"))

    def ping(self) -> bool:
        return send_ping(self.pool) is not None

    def build(self, path: str, tag: str | None = None, labels: dict[str, str] | None = None,
              buildargs: dict[str, str] | None = None, decode: bool = True, rm: bool = True,
              forcerm: bool = False) -> Iterator[dict[str, Any]]:
        """The legacy builder's progress messages for a build of the folder `path` (sent as a tar, less what
        its `.dockerignore` names, as the docker CLI sends it)."""
        from dtrun.backends.docker.engineapi.dockerignore import build_context
        from dtrun.backends.docker.engineapi.registry import registry_config

        if not decode:
            raise ValueError("build() answers decoded progress messages only (decode=True)")
        params = {"t": tag, "labels": json.dumps(labels) if labels else None,
                  "buildargs": json.dumps(buildargs) if buildargs else None, "rm": rm, "forcerm": forcerm}
        headers = {"Content-Type": "application/x-tar", "X-Registry-Config": registry_config()}
        with build_context(path) as context:
            response = self.call("POST", "/build", params, body=context, headers=headers, timeout=None)
        yield from progress(response)


def progress(response: Response) -> Iterator[dict[str, Any]]:
    """A JSON-lines progress stream (pulls, pushes, builds, imports), one message at a time."""
    pending = b""
    for piece in response.iter_raw(1 << 16):
        pending += piece
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if pending.strip():
        yield json.loads(pending)


def raise_stream_error(messages: Iterator[dict[str, Any]]) -> None:
    """Read a progress stream to its end; an `error` message in it raised as an APIError."""
    for message in messages:
        if "error" in message:
            detail = (message.get("errorDetail") or {}).get("message") or message["error"]
            raise APIError(str(detail), 500, str(detail))


def error_of(response: Response, *, image: bool = False) -> APIError:
    """The daemon's refusal: its `message` (or the body's text) with the status."""
    try:
        data = response.read()
    except OSError:
        data = b""
    text = data.decode(errors="replace").strip()
    try:
        message = str(json.loads(text).get("message") or text)
    except (ValueError, AttributeError):
        message = text
    return from_status(response.status, message or response.reason or f"HTTP {response.status}", image=image)


def send_ping(pool: Pool) -> str | None:
    """GET /_ping: the daemon's newest API version (None if it does not say); errors raised."""
    response = send(pool, "GET", "/_ping", timeout=TIMEOUT)
    if response.status >= 400:
        raise error_of(response)
    response.read()
    return response.headers.get("api-version")


def _at_least(version: str, floor: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".") if p.isdigit())

    return parts(version) >= parts(floor)
