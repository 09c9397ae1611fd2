"""The content manifest of a code snapshot: path -> (digest, mode, size), or a symlink's target.

Its digest is the snapshot's identity (part of every job's cache key); comparing two manifests says
what changed between runs without looking at a byte of content (see `delta`). Files are hashed in
chunks (memory stays flat whatever their size) and only when the digest index cannot vouch for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from dtrun.code.index import DigestIndex
from dtrun.errors import ProjectError
from dtrun.structs import struct

CHUNK = 1024 * 1024
#: Untracked, unignored files over this many bytes in total are pointed out (see `LargeUntracked`).
LARGE_UNTRACKED_BYTES = 100 * 1024 * 1024


class Entry(NamedTuple):
    """A tuple: a run makes one per file (10,000 in a 10,000-file repository), cheaper to make than a
    frozen dataclass, and its equality, hashing and JSON row (the tuple itself) come at C speed."""

    path: str
    mode: int  # permission bits
    size: int
    digest: str  # sha256 of the content; of the target for a symlink
    link: str | None = None  # a symlink's target

    @property
    def object_name(self) -> str:
        """The content-addressed name of a regular file's bytes and mode (hard links share both)."""
        return f"{self.digest}-{self.mode:o}"


@struct(frozen=True)
class Manifest:
    entries: dict[str, Entry]
    #: the digest index's rows (`[size, mtime_ns, ctime_ns, inode, digest]`, `DigestIndex.entries`) the
    #: manifest was built with: shipping trusts a file's digest while its row names that digest and its
    #: size, mtime, ctime and inode still match (`tarstream.file_member`). The index's own dict, shared:
    #: nothing is made per file for it. Empty for a manifest read back from JSON.
    stamps: Mapping[str, Sequence[int | str]] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def digest(self) -> str:
        """Computed once: a manifest is never changed once built (10,000 entries take ~10 ms to serialise)."""
        return hashlib.sha256(self.json_text.encode()).hexdigest()

    @cached_property
    def json_text(self) -> str:
        entries = self.entries  # an Entry is a tuple: its JSON is the row itself
        return json.dumps({"version": 1, "entries": [entries[p] for p in sorted(entries)]}, separators=(",", ":"))

    def to_json(self) -> str:
        return self.json_text

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls.from_data(json.loads(text))

    @classmethod
    def from_data(cls, data: Any) -> Manifest:
        """From parsed JSON (keys other than `version` and `entries` are ignored: a code volume's HEAD
        carries more). Each row is checked (a HEAD another client wrote is read too), ValueError if bad."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("not a version 1 code manifest")
        entries: dict[str, Entry] = {}
        make = tuple.__new__
        for row in data["entries"]:
            path, mode, size, digest, link = row
            if not (type(path) is str and type(mode) is int and type(size) is int and type(digest) is str
                    and (link is None or type(link) is str)):
                raise ValueError(f"not a code manifest row: {row!r}")
            entries[path] = make(Entry, row)
        return cls(entries)

    def without(self, prefixes: Iterable[str]) -> Manifest:
        """The manifest minus files under the given folder prefixes (`data/`), e.g. where inputs mount."""
        cut = tuple(prefixes)
        if not cut:
            return self
        return Manifest({p: e for p, e in self.entries.items() if not (p.startswith(cut) or p + "/" in cut)},
                        self.stamps)


@struct(frozen=True)
class LargeUntracked:
    """Untracked, unignored files shipped with the code, worth a one-time notice (the CLI renders it)."""

    total: int
    paths: list[tuple[str, int]]  # biggest first
    ignore_file: str = ".dtrunignore"

    @property
    def hint(self) -> str:
        top = self.paths[0][0] if self.paths else "data/"
        return (f"add the paths to {self.ignore_file} (same syntax as .gitignore; .gitignore works too), "
                f"e.g. `echo '{top}' >> {self.ignore_file}`")


def file_digest(path: Path, size: int) -> str:
    """sha256 of the first `size` bytes, read in chunks; a file that shrank meanwhile is an error."""
    digest = hashlib.sha256()
    left = size
    with path.open("rb") as handle:
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                raise ProjectError(f"{path} changed while dtrun read it", hint="run again once it is written")
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def build_manifest(root: Path, files: Iterable[str], index: DigestIndex) -> Manifest:
    """One `lstat` per file (string paths: pathlib's joins were half the cost of 10,000 files); only
    files the index cannot vouch for are read. The loop is the per-file cost of every run, so the index's
    check is inlined here (`DigestIndex.lookup` says the same)."""
    entries: dict[str, Entry] = {}
    base = os.fspath(root) + "/"
    known = index.entries
    lstat, is_reg, is_link, make = os.lstat, stat.S_ISREG, stat.S_ISLNK, tuple.__new__
    for name in files:
        try:
            st = lstat(base + name)
        except (FileNotFoundError, NotADirectoryError):
            continue  # deleted since git listed it
        kind = st.st_mode
        if is_reg(kind):
            size = st.st_size
            row = known.get(name)
            if (row is None or row[0] != size or row[1] != st.st_mtime_ns or row[2] != st.st_ctime_ns
                    or row[3] != st.st_ino or type(digest := row[4]) is not str):
                digest = file_digest(root / name, size)
                index.record(name, st, digest)
            entries[name] = make(Entry, (name, kind & 0o7777, size, digest, None))
        elif is_link(kind):
            target = os.readlink(base + name)
            entries[name] = Entry(name, kind & 0o7777, 0, hashlib.sha256(target.encode()).hexdigest(), target)
    index.saw(entries)
    return Manifest(entries, known)


def large_untracked(manifest: Manifest, untracked: Iterable[str],
                    threshold: int = LARGE_UNTRACKED_BYTES) -> LargeUntracked | None:
    """The untracked files shipped, when together they pass the threshold; None otherwise."""
    sizes = [(p, manifest.entries[p].size) for p in untracked if p in manifest.entries]
    total = sum(size for _, size in sizes)
    if total < threshold:
        return None
    sizes.sort(key=lambda item: (-item[1], item[0]))
    return LargeUntracked(total, sizes)
