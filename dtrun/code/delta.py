"""What changed between the manifest a code volume holds and the one a run needs.

Pure: two manifests in, a `Delta` out. Renames are recognised by content (a deleted path whose bytes
and mode reappear under an added path), so moving a 1 GB file sends nothing. Only `needed` objects
travel; everything else is a hard link to content the volume already has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dtrun.code.manifest import Entry, Manifest


@dataclass(frozen=True)
class Delta:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path)
    #: object name -> one entry whose file holds those bytes: what must be sent
    needed: dict[str, Entry] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.deleted or self.renamed)

    @property
    def bytes_to_send(self) -> int:
        return sum(e.size for e in self.needed.values())


def held_objects(manifest: Manifest | None) -> set[str]:
    if manifest is None:
        return set()
    return {e.object_name for e in manifest.entries.values() if e.link is None}


def compute_delta(old: Manifest | None, new: Manifest, held: Iterable[str] | None = None) -> Delta:
    """`old`: what the volume's latest tree holds (None: an empty volume). `held`: every object the
    volume has, when known beyond `old` (earlier trees); by default the objects of `old`."""
    before = old.entries if old is not None else {}
    have = set(held) if held is not None else held_objects(old)
    added = sorted(p for p in new.entries if p not in before)
    deleted = sorted(p for p in before if p not in new.entries)
    changed = sorted(p for p, e in new.entries.items() if p in before and before[p] != e)
    gone_by_content: dict[tuple[str, int, str | None], list[str]] = {}
    for path in deleted:
        e = before[path]
        gone_by_content.setdefault((e.digest, e.mode, e.link), []).append(path)
    renamed: list[tuple[str, str]] = []
    for path in added:
        e = new.entries[path]
        candidates = gone_by_content.get((e.digest, e.mode, e.link))
        if candidates:
            renamed.append((candidates.pop(0), path))
    moved_from = {old_path for old_path, _ in renamed}
    moved_to = {new_path for _, new_path in renamed}
    needed: dict[str, Entry] = {}
    for path in (*added, *changed):
        e = new.entries[path]
        if e.link is None and e.object_name not in have:
            needed.setdefault(e.object_name, e)
    return Delta(added=[p for p in added if p not in moved_to], changed=changed,
                 deleted=[p for p in deleted if p not in moved_from], renamed=renamed, needed=needed)
