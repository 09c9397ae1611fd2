"""A per-project index of file digests, as git keeps one: a file whose size, mtime, ctime and inode are
unchanged since it was last hashed is not read again.

Kept under the user's data folder (never in the project, so it is never shipped), one JSON file per
project root. It is only a cache: a missing or unreadable index means every file is hashed once more.
A file modified within `RACY_NS` of the moment it was hashed is not remembered (git's "racily clean"
problem: a second write in the same timestamp tick would otherwise go unnoticed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

VERSION = 1
RACY_NS = 2_000_000_000  # coarse file systems (FAT, SMB) keep 2 s timestamps


def index_path(root: Path, data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from dtrun.config import data_home

        data_dir = data_home()
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
    return data_dir / "code-index" / f"{key}.json"


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class DigestIndex:
    """path -> [size, mtime_ns, ctime_ns, inode, sha256 hex]; loaded once, saved once if it changed."""

    def __init__(self, path: Path | None, root: Path | None = None) -> None:
        self.path = path
        self.root = root  # when given, entries not looked up are kept while their file exists
        self.entries: dict[str, list[int | str]] = {}
        self._seen: set[str] = set()
        self._dirty = False
        self._started_ns = time.time_ns()
        if path is not None:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text())
                if isinstance(data, dict) and data.get("version") == VERSION:
                    entries = data["entries"]
                    if type(entries) is dict and all(type(e) is list and len(e) == 5 for e in entries.values()):
                        self.entries = entries

    def lookup(self, name: str, st: os.stat_result) -> str | None:
        self._seen.add(name)
        entry = self.entries.get(name)
        if entry is None or tuple(entry[:4]) != stat_key(st):
            return None
        digest = entry[4]
        return digest if isinstance(digest, str) else None

    def saw(self, names: Iterable[str]) -> None:
        """These files were looked up (`build_manifest` checks the entries itself, all at once)."""
        self._seen.update(names)

    def record(self, name: str, st: os.stat_result, digest: str) -> None:
        """A file just hashed. One written within the racy window is not remembered; its old entry,
        if any, stays: its ctime is in the past, so it can never match the file again, and leaving it
        spares rewriting the whole index for a file edited just before a run."""
        self._seen.add(name)
        if st.st_mtime_ns >= self._started_ns - RACY_NS:
            return
        self.entries[name] = [*stat_key(st), digest]
        self._dirty = True

    def save(self) -> None:
        """Write the index (atomically) if anything changed; entries of files gone from disk go (of
        files not looked up at all, without a `root`: a pass over part of the project keeps the rest)."""
        unseen = self.entries.keys() - self._seen
        gone = unseen if self.root is None else {n for n in unseen if not os.path.lexists(self.root / n)}
        for name in gone:
            del self.entries[name]
        if self.path is None or not (self._dirty or gone):
            return
        with contextlib.suppress(OSError):  # a read-only data folder costs speed, never correctness
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"version": VERSION, "entries": self.entries}, separators=(",", ":")))
            tmp.replace(self.path)
        self._dirty = False
