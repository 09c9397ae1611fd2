"""The content-addressed code volume of a repository, on the daemon: its layout, the one tar that
lands a delta in it, and the job's private copy-on-write view of a tree. Pure (no Docker here); the
Docker backend drives it through the API only, so a remote daemon gets the same.

Layout of the volume (`dtrun-code-<key>`), all paths relative to its root:

    objects/<ab>/<object>   content + mode, immutable, `<sha256>-<mode>` (hard links)
    layers/<layer>/...      immutable overlay layers: a *full* one (a hard-link farm of a whole
                            manifest) or a *thin* one (only the files added or changed since the tree
                            below it, and whiteouts for the paths gone since); new bytes land in a
                            layer and `objects/` links to them once complete
    trees/<tree-id>.layers  the tree's marker, written last: its layers, top first, `:`-separated
                            (a full layer at the bottom); tree id = the manifest's digest
    HEAD.json               the latest tree: its manifest and its layers (what the next put stacks on)

Why layers: a tree that differs from the latest one by one file costs one file and a marker, not a
link per file of the repository (10,000 links took a second of the daemon's tar extraction). A thin
layer stacks on the latest tree's layers; once a chain would pass `max_layers` the new tree is one thin
layer of everything that changed since the full layer at the chain's bottom, stacked on that layer alone
(`stacking`), or a full layer again when that is most of the tree; a view never stacks more than
`MAX_LAYERS` lower folders, and re-linking every file is rare.

A whiteout is what overlayfs and Docker's own image layers use: a character device 0:0 at a path
hides that path (a whole folder, if it was one) in every layer below. The daemon's `put_archive`
extraction makes one from a tar member of that type; where it cannot (a daemon in a user namespace
skips devices), `HEAD.json` records so and trees with deletions are written full.

Each upload writes its own layer and only then the marker, so two clients landing the same tree at
once never touch a folder a job already uses (extracting over an existing file removes it first: a
shared folder would briefly miss files).

A job never sees a layer itself: it gets an overlay (lower: the tree's layers, upper and work: two
fresh volumes of its own), created as a `local` volume with `type=overlay` options through the API.
Writes copy up into the job's own upper volume; the layers, the objects and every other job are
untouched. Where overlay volumes cannot be mounted, `scripts.COPY_VIEW_SCRIPT` replays the layers
into the job's volume instead.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path

from dtrun.code.delta import Delta, compute_delta, delta_from_json
from dtrun.code.manifest import Manifest
from dtrun.code.tarstream import (
    bytes_member,
    dir_header,
    end_of_archive,
    file_member,
    link_header,
    parent_dirs,
    whiteout_header,
)
from dtrun.structs import struct

VOLUME_PREFIX = "dtrun-code-"
LABEL_CODE = "dev.dtrun.code"  # value: the repository id
#: Where helper and anchor containers mount the code volume, and where a copied view goes.
CODE_MOUNT = "/code"
VIEW_MOUNT = "/view"
HEAD = "HEAD.json"
LAYERS = "layers"
#: Where a put asks once per volume whether the daemon makes whiteouts (a character device 0:0).
WHITEOUT_PROBE = "whiteout-probe"
LAYER_NAME_LENGTH = 16
#: The deepest stack of layers a tree gets before the next put writes a full one. Docker images run at
#: this depth all the time; a path a job looks up and does not find costs one lookup per layer (Python's
#: import probing does that a lot); a full tree every 16 puts adds ~1/16 of a full put to each.
MAX_LAYERS = 16
#: overlay's options travel in one page of mount data (4096 bytes, the kernel's limit for mount(2));
#: what is left for `lowerdir` once a generous 1 KiB is set aside for `upperdir` and `workdir`.
LOWERDIR_BUDGET = 4096 - 1024


def volume_name(repo_id: str, store: str = "") -> str:
    """One code volume per repository (and store, so two teams on one daemon never share one)."""
    return VOLUME_PREFIX + hashlib.sha256(f"{store}\0{repo_id}".encode()).hexdigest()[:24]


def object_path(name: str) -> str:
    return f"objects/{name[:2]}/{name}"


def new_layer_name() -> str:
    return uuid.uuid4().hex[:LAYER_NAME_LENGTH]


def layer_dir(layer: str) -> str:
    return f"{LAYERS}/{layer}"


def tree_marker(tree_id: str) -> str:
    return f"trees/{tree_id}.layers"


def join_layers(layers: list[str]) -> str:
    """The layers of a tree as one string (top first): what its marker holds and `CodeRef.build` is."""
    return ":".join(layers)


def split_layers(text: str) -> list[str]:
    """`join_layers` undone; no layers for anything that is not a list of layer names."""
    layers = [part for part in text.strip().split(":") if part]
    ok = all(len(p) == LAYER_NAME_LENGTH and all(c in "0123456789abcdef" for c in p) for p in layers)
    return layers if ok else []


def max_layers(mountpoint: str | None) -> int:
    """How many layers a view of this volume can stack: `MAX_LAYERS`, fewer where the volume lies so
    deep on the daemon's host that the `lowerdir` option would not fit in one page."""
    if not mountpoint:
        return MAX_LAYERS
    per_layer = len(mountpoint) + len(f"/{LAYERS}/") + LAYER_NAME_LENGTH + 1
    return max(1, min(MAX_LAYERS, (LOWERDIR_BUDGET - len("lowerdir=")) // per_layer))


#: Where a HEAD's own fields end and its manifest's begin (`Head.to_json`); a `"` inside a JSON string is
#: escaped, so the first raw occurrence is the one.
MANIFEST_FIELDS = ',"version":1,"entries":['


@struct(frozen=True)
class Head:
    """What `HEAD.json` says: the latest tree's manifest and layers, and whether the daemon makes
    whiteouts in this volume (None: not asked yet). The manifest is kept as its JSON text, parsed only
    when asked for: the next put's delta compares texts (`delta_from_json`), and writing a HEAD again
    reuses the text the manifest's digest was computed from."""

    manifest_json: str  # as `Manifest.json_text` writes it
    layers: list[str]
    whiteouts: bool | None = None

    @classmethod
    def of(cls, manifest: Manifest, layers: list[str], whiteouts: bool | None = None) -> Head:
        head = cls(manifest.json_text, layers, whiteouts)
        head.__dict__["manifest"] = manifest  # the cached_property, already known
        return head

    @cached_property
    def manifest(self) -> Manifest:
        """ValueError if the text is not a manifest (only a HEAD read without `check` can hold one)."""
        return Manifest.from_json(self.manifest_json)

    def to_json(self) -> str:
        # layers first, so that a shell reads them from the file's first bytes (PRUNE_SCRIPT)
        lead = json.dumps({"layers": join_layers(self.layers), "whiteouts": self.whiteouts}, separators=(",", ":"))
        return lead[:-1] + "," + self.manifest_json[1:]

    @classmethod
    def from_json(cls, text: str, *, check: bool = True) -> Head | None:
        """None for anything but a readable HEAD of this layout (the next put then writes a full tree).
        `check=False` (a HEAD this client wrote itself) leaves the manifest unparsed until it is asked for."""
        try:
            cut = text.find(MANIFEST_FIELDS)
            if cut > 0:
                data = json.loads(text[:cut] + "}")
                manifest_json = "{" + text[cut + 1:]
            else:  # another layout of the same fields: parsed whole, its manifest written as this one writes it
                data = json.loads(text)
                manifest_json = Manifest.from_data(data).json_text
            layers = split_layers(str(data.get("layers") or ""))
            whiteouts = data.get("whiteouts")
            head = cls(manifest_json, layers, whiteouts if isinstance(whiteouts, bool) else None)
            if check:
                head.manifest  # noqa: B018 - parsed (and checked) now
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None
        return head if layers else None


def whiteouts(new: Manifest, gone: list[str]) -> list[str]:
    """The paths a thin layer must white out so that `gone` (paths of the tree below not in `new`) vanish:
    the topmost folder that is gone whole, else the path itself; nothing under a path that `new` holds as
    a file or link (that entry hides what lay below it)."""
    if not gone:
        return []
    new_dirs = set(parent_dirs(new.entries))
    out: set[str] = set()
    for path in gone:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in new.entries:
                break
            if prefix not in new_dirs:
                out.add(prefix)
                break
    return sorted(out)


def gone_paths(delta: Delta) -> list[str]:
    return [*delta.deleted, *(old for old, _ in delta.renamed)]


def delta_since(head: Head | None, manifest: Manifest) -> tuple[Head | None, Delta]:
    """The delta from `head`'s tree (the texts compared, else parsed whole) and `head`, or None and the
    delta of a whole tree when there is no head or its manifest does not parse."""
    if head is None:
        return None, compute_delta(None, manifest)
    delta = delta_from_json(head.manifest_json, manifest)
    if delta is not None:
        return head, delta
    try:
        return head, compute_delta(head.manifest, manifest)
    except ValueError:  # a record of this client's that is not a manifest: a whole tree is written
        return None, compute_delta(None, manifest)


def stacking(head: Head | None, base: Callable[[], Head | None], manifest: Manifest, delta: Delta,
             depth: int) -> tuple[Delta, list[str] | None]:
    """The delta to send and the layers to stack it on (None: a full layer): `head`'s stack while it is
    less than `depth` deep; once it is that deep, the full layer at its bottom, with what changed since
    that layer's tree (`base()`, when this client wrote it), squashed into one thin layer."""
    if head is None or depth < 2:
        return delta, head.layers if head is not None and len(head.layers) < depth else None
    if len(head.layers) < depth:
        return delta, head.layers
    return squashed(base(), head, manifest, delta)


def squashed(base: Head | None, head: Head, manifest: Manifest, delta: Delta) -> tuple[Delta, list[str] | None]:
    """The delta from `base` (a full layer at the bottom of `head`'s stack) to `manifest`, and that layer
    to stack it on; `delta` (from `head`) and None (a full layer) when there is no such base or when so
    much changed since it that the thin layer would hold most of the tree. Objects travel only if `delta`
    sends them: any other the squashed layer names is in `head`'s tree, complete in the volume."""
    if base is None or base.layers != head.layers[-1:]:
        return delta, None
    since = delta_from_json(base.manifest_json, manifest)
    if since is None:
        try:
            since = compute_delta(base.manifest, manifest)
        except ValueError:
            return delta, None
    touched = len(since.added) + len(since.changed) + len(since.renamed) + len(since.deleted)
    if touched * 2 > len(manifest.entries):
        return delta, None
    needed = {name: entry for name, entry in since.needed.items() if name in delta.needed}
    return Delta(since.added, since.changed, since.deleted, since.renamed, needed), base.layers


def land_chunks(root: Path, new: Manifest, delta: Delta, layer: str, below: list[str] | None,
                makes_whiteouts: bool | None = None) -> Iterator[bytes]:
    """The tar to extract at the code volume's root: the new layer (new bytes land at the first path
    that has them, and `objects/` links to them right after; every other path is a link to an object),
    the marker naming the tree's layers, then HEAD. Streams; `root` is the project folder.

    `below`: the layers of the tree the delta was computed from, to stack a thin layer on; None for a
    full layer. `makes_whiteouts` goes into HEAD as it is."""
    now = int(time.time())
    folder = layer_dir(layer)
    if below is None:
        paths, hidden = sorted(new.entries), []
    else:
        paths = sorted({*delta.added, *delta.changed, *(to for _, to in delta.renamed)})
        hidden = whiteouts(new, gone_paths(delta))
    lands_at: dict[str, str] = {}  # object -> the layer path its bytes land at
    for path in paths:
        entry = new.entries[path]
        if entry.link is None and entry.object_name in delta.needed:
            lands_at.setdefault(entry.object_name, path)
    objects = [object_path(name) for name in sorted(lands_at)]
    inside = [f"{folder}/{p}" for p in (*paths, *hidden)]
    for name in parent_dirs([*objects, f"{folder}/.", *inside]):
        yield dir_header(name, now)
    for path in paths:
        entry = new.entries[path]
        if entry.link is not None:
            yield link_header(f"{folder}/{path}", entry.link, hard=False)
        elif lands_at.get(entry.object_name) == path:
            yield from file_member(f"{folder}/{path}", root / path, entry, new.stamps.get(path))
            # linked only once the bytes are complete: an object never holds less than its name says
            yield link_header(object_path(entry.object_name), f"{folder}/{path}", hard=True)
        else:
            yield link_header(f"{folder}/{path}", object_path(entry.object_name), hard=True)
    for path in hidden:
        yield whiteout_header(f"{folder}/{path}", now)
    layers = [layer, *(below or [])]
    yield from bytes_member(tree_marker(new.digest), join_layers(layers).encode(), mtime=now)
    yield from bytes_member(HEAD, Head.of(new, layers, makes_whiteouts).to_json().encode(), mtime=now)
    yield end_of_archive()


def probe_chunks() -> Iterator[bytes]:
    """A tar holding one whiteout, to learn whether the daemon's extraction makes devices."""
    yield whiteout_header(WHITEOUT_PROBE, int(time.time()))
    yield end_of_archive()


def overlay_options(lowers: list[str], upper: str, work: str) -> dict[str, str]:
    """`local` volume driver options for a copy-on-write view: lowers are the tree's layers (top
    first, read only), upper and work are empty folders of the job's own, on one file system."""
    for path in (*lowers, upper, work):
        if not path.startswith("/") or any(c in path for c in ",:\\\n"):
            raise ValueError(f"cannot use {path!r} in overlay mount options")
    if not lowers:
        raise ValueError("an overlay view needs at least one layer")
    return {"type": "overlay", "device": "overlay",
            "o": f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"}
