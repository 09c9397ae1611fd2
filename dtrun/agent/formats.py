"""The store formats the agent writes, shared with the engine so the client reads them unchanged.

The one place the agent imports the archive module from (it is moving to `dtrun.store.archive`), and
the artifact naming of `dtrun.engine.artifacts` (which imports the Docker backend, so it cannot be
imported inside a job): `tests/unit/agent` checks the two stay equal.
"""

from __future__ import annotations

import hashlib
import re

from dtrun.store.archive import NotAFolder, UnsafeArchive, extract, folder_members, write_members

__all__ = [
    "LOG_FILE",
    "STATUS_FILE",
    "NotAFolder",
    "UnsafeArchive",
    "artifact_key",
    "extract",
    "folder_members",
    "per_node",
    "tar_name",
    "write_members",
]

#: Where the agent records its job's progress and exit: `jobs/<job>/agent.json` in the store.
STATUS_FILE = "agent.json"
LOG_FILE = "logs.txt"


def per_node(name: str, node: int) -> str:
    """`logs.txt` for node 0 (what the client follows), `logs-node1.txt` for node 1, ..."""
    if node == 0:
        return name
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}-node{node}{dot}{suffix}"


def artifact_key(path: str) -> str:
    """A stable object name for a declared artifact path (as `dtrun.engine.artifacts.artifact_key`)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", path.strip("/")) or "root"
    return f"{slug}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def tar_name(key: str, digest: str) -> str:
    return f"{key}-{digest[:16]}.tar"
