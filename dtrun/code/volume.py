"""The content-addressed code volume of a repository, on the daemon: its layout, the one tar that
lands a delta in it, and the job's private copy-on-write view of a tree. Pure (no Docker here); the
Docker backend drives it through the API only, so a remote daemon gets the same.

Layout of the volume (`dtrun-code-<key>`), all paths relative to its root:

    objects/<ab>/<object>       content + mode, immutable, `<sha256>-<mode>` (hard links)
    trees/<build>/...           one immutable hard-link farm per upload of a manifest (build =
                                <tree-id>-<txn>); new bytes land in it and objects link to them
    trees/<tree-id>.json        the manifest (tree id = its digest)
    trees/<tree-id>.ok          written last; holds the build folder's name: the tree is complete
    HEAD.json                   the manifest of the latest tree (what the next delta is computed from)

Each upload builds its own folder and only then points the marker at it, so two clients landing the
same tree at once never touch a folder a job already uses (extracting over an existing file removes
it first: a shared folder would briefly miss files).

A delta lands with a single `put_archive` into a container that mounts the volume and is never
started (the "anchor"): the daemon extracts the tar in order, so new bytes land in the tree's folder,
`objects/` links to them once complete, other paths link to objects, and the marker comes last. An
upload cut short leaves no tree marked complete and no object holding bytes that are not its name.

A job never sees the tree itself: it gets an overlay (lower: the tree, upper and work: two fresh
volumes of its own), created as a `local` volume with `type=overlay` options through the API. Writes
copy up into the job's own upper volume; the tree, the objects and every other job are untouched. On
a daemon where overlay volumes cannot be mounted, `COPY_VIEW_SCRIPT` copies the tree into the job's
volume instead (reflinks where the file system has them).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

from dtrun.code.delta import Delta
from dtrun.code.manifest import Manifest
from dtrun.code.tarstream import (
    bytes_member,
    dir_header,
    end_of_archive,
    file_member,
    link_header,
    parent_dirs,
)

VOLUME_PREFIX = "dtrun-code-"
LABEL_CODE = "dev.dtrun.code"  # value: the repository id
#: Where helper and anchor containers mount the code volume, and where a copied view goes.
CODE_MOUNT = "/code"
VIEW_MOUNT = "/view"
HEAD = "HEAD.json"


def volume_name(repo_id: str, store: str = "") -> str:
    """One code volume per repository (and store, so two teams on one daemon never share one)."""
    return VOLUME_PREFIX + hashlib.sha256(f"{store}\0{repo_id}".encode()).hexdigest()[:24]


def object_path(name: str) -> str:
    return f"objects/{name[:2]}/{name}"


def build_name(tree_id: str, txn: str) -> str:
    return f"{tree_id}-{txn}"


def tree_dir(build: str) -> str:
    """The folder of one build of a tree (the name a tree's marker holds)."""
    return f"trees/{build}"


def tree_manifest(tree_id: str) -> str:
    return f"trees/{tree_id}.json"


def tree_marker(tree_id: str) -> str:
    return f"trees/{tree_id}.ok"


def land_chunks(root: Path, new: Manifest, delta: Delta, txn: str) -> Iterator[bytes]:
    """The tar to extract at the code volume's root: the new tree's build folder (new bytes land at
    the first path that has them, and `objects/` links to them right after; every other path is a link
    to an object), its manifest, the marker naming the folder, then HEAD. Streams; `root` is the project
    folder; `txn` is unique per upload."""
    now = int(time.time())
    tree_id = new.digest
    build = build_name(tree_id, txn)
    tree = tree_dir(build)
    paths = sorted(new.entries)
    lands_at: dict[str, str] = {}  # object -> the tree path its bytes land at
    for path in paths:
        entry = new.entries[path]
        if entry.link is None and entry.object_name in delta.needed:
            lands_at.setdefault(entry.object_name, path)
    objects = [object_path(name) for name in sorted(lands_at)]
    for folder in parent_dirs([*objects, f"{tree}/.", *(f"{tree}/{p}" for p in paths)]):
        yield dir_header(folder, now)
    for path in paths:
        entry = new.entries[path]
        if entry.link is not None:
            yield link_header(f"{tree}/{path}", entry.link, hard=False)
        elif lands_at.get(entry.object_name) == path:
            yield from file_member(f"{tree}/{path}", root / path, entry)
            # linked only once the bytes are complete: an object never holds less than its name says
            yield link_header(object_path(entry.object_name), f"{tree}/{path}", hard=True)
        else:
            yield link_header(f"{tree}/{path}", object_path(entry.object_name), hard=True)
    text = new.to_json().encode()
    yield from bytes_member(tree_manifest(tree_id), text, mtime=now)
    yield from bytes_member(tree_marker(tree_id), build.encode(), mtime=now)
    yield from bytes_member(HEAD, text, mtime=now)
    yield end_of_archive()


def overlay_options(lower: str, upper: str, work: str) -> dict[str, str]:
    """`local` volume driver options for a copy-on-write view: lower is the tree (read only), upper
    and work are empty folders of the job's own, on the same file system as each other."""
    for path in (lower, upper, work):
        if not path.startswith("/") or any(c in path for c in ",:\\\n"):
            raise ValueError(f"cannot use {path!r} in overlay mount options")
    return {"type": "overlay", "device": "overlay", "o": f"lowerdir={lower},upperdir={upper},workdir={work}"}


#: A helper container runs this (argv: build folder) with the code volume at CODE_MOUNT (read only) and
#: the job's volume at VIEW_MOUNT, when overlay views are unavailable. Hard links inside the tree
#: must not survive the copy (two paths with the same bytes would be one file a job could write
#: through): GNU cp is told not to keep them; busybox cp keeps them, so any left are broken after.
COPY_VIEW_SCRIPT = f"""set -eu
src="{CODE_MOUNT}/trees/$1"
test -d "$src" || {{ echo "tree $1 is not in the code volume" >&2; exit 3; }}
if cp --reflink=auto --version >/dev/null 2>&1; then
  cp -R --preserve=mode,timestamps --reflink=auto "$src/." {VIEW_MOUNT}/
else
  cp -R -p "$src/." {VIEW_MOUNT}/
fi
find {VIEW_MOUNT} -type f -links +1 -exec sh -c \
  'for f; do cp -p "$f" "$f.dtrun-tmp" && mv -f "$f.dtrun-tmp" "$f"; done' sh {{}} +
"""

#: A helper container runs this (argv: tree ids or build folders to keep: the latest trees and those
#: job views still use) with the code volume at CODE_MOUNT. It drops the other trees, builds no marker
#: names that are over an hour old (younger ones may be in flight), then objects nothing links to any
#: more (link count 1).
PRUNE_SCRIPT = f"""set -eu
cd {CODE_MOUNT}
keep=" $* "
kept=" "
dropped=" "
for marker in trees/*.ok; do
  [ -e "$marker" ] || continue
  id=$(basename "$marker" .ok)
  build=$(cat "$marker")
  case "$keep" in *" $id "*|*" $build "*) kept="$kept$build "; continue ;; esac
  dropped="$dropped$id "
  rm -f "$marker" "trees/$id.json"
done
old=" $(find trees -mindepth 1 -maxdepth 1 -type d -mmin +60 2>/dev/null | xargs -n1 basename 2>/dev/null \
  | tr '\n' ' ') "
for dir in trees/*/; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir"); id=${{name%%-*}}
  case "$kept$keep" in *" $name "*) continue ;; esac
  case "$dropped$old" in *" $id "*|*" $name "*) rm -rf "$dir" ;; esac
done
find objects -type f -links 1 -exec rm -f {{}} + 2>/dev/null || true
"""
