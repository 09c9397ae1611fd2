"""A local store folder behind the part of fsspec's interface that `Store` uses, with plain file calls.

Why not fsspec's own local filesystem: importing fsspec costs more than `dtrun status` or a cache hit
takes in all, and those read and write a local store only. With this class `Store` has one code path
for every store (`self.fs`, this or an fsspec filesystem, behind `Guarded` for the same clear errors),
and fsspec is imported only for stores that are not local folders.

Writes are atomic as fsspec's local `pipe_file` is not: a temporary file in the same folder, then a
rename, so a reader sees the old object or the new one; a write that fails leaves no temporary file.
"""

from __future__ import annotations

import glob as globbing
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any


class LocalFiles:
    def pipe_file(self, path: str, data: bytes, mode: str = "overwrite") -> None:
        """`mode="create"` (fsspec's exclusive write): FileExistsError if `path` exists. The object
        appears whole or not at all: written under a temporary name, then hard-linked into place (a
        link, unlike a rename, never replaces an existing name)."""
        if mode == "create":
            with self._temporary(path) as tmp:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.link(tmp, path)
            return
        with self._replacing(path) as tmp, open(tmp, "wb") as fh:
            fh.write(data)

    def put_file(self, local_path: str, path: str) -> None:
        with self._replacing(path) as tmp:
            shutil.copyfile(local_path, tmp)

    def get_file(self, path: str, local_path: str) -> None:
        shutil.copyfile(path, local_path)

    def cat_file(self, path: str) -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    def open(self, path: str, mode: str = "rb") -> IO[Any]:
        if "w" in mode or "a" in mode:
            os.makedirs(posixpath.dirname(path), exist_ok=True)
        return open(path, mode)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def rm(self, path: str, recursive: bool = False) -> None:
        """A file, or with `recursive` a folder and everything in it; FileNotFoundError if neither exists."""
        if recursive and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)

    def ls(self, path: str, detail: bool = True) -> list[Any]:
        """The entries of a folder as fsspec lists them: full paths, or dicts with `name` and `mtime`."""
        found: list[Any] = []
        with os.scandir(path) as entries:
            for entry in entries:
                name = posixpath.join(path, entry.name)
                if not detail:
                    found.append(name)
                    continue
                try:
                    found.append({"name": name, "mtime": entry.stat().st_mtime})
                except FileNotFoundError:  # removed while listed
                    continue
        return found

    def glob(self, pattern: str) -> list[str]:
        return globbing.glob(pattern)

    @contextmanager
    def _replacing(self, path: str) -> Iterator[str]:
        """A temporary name beside `path`; renamed to `path` when the block ends, removed if it fails."""
        with self._temporary(path) as tmp:
            yield tmp
            os.replace(tmp, path)

    @contextmanager
    def _temporary(self, path: str) -> Iterator[str]:
        """A temporary name beside `path` (its folder made), gone when the block ends."""
        os.makedirs(posixpath.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            yield tmp
        finally:
            with suppress(OSError):
                os.remove(tmp)
