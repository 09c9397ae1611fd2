"""What a backend offers to ship code by content (issue 19), in dtrun's own types.

The engine calls `put_code` once per run (it can overlap the image lookup), then `code_view` per job
instead of copying the whole snapshot into each container; `remove_code_view` where it removes the
job's workspace today. `dtrun volumes prune` removes a repository's code volume whole (`remove_code`);
`prune_code`, which drops the trees nothing uses from a living volume, has no caller yet. A backend
without a daemon-side store of its own (Slurm, Kubernetes: the agent fetches code from the store) need
not offer it: the engine checks `isinstance(backend, CodeVolumes)` and otherwise ships the snapshot as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from dtrun.code.delta import Delta
from dtrun.code.manifest import Manifest


@dataclass(frozen=True)
class CodeRef:
    """A complete tree in a repository's code volume."""

    volume: str  # dtrun.code.volume.volume_name(repo_id, store)
    tree_id: str  # the manifest's digest
    #: the tree's layers in the volume (`layers/<name>`), top first, `:`-separated, as its marker names
    #: them (`dtrun.code.volume.join_layers`); opaque to the engine
    build: str
    sent: Delta | None  # what this run sent; None when the daemon already had the tree


@runtime_checkable
class CodeVolumes(Protocol):
    def put_code(self, volume: str, root: Path, manifest: Manifest, labels: dict[str, str]) -> CodeRef:
        """Make `manifest`'s tree complete in `volume` (created with its anchor if missing), sending only
        the objects the volume lacks; nothing at all when the tree is there. Through the API only."""
        ...

    def code_view(self, code: CodeRef, name: str, labels: dict[str, str], image: str | None = None) -> str:
        """A job's private copy-on-write view of the tree: the name of a volume to mount at the
        workspace. Writes go to the job's own volumes; no other job and not the tree sees them.
        `image` (the job's, present on the host) runs what a view may need run (a probe, a copy)."""
        ...

    def remove_code_view(self, name: str) -> None:
        ...

    def prune_code(self, volume: str, keep: list[str]) -> None:
        """Drop the trees of `volume` not in `keep` (tree ids or builds: the latest trees and those the
        job views that still exist use) and the objects only they used."""
        ...
