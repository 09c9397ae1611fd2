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
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dtrun.code.index import DigestIndex, stat_key
from dtrun.errors import ProjectError

CHUNK = 1024 * 1024
#: Untracked, unignored files over this many bytes in total are pointed out (see `LargeUntracked`).
LARGE_UNTRACKED_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    path: str
    mode: int  # permission bits
    size: int
    digest: str  # sha256 of the content; of the target for a symlink
    link: str | None = None  # a symlink's target
    #: (size, mtime_ns, ctime_ns, inode) when hashed: shipping trusts the digest while these hold
    stamp: tuple[int, int, int, int] | None = field(default=None, compare=False, repr=False)

    @property
    def object_name(self) -> str:
        """The content-addressed name of a regular file's bytes and mode (hard links share both)."""
        return f"{self.digest}-{self.mode:o}"


@dataclass(frozen=True)
class Manifest:
    entries: dict[str, Entry]

    @cached_property
    def digest(self) -> str:
        """Computed once: a manifest is never changed once built (10,000 entries take ~30 ms to serialise)."""
        return hashlib.sha256(self.json_text.encode()).hexdigest()

    @cached_property
    def json_text(self) -> str:
        entries = self.entries
        rows = [[e.path, e.mode, e.size, e.digest, e.link] for e in map(entries.__getitem__, sorted(entries))]
        return json.dumps({"version": 1, "entries": rows}, separators=(",", ":"))

    def to_json(self) -> str:
        return self.json_text

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls.from_data(json.loads(text))

    @classmethod
    def from_data(cls, data: Any) -> Manifest:
        """From parsed JSON (keys other than `version` and `entries` are ignored: a code volume's HEAD
        carries more)."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("not a version 1 code manifest")
        return cls({row[0]: Entry(row[0], int(row[1]), int(row[2]), str(row[3]), row[4])
                    for row in data["entries"]})

    def without(self, prefixes: Iterable[str]) -> Manifest:
        """The manifest minus files under the given folder prefixes (`data/`), e.g. where inputs mount."""
        cut = tuple(prefixes)
        if not cut:
            return self
        return Manifest({p: e for p, e in self.entries.items() if not (p.startswith(cut) or p + "/" in cut)})


@dataclass(frozen=True)
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
    files the index cannot vouch for are read."""
    entries: dict[str, Entry] = {}
    base = os.fspath(root) + "/"
    lookup = index.lookup
    for name in files:
        try:
            st = os.lstat(base + name)
        except FileNotFoundError:
            continue  # deleted since git listed it
        kind = st.st_mode
        if stat.S_ISREG(kind):
            digest = lookup(name, st)
            if digest is None:
                digest = file_digest(root / name, st.st_size)
                index.record(name, st, digest)
            entries[name] = Entry(name, stat.S_IMODE(kind), st.st_size, digest, stamp=stat_key(st))
        elif stat.S_ISLNK(kind):
            target = os.readlink(base + name)
            entries[name] = Entry(name, stat.S_IMODE(kind), 0, hashlib.sha256(target.encode()).hexdigest(), target)
    return Manifest(entries)


def large_untracked(manifest: Manifest, untracked: Iterable[str],
                    threshold: int = LARGE_UNTRACKED_BYTES) -> LargeUntracked | None:
    """The untracked files shipped, when together they pass the threshold; None otherwise."""
    sizes = [(p, manifest.entries[p].size) for p in untracked if p in manifest.entries]
    total = sum(size for _, size in sizes)
    if total < threshold:
        return None
    sizes.sort(key=lambda item: (-item[1], item[0]))
    return LargeUntracked(total, sizes)
