"""Tar archives written as a stream of chunks: a file's bytes go from disk to the consumer in 1 MiB
pieces, so memory stays flat whatever the file size, and an upload can start before the last file
is read (the Docker API takes a chunked body).

Each file is checked as it streams: unchanged since it was hashed (same size, mtime, ctime and inode
before and after the read, and last written more than the racy window ago, as the digest index
reasons) or, failing that, by hashing its bytes again. The last chunk of a file is held back until
the check passes: a file edited after the snapshot was taken never lands complete under a name (or
in an object) that claims other content; the stream stops with a clear error instead.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from dtrun.code.index import RACY_NS, stat_key
from dtrun.code.manifest import CHUNK, Entry, Manifest
from dtrun.errors import ProjectError

BLOCK = tarfile.BLOCKSIZE


def _header(info: tarfile.TarInfo) -> bytes:
    fast = _ustar(info.name, info.size, info.mode, int(info.mtime), info.type, info.linkname)
    return fast if fast is not None else info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _ustar(name: str, size: int, mode: int, mtime: int, kind: bytes, linkname: str) -> bytes | None:
    """The plain ustar header tarfile would write for a short ASCII name, built directly (tarfile's
    general path is most of the cost of packing many small files); None where a PAX header is needed."""
    if kind == tarfile.DIRTYPE and not name.endswith("/"):
        name += "/"
    if len(name) > 100 or len(linkname) > 100 or not (name + linkname).isascii() or size >= 8**11 or mtime < 0:
        return None
    head = (name.encode().ljust(100, b"\0") + b"%07o\0" % mode + b"0000000\0" + b"0000000\0"
            + b"%011o\0" % size + b"%011o\0" % mtime)
    tail = kind + linkname.encode().ljust(100, b"\0") + b"ustar\x0000" + b"\0" * (32 + 32 + 8 + 8 + 155 + 12)
    checksum = sum(head) + sum(tail) + 8 * 32
    return head + b"%06o\0 " % checksum + tail


def dir_header(name: str, mtime: int = 0, mode: int = 0o755) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, mtime
    return _header(info)


def link_header(name: str, target: str, *, hard: bool, mode: int = 0o777, mtime: int = 0) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname, info.mode, info.mtime = target, mode, mtime
    return _header(info)


def whiteout_header(name: str, mtime: int = 0) -> bytes:
    """An overlayfs whiteout: a character device 0:0, which hides `name` in every layer below."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.devmajor, info.devminor = tarfile.CHRTYPE, 0, mtime, 0, 0
    return _header(info)


def bytes_member(name: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> Iterator[bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, mtime
    yield _header(info)
    yield data + b"\0" * (-len(data) % BLOCK)


def file_member(name: str, path: Path, entry: Entry, row: Sequence[int | str] | None = None) -> Iterator[bytes]:
    """One regular file as a tar member: header, content streamed and verified, padding. `row`: the file's
    digest index row (`Manifest.stamps`); without one that names this digest, the bytes are hashed again."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ProjectError(f"{entry.path} was deleted while dtrun shipped it", hint="run again") from None
    with handle:
        st = os.fstat(handle.fileno())
        stamp = tuple(row[:4]) if row is not None and len(row) == 5 and row[4] == entry.digest else None
        trusted = stamp is not None and stat_key(st) == stamp and time.time_ns() - st.st_mtime_ns > RACY_NS
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = entry.size, entry.mode, int(st.st_mtime)
        yield _header(info)
        digest = None if trusted else hashlib.sha256()
        left = entry.size
        held = b""
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            if digest is not None:
                digest.update(chunk)
            if held:
                yield held
            held = chunk
        same = (stat_key(os.fstat(handle.fileno())) == stamp if digest is None
                else digest.hexdigest() == entry.digest)
        if left or not same:
            raise ProjectError(f"{entry.path} changed while dtrun shipped it",
                               hint="run again once it is written (the run's code must match its cache key)")
        yield held + b"\0" * (-entry.size % BLOCK)


def end_of_archive() -> bytes:
    return b"\0" * (2 * BLOCK)


def parent_dirs(paths: Iterable[str]) -> list[str]:
    """Every folder above the given paths, parents first, each once."""
    seen: set[str] = set()
    out: list[str] = []
    for name in paths:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            if folder not in seen:
                seen.add(folder)
                out.append(folder)
    return out


def tree_chunks(root: Path, manifest: Manifest) -> Iterator[bytes]:
    """The whole snapshot as a tar (what `docker cp` of the project would send), streamed."""
    import time

    names = sorted(manifest.entries)
    now = int(time.time())
    for folder in parent_dirs(names):
        yield dir_header(folder, now)
    for name in names:
        entry = manifest.entries[name]
        if entry.link is not None:
            yield link_header(name, entry.link, hard=False)
        else:
            yield from file_member(name, root / name, entry, manifest.stamps.get(name))
    yield end_of_archive()


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for APIs that want a file, not an iterator)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def spool(chunks: Iterable[bytes], max_in_memory: int = 8 * 1024 * 1024) -> IO[bytes]:
    """The chunks in a rewound temporary file (in memory while small), for a tar sent more than once."""
    import tempfile

    out = tempfile.SpooledTemporaryFile(max_size=max_in_memory)  # noqa: SIM115 - returned open
    for chunk in chunks:
        out.write(chunk)
    out.seek(0)
    return out  # type: ignore[return-value]
