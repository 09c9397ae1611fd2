"""Tar streams in and out of containers, checked member by member.

Outputs come out of a container as the Docker API's tar stream. `repack` rewrites that stream into
the stored form (names relative to the artifact's folder) while checking every member, so a hostile
or broken job cannot plant an absolute path, a `..`, a link leading outside, a hard link or a device
file in anybody's store or download folder. `extract` applies the same rules when writing to disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from dtrun.errors import DtrunError


class UnsafeArchive(DtrunError):
    """An archive holds members that would escape the folder it is extracted into."""


@dataclass
class Manifest:
    files: list[dict[str, object]] = field(default_factory=list)
    size: int = 0
    digest: str = ""

    @property
    def count(self) -> int:
        return sum(1 for f in self.files if f["type"] == "file")


class ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (what docker-py's `get_archive` returns)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _check_member(member: tarfile.TarInfo, name: str) -> str | None:
    """Why `member` (already renamed to `name`) is refused, or None if it is safe."""
    if name.startswith("/") or os.path.isabs(name):
        return "absolute path"
    if ".." in name.split("/"):
        return "path with '..'"
    if member.islnk():
        return "hard link"
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        return "device or special file"
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            return f"symlink to an absolute path ({target})"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if resolved == ".." or resolved.startswith("../"):
            return f"symlink pointing outside the artifact ({target})"
    elif not (member.isreg() or member.isdir()):
        return "unsupported member type"
    return None


def repack(source: IO[bytes], target: IO[bytes], *, strip_first: bool = True) -> Manifest:
    """Copy a tar stream to `target`, names made relative to its top folder, refusing unsafe members."""
    manifest = Manifest()
    digest = hashlib.sha256()
    problems: list[str] = []
    with tarfile.open(fileobj=source, mode="r|") as src, \
            tarfile.open(fileobj=target, mode="w|", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            name = member.name
            if strip_first:
                _, _, name = name.partition("/")
                if not name:
                    continue
            name = name.rstrip("/")
            reason = _check_member(member, name)
            if reason:
                problems.append(f"{member.name}: {reason}")
                continue
            member.name = name
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            entry: dict[str, object] = {"path": name, "mode": member.mode}
            if member.isreg():
                data = src.extractfile(member)
                hasher = hashlib.sha256()
                wrapped = _HashingReader(data, hasher) if data else None
                dst.addfile(member, wrapped)
                entry.update(type="file", size=member.size, sha256=hasher.hexdigest())
                manifest.size += member.size
            elif member.isdir():
                dst.addfile(member)
                entry["type"] = "dir"
            else:
                dst.addfile(member)
                entry.update(type="symlink", target=member.linkname)
            digest.update(repr(sorted(entry.items())).encode())
            manifest.files.append(entry)
    if problems:
        raise UnsafeArchive("refused unsafe members in the archive:\n  " + "\n  ".join(problems),
                            hint="outputs may hold only regular files, folders and symlinks that stay inside")
    manifest.digest = digest.hexdigest()
    return manifest


class _HashingReader(io.RawIOBase):
    def __init__(self, inner: IO[bytes], hasher: hashlib._Hash) -> None:
        self._inner, self._hasher = inner, hasher

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._hasher.update(data)
        return data

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


def extract(source: IO[bytes], dest: Path) -> list[Path]:
    """Extract a stored artifact into `dest`, with the same checks as `repack`; nothing lands outside."""
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    problems: list[str] = []
    with tarfile.open(fileobj=source, mode="r|") as tar:
        for member in tar:
            name = member.name.rstrip("/")
            reason = _check_member(member, name)
            path = (dest / name)
            if not reason and not str(path.parent.resolve()).startswith(str(dest)):
                reason = "path leads outside through a symlink"
            if reason:
                problems.append(f"{member.name}: {reason}")
                continue
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(member.mode | 0o700)
            elif member.issym():
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_symlink() or path.exists():
                    path.unlink()
                path.symlink_to(member.linkname)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                data = tar.extractfile(member)
                if path.is_symlink():
                    path.unlink()
                with open(path, "wb") as fh:
                    while data and (chunk := data.read(1 << 20)):
                        fh.write(chunk)
                path.chmod(member.mode)
                os.utime(path, (member.mtime, member.mtime))
            written.append(path)
    if problems:
        raise UnsafeArchive("refused unsafe members while extracting:\n  " + "\n  ".join(problems))
    return written
