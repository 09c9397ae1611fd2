"""The client's record of the code trees it has found complete in each code volume: what lets a run skip
reading the tree's marker from the volume, a `get_archive` on the anchor that costs about 0.1 s of every
run (the daemon mounts the anchor's filesystem to answer it, however small the file).

`cache/code-trees.json` in the data folder maps an anchor container's id to its trees, `[tree id, layers]`
pairs, newest last. Why an entry never names layers that are gone:

- The key is the anchor, not the volume's name. A volume that a container uses cannot be removed, so the
  code volume goes only after its anchor (`remove_code`, `dtrun volumes prune`), and the anchor made for
  the next volume of that name has a new id.
- A complete tree never changes: a later tree gets a new layer (a delta stacked on it, or a whole layer
  when the stack is deep); the layers of an earlier tree are never edited.
- The one thing that removes trees from a living volume, `prune_code`, removes the anchor when it is
  done, so every client's entries for that volume lapse with the old id.

An entry missing or lost costs the marker read, never a wrong answer.

`cache/code-bases/<anchor id>.json`, in the same form, is the last tree this client wrote as a full layer.
When a stack is as deep as it may get, the next tree is one thin layer on that full layer (what changed
since it), not a new full layer: re-linking every file of a 10,000-file tree took the daemon a second.
Its layer is in the stack of every tree stacked on it; it goes only with the anchor (above).

`cache/code-heads/<anchor id>.json` is the last tree this client put behind an anchor, as HEAD.json holds
one (manifest, layers, whether the daemon makes whiteouts). The next put computes its delta from it and
stacks on its layers, without reading the volume's HEAD.json or the new tree's marker (two `get_archive`s,
about 0.2 s). Any complete tree is a sound base for a delta, not only the volume's latest: its layers
stay as long as the anchor does (above). A tree another client already put is then sent again as a
delta of its own (its own layer; nobody's views are touched), which costs what changed, not a round trip.

`cache/code-landed.json` counts the trees this client landed behind each anchor: what says when a
volume is due for a prune (`dtrun.code.retention`). The prune removes the anchor, so the count starts
again with the next one; `carry` moves the pruning client's own record of the tree it kept to the new
anchor (the tree and the layers it stacks on were kept), so its next put needs no read either.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dtrun.cachefile import cache_path, read_json, write_json, write_text
from dtrun.code.volume import Head

FILE = "code-trees.json"
LANDED = "code-landed.json"
#: Trees remembered per anchor: the recent ones are those a run asks for again.
KEEP = 32
HEADS = "code-heads"
BASES = "code-bases"
#: Last puts kept (one per anchor: per repository and daemon), the least recently written dropped.
KEEP_HEADS = 64

_lock = threading.Lock()


def _trees(data: dict[str, Any], anchor_id: str) -> list[list[str]]:
    entry = data.get(anchor_id)
    if not isinstance(entry, list):
        return []
    return [pair for pair in entry
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) and part for part in pair)]


def recorded(anchor_id: str, tree_id: str) -> str | None:
    """The layers (`join_layers`) of `tree_id` if this client saw it complete behind this anchor."""
    for tree, layers in _trees(read_json(cache_path(FILE)), anchor_id):
        if tree == tree_id:
            return layers
    return None


def remember(anchor_id: str, tree_id: str, layers: str) -> None:
    """`tree_id` is complete behind this anchor, as `layers`."""
    with _lock:
        path = cache_path(FILE)
        data = read_json(path)
        trees = _trees(data, anchor_id)
        if trees and trees[-1] == [tree_id, layers]:
            return
        trees = [pair for pair in trees if pair[0] != tree_id] + [[tree_id, layers]]
        data[anchor_id] = trees[-KEEP:]
        write_json(path, data)


def last_put(anchor_id: str) -> Head | None:
    """The last tree this client put behind this anchor (None: none, or its file is unreadable). Its
    manifest stays JSON text until asked for: the next delta compares texts (`delta_from_json`)."""
    return _read_head(HEADS, anchor_id)


def remember_put(anchor_id: str, head: Head, *, full: bool = False) -> None:
    """`head` is the last tree this client put behind this anchor; `full`: as one full layer, which makes
    it the base of the trees stacked on it too (`last_base`)."""
    text = head.to_json()
    for name in (HEADS, BASES) if full else (HEADS,):
        folder = cache_path(name)
        write_text(folder / f"{anchor_id}.json", text)
        kept = sorted(folder.glob("*.json"), key=_written, reverse=True)
        for stale in kept[KEEP_HEADS:]:
            stale.unlink(missing_ok=True)


def last_base(anchor_id: str) -> Head | None:
    """The last tree this client put behind this anchor as one full layer: once a stack is as deep as it
    may get, the next tree goes on that layer as one thin layer of what changed since (`put_code`)."""
    return _read_head(BASES, anchor_id)


def _read_head(folder: str, anchor_id: str) -> Head | None:
    """The tree kept for this anchor in `folder` (HEADS or BASES); None: none, or its file is unreadable."""
    try:
        return Head.from_json((cache_path(folder) / f"{anchor_id}.json").read_text(), check=False)
    except OSError:
        return None


def _written(path: Path) -> float:
    try:
        return float(path.stat().st_mtime)
    except OSError:
        return 0.0


def count_landed(anchor_id: str) -> int:
    """One more tree landed by this client behind this anchor: how many now."""
    with _lock:
        path = cache_path(LANDED)
        data = read_json(path)
        count = landed(anchor_id, data) + 1
        data.pop(anchor_id, None)
        data[anchor_id] = count  # newest last: the oldest anchors are dropped first
        write_json(path, dict(list(data.items())[-KEEP_HEADS:]))
        return count


def landed(anchor_id: str, data: dict[str, Any] | None = None) -> int:
    """How many trees this client has landed behind this anchor."""
    value = (read_json(cache_path(LANDED)) if data is None else data).get(anchor_id)
    return value if isinstance(value, int) and value > 0 else 0


def carry(old_anchor: str, new_anchor: str, keep: list[str]) -> bool:
    """After a prune that kept `keep` (`join_layers` strings among them): this client's last put behind
    `old_anchor`, if it is one of those trees, holds behind `new_anchor` (its record, its last put, and
    its base if that is the full layer it stacks on). False when there was nothing to carry. No manifest
    is parsed: the tree is found by its layers in this client's records."""
    from dtrun.code.volume import join_layers

    head = last_put(old_anchor)
    if head is None or join_layers(head.layers) not in keep:
        return False
    layers = join_layers(head.layers)
    found = [tree for tree, named in _trees(read_json(cache_path(FILE)), old_anchor) if named == layers]
    if not found:
        return False
    stack = head.layers
    remember(new_anchor, found[-1], layers)
    base = last_base(old_anchor)
    remember_put(new_anchor, head)
    if base is not None and base.layers == stack[-1:]:
        write_text(cache_path(BASES) / f"{new_anchor}.json", base.to_json())
    return True
