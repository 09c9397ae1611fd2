"""The local fast path for exporting outputs: a container's volume read directly on this machine.

Only an optimisation: the remote path (`get_archive`) never depends on it (design principle 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtrun.backends.docker.backend import DockerBackend


def local_path(self: DockerBackend, container: Any, path: str) -> Path | None:
    """Where `path` of the container lies on this machine, if it is in a volume this client can read.

    Only for a daemon on a local unix socket; only through a path without symlinks (a link the
    job planted must not lead the client to its own files); only when no other mount lies inside
    the path. Callers fall back to `get_archive`.
    """
    if not self.host.startswith("unix://") or os.environ.get("DTRUN_NO_LOCAL_VOLUMES"):
        return None
    try:
        mounts = self.client.api.inspect_container(container.id).get("Mounts") or []
    except Exception:  # any doubt means: use the API
        return None
    best: tuple[str, str] | None = None
    for mount in mounts:
        dest = str(mount.get("Destination", "")).rstrip("/")
        if mount.get("Type") == "volume" and mount.get("Source") and (path == dest or path.startswith(dest + "/")) \
                and (best is None or len(dest) > len(best[0])):
            best = (dest, str(mount["Source"]))
    if best is None:
        return None
    if any(str(m.get("Destination", "")).startswith(path.rstrip("/") + "/") for m in mounts):
        return None  # another mount inside `path`: only the daemon sees the merged tree
    dest, source = best
    if _is_view(self, source):
        return None  # a code view (overlay) is mounted only while a container uses it: only the daemon merges it
    root = Path(source)
    if not (os.access(root, os.R_OK | os.X_OK) and root.is_dir()):
        return None
    rel = os.path.relpath(path, dest) if path != dest else "."
    local = root / rel
    try:
        if os.path.lexists(local) and local.resolve() != root.resolve() / rel:
            return None
        if not os.path.lexists(local) and local.parent.resolve() != (root.resolve() / rel).parent:
            return None
    except OSError:
        return None
    return Path(os.path.normpath(local))


def _is_view(self: DockerBackend, source: str) -> bool:
    """Whether the volume at `source` (`.../volumes/<name>/_data`) is a job's code view."""
    name = Path(source).parent.name
    try:
        return (self.client.api.inspect_volume(name).get("Options") or {}).get("type") == "overlay"
    except Exception:  # any doubt means: use the API
        return True
