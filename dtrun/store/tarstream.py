"""Tar framing without copying the data: members of a chunked tar stream, and a tar writer.

An artifact's bytes come from the daemon as a stream of chunks (32 KiB each through docker-py: the
daemon's HTTP chunks) and go to the store as a tar. Python's `tarfile` in stream mode copies every
data byte several times through its own buffer (joins and slices), which made the export of a large
file CPU-bound. Here the headers are still parsed by `tarfile` (`TarInfo.fromtarfile`: ustar, GNU long
names and PAX records, with its checksum checks), but a member's data is handed on as views of the
chunks themselves, and the stored tar is written from those views (`TarWriter`, headers by
`TarInfo.tobuf`, the same bytes `TarFile` writes). Per byte: one copy from the socket, one hash, one
copy into the file.

Neither `stream_members` nor `TarWriter` keeps a view of a chunk once the next one is asked for (a
header that spans two chunks is copied): on their own they could take views of one buffer that the
source refills. The export's threads around them (`dtrun.store.streams`) hold chunks for a while, so
they keep bytes as they are and copy anything else.

`tarfile` is opened with a buffer of one block over a reader that returns exactly what it is asked for,
so it never reads ahead of the header it parses; `stream_members` checks that on every member.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash as Hasher

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
Piece = bytes | memoryview


class Truncated(tarfile.ReadError):
    """The stream ended before the archive did; `where` says where in it (for the user's message)."""

    def __init__(self, where: str) -> None:
        super().__init__(f"the archive stream ended {where} (it broke off)")
        self.where = where


class _Cursor(io.RawIOBase):
    """Exact reads over an iterator of chunks: `read(n)` gives n bytes unless the stream ends (what
    `tarfile` parses headers from); `pieces(n)` the next n bytes as views of the chunks, no copy."""

    def __init__(self, chunks: Iterable[Piece]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._view = memoryview(b"")
        #: Bytes handed out so far, by `read` and `pieces` together.
        self.position = 0

    def readable(self) -> bool:
        return True

    def _ready(self) -> bool:
        while not self._view:
            try:
                self._view = memoryview(next(self._chunks)).cast("B")
            except StopIteration:
                return False
        return True

    def read(self, size: int | None = -1) -> bytes:
        parts: list[bytes] = []
        want = -1 if size is None or size < 0 else size
        while want != 0 and self._ready():
            piece = self._view if want < 0 else self._view[:want]
            self._view = self._view[len(piece):]
            parts.append(bytes(piece))  # copied before the next chunk may refill the source's buffer
            want -= 0 if want < 0 else len(piece)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.position += len(data)
        return data

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def pieces(self, size: int) -> Iterator[memoryview]:
        """The next `size` bytes as views, each valid until the next is taken; `tarfile.ReadError` if
        the stream ends before them."""
        left = size
        while left:
            if not self._ready():
                raise Truncated("in the middle of a member's data")
            piece = self._view[:left]
            self._view = self._view[len(piece):]
            left -= len(piece)
            self.position += len(piece)
            yield piece

    def drain(self) -> None:
        """Read what is left (the end blocks after the end marker), so the source is read to its end."""
        self._view = memoryview(b"")
        for _ in self._chunks:
            pass


class StreamData(io.RawIOBase):
    """The data of the current member of a stream: `pieces()` as views, or `read` like a file."""

    def __init__(self, cursor: _Cursor, size: int, name: str = "") -> None:
        super().__init__()
        self._cursor, self.left, self.name = cursor, size, name

    def readable(self) -> bool:
        return True

    def pieces(self) -> Iterator[memoryview]:
        with _inside(self.name):
            for piece in self._cursor.pieces(self.left):
                self.left -= len(piece)
                yield piece

    def read(self, size: int | None = -1) -> bytes:
        want = self.left if size is None or size < 0 else min(size, self.left)
        with _inside(self.name):
            data = b"".join([bytes(piece) for piece in self._cursor.pieces(want)])  # copied while valid
        self.left -= len(data)
        return data

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def _inside(name: str) -> Iterator[None]:
    """A `Truncated` in a member's data names the member."""
    try:
        yield
    except Truncated:
        if not name:
            raise
        raise Truncated(f"in the middle of {name}") from None


def _padded(size: int) -> int:
    return -size % BLOCK


def _header_after(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    """The next member's header, None at the end marker (a zero block)."""
    try:
        return tarfile.TarInfo.fromtarfile(tar)
    except tarfile.HeaderError as exc:  # its subclasses are not in the type stubs: told apart by name
        if type(exc).__name__ == "EOFHeaderError":
            return None
        if type(exc).__name__ == "EmptyHeaderError":
            raise Truncated("at the end of a member, with neither a next member nor tar's end-of-archive "
                            "marker after it") from None
        if type(exc).__name__ == "TruncatedHeaderError":
            raise Truncated("in the middle of a member's header") from None
        raise tarfile.ReadError(f"bad tar header: {exc}") from None


def _open(cursor: _Cursor) -> tarfile.TarFile:
    """tarfile over the cursor, its first header read: a stream that ends before one is `Truncated`."""
    try:
        return tarfile.open(fileobj=cursor, mode="r|", bufsize=BLOCK)
    except tarfile.ReadError as exc:
        if str(exc) in ("empty file", "truncated header"):
            raise Truncated("before its first member was complete") from None
        raise


def stream_members(chunks: Iterable[Piece]) -> Iterator[tuple[tarfile.TarInfo, StreamData | None]]:
    """The members of a tar stream, each regular file with its data (valid until the next member).

    Data left unread is skipped. The stream must end with tar's end-of-archive marker, two zero blocks:
    a stream read to the end of its connection has no length to check, so the marker is what tells a
    complete archive from one cut short, even exactly between two members, where every header read is
    valid. A stream without it (a dropped connection) is `Truncated`, never a shorter artifact.
    """
    cursor = _Cursor(chunks)
    with _open(cursor) as tar:
        parsed = tar.fileobj  # tarfile's own reader: every header byte goes through it
        assert parsed is not None
        member = tar.next()  # the first (read when the archive was opened)
        direct = 0  # data bytes taken from the cursor past tarfile
        while member is not None:
            if parsed.tell() + direct != cursor.position:
                raise RuntimeError("tarfile read ahead of the header it parsed")  # a Python that buffers
            if member.issparse():
                raise tarfile.ReadError(f"{member.name}: a sparse file (not supported in artifacts)")
            size = member.size if member.isreg() or member.type not in tarfile.SUPPORTED_TYPES else 0
            data = StreamData(cursor, size, member.name) if member.isreg() else None
            yield member, data
            left = data.left if data is not None else size
            with _inside(member.name):
                for _ in cursor.pieces(left + _padded(size)):
                    pass
            direct += size + _padded(size)
            member = _header_after(tar)
    if len(cursor.read(BLOCK)) < BLOCK:  # the marker's second zero block (tarfile stops at the first)
        raise Truncated("inside tar's end-of-archive marker")
    cursor.drain()


def file_chunks(source: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """A file as chunks, for `stream_members`."""
    while chunk := source.read(size):
        yield chunk


_ZEROS = bytes(BLOCK)


class TarWriter:
    """Writes a tar as `TarFile(format=PAX_FORMAT)` would, byte for byte, taking data as pieces.

    `target.write` must take all it is given (a buffered file, `BytesIO`, `BackgroundWriter`).
    """

    def __init__(self, target: IO[bytes] | io.RawIOBase) -> None:
        self._target = target
        self.offset = 0

    def add(self, member: tarfile.TarInfo, pieces: Iterable[Piece] = (), hasher: Hasher | None = None) -> None:
        """One member; a regular file's `pieces` must hold exactly `member.size` bytes, each fed to
        `hasher` (when given) as it is written: one loop per chunk, no generator around it."""
        write = self._target.write
        header = member.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        write(header)
        size, written = member.size, 0
        update = hasher.update if hasher is not None else None
        for piece in pieces:  # the hot loop of an export: one pass per chunk, nothing else in it
            written += len(piece)
            if written > size:
                raise OSError(f"{member.name}: more data than its size ({size} bytes)")
            if update is not None:
                update(piece)
            write(piece)
        if member.isreg() and written != size:
            raise OSError(f"{member.name}: unexpected end of data ({written} of {size} bytes)")
        padding = _padded(written)
        if padding:
            write(_ZEROS[:padding])
        self.offset += len(header) + written + padding

    def close(self) -> None:
        """The end marker, and zeros up to a whole record, as `TarFile.close` writes them."""
        end = 2 * BLOCK + (-(self.offset + 2 * BLOCK) % RECORD)
        self._target.write(bytes(end))
        self.offset += end
