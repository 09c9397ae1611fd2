"""What a backend offers to ship code by content (issue 19), in dtrun's own types.

The engine calls `put_code` once per run (it can overlap the image lookup), then `code_view` per job
instead of copying the whole snapshot into each container; `remove_code_view` where it removes the
job's workspace today, and `release_code` when the run is over. `dtrun volumes prune` removes a
repository's code volume whole (`remove_code`); `prune_code` drops the trees nothing uses from a living
volume, started by a run whose put made the volume due (policy: `dtrun.code.retention`). A backend
without a daemon-side store of its own (Slurm, Kubernetes: the agent fetches code from the store) need
not offer it: the engine checks `isinstance(backend, CodeVolumes)` and otherwise ships the snapshot as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from dtrun.code.delta import Delta
from dtrun.code.manifest import Manifest
from dtrun.structs import struct


@struct(frozen=True)
class CodeRef:
    """A complete tree in a repository's code volume."""

    volume: str  # dtrun.code.volume.volume_name(repo_id, store)
    tree_id: str  # the manifest's digest
    #: the tree's layers in the volume (`layers/<name>`), top first, `:`-separated, as its marker names
    #: them (`dtrun.code.volume.join_layers`); opaque to the engine
    build: str
    sent: Delta | None  # what this run sent; None when the daemon already had the tree
    #: what keeps the tree from a prune until the run is over (`release_code`); None: nothing to release
    hold: str | None = None
    #: trees this client has landed in the volume since it was last pruned, this one included
    #: (`dtrun.code.retention.due`)
    landed: int = 0


@runtime_checkable
class CodeVolumes(Protocol):
    def put_code(self, volume: str, root: Path, manifest: Manifest, labels: dict[str, str],
                 hold_labels: dict[str, str] | None = None) -> CodeRef:
        """Make `manifest`'s tree complete in `volume` (created with its anchor if missing), sending only
        the objects the volume lacks; nothing at all when the tree is there. Through the API only. The
        tree is held (no prune removes it) until `release_code`; `hold_labels` (the run's) go on the hold
        alone, so that whoever settles a run whose client died can release it (`release_holds`)."""
        ...

    def code_view(self, code: CodeRef, name: str, labels: dict[str, str], image: str | None = None) -> str:
        """A job's private copy-on-write view of the tree: the name of a volume to mount at the
        workspace. Writes go to the job's own volumes; no other job and not the tree sees them.
        `image` (the job's, present on the host) runs what a view may need run (a probe, a copy)."""
        ...

    def remove_code_view(self, name: str) -> None:
        ...

    def prune_code(self, volume: str, keep: list[str], newest: int = 0, wait: bool = True) -> None:
        """Drop the trees of `volume` that are not in `keep` (tree ids or builds), not among the `newest`
        most recently landed, not the latest, not used by a job view that exists and not held by a run in
        flight, and the objects only they used. `wait=False`: the work is left to the daemon."""
        ...

    def release_code(self, code: CodeRef) -> None:
        """The run that put `code` is over: its tree may be pruned from now on."""
        ...

    def release_holds(self, labels: dict[str, str]) -> None:
        """Release the holds whose labels include `labels` (a dead run's, settled by reconcile)."""
        ...
