"""The local contexts that DataTorch's agent offered to templates, as they make sense on a Docker host.

DataTorch's agent rendered `${{ directory.* }}`, `${{ machine.* }}`, `${{ python.* }}`, `${{ step.* }}` and
`${{ action.* }}` from the machine it ran on; the pipeline and run names came from the server. A dtrun
step runs in a container on a Docker host, so the values describe that: `directory.temp` is the
container's temporary folder, `action.directory` where the action's files are in the container,
`machine.name` the Docker host. What only the DataTorch server knows (`pipeline.projectId`, `event`)
is not here: `Scope.lookup` resolves it to "" with a warning (see `expressions.SERVER_ONLY`).
"""

from __future__ import annotations

import platform
from typing import Any

#: Where an action's files are inside its step container (the same path as `flows.process.ACTION_DIR`).
ACTION_DIR = "/dtrun/action"
CONTAINER_TEMP = "/tmp"
WORKSPACE = "/workspace"


def local_context(*, flow: str, run: str, step_id: str, step_name: str | None = None,
                  action: dict[str, Any] | None = None, machine: str | None = None,
                  python_version: str | None = None) -> dict[str, dict[str, Any]]:
    """The contexts of one step. `machine` is the Docker host's name (the daemon's `info()["Name"]`);
    `python_version` the Python that runs the step if known, else the one running dtrun."""
    return {
        "directory": {"temp": CONTAINER_TEMP, "workspace": WORKSPACE, "action": ACTION_DIR},
        "machine": {"name": machine or platform.node(), "os": "Linux"},
        "python": {"version": python_version or platform.python_version(),
                   "implementation": platform.python_implementation()},
        "step": {"id": step_id, "name": step_name or step_id},
        "action": dict(action or {}),
        "pipeline": {"name": flow},
        "flow": {"name": flow},
        "run": {"name": run},
    }


def machine_name(docker_host: str | None) -> str:
    """The Docker host's name: the host of an `ssh://` or `tcp://` endpoint, else this machine's."""
    from urllib.parse import urlparse

    if docker_host and "://" in docker_host and not docker_host.startswith(("unix://", "npipe://")):
        return urlparse(docker_host).hostname or platform.node()
    return platform.node()


def action_context(name: str, *, tag: str | None, description: str | None) -> dict[str, Any]:
    """`${{ action.* }}` as DataTorch's agent set it: name, directory, version (= tag), description."""
    return {"name": name, "directory": ACTION_DIR, "version": tag or "local", "tag": tag or "local",
            "description": description or ""}
