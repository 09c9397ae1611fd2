"""Connecting to the Docker daemon that runs the jobs."""

from __future__ import annotations

import os
from typing import Any

from dtrun.errors import DockerUnavailable


def docker_host(explicit: str | None = None) -> str | None:
    """The endpoint to use: an explicit choice (flag or config), else DOCKER_HOST, else the default."""
    return explicit or os.environ.get("DOCKER_HOST") or None


def connect(host: str | None = None) -> Any:
    """A docker-py client for `host`; a clear error when nothing answers there."""
    import docker
    import docker.errors

    endpoint = docker_host(host)
    try:
        if endpoint:
            tls = None
            if endpoint.startswith("tcp://") and os.environ.get("DOCKER_TLS_VERIFY"):
                kwargs = docker.utils.kwargs_from_env()
                tls = kwargs.get("tls")
            client = docker.DockerClient(base_url=endpoint, tls=tls, timeout=120,
                                         use_ssh_client=endpoint.startswith("ssh://"))
        else:
            client = docker.from_env(timeout=120)
        client.ping()
        return client
    except (docker.errors.DockerException, OSError) as exc:
        where = endpoint or "the default socket (unix:///var/run/docker.sock)"
        raise DockerUnavailable(
            f"no Docker daemon answers at {where}: {exc}",
            hint="start Docker (`sudo systemctl start docker`, or `make docker` in dtrun's checkout), "
            "or point DOCKER_HOST at a host that runs one (e.g. ssh://me@gpu-box)",
        ) from None
