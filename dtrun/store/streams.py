"""The threads around an artifact export: the daemon's stream read ahead, the store's file written behind.

While the main thread checks members and hashes their bytes, `Prefetch` keeps reading the daemon's
stream and `BackgroundWriter` keeps writing the stored tar; hashing and file writes release the GIL, so
the three overlap. Split from `archive.py` (which checks tar members) so each module has one job.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import IO

Piece = bytes | memoryview


class Prefetch:
    """The chunks of `source`, pulled by a background thread up to `depth` batches ahead.

    The source is a socket (the daemon's tar stream): while the consuming thread hashes and writes,
    the next chunks keep arriving, so the daemon never waits on us (a unix socket buffers only a few
    hundred KiB). Chunks travel in batches of about `batch` bytes, one queue hand-over each. An error
    of the source is raised where the consumer reaches it; `close` stops the thread early. Chunks
    are held, so anything but `bytes` (a view of a buffer the source reuses) is copied first.
    """

    def __init__(self, source: Iterable[Piece], batch: int = 1 << 20, depth: int = 16) -> None:
        import queue
        import threading

        self._source = source
        self._batch = batch
        self._queue: queue.Queue[list[Piece] | BaseException | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pull, daemon=True, name="dtrun-prefetch")
        self._thread.start()

    def _pull(self) -> None:
        source = iter(self._source)
        batch: list[Piece] = []
        held = 0
        try:
            for chunk in source:
                if not _immutable(chunk):  # held for a while: a view of a buffer that the source
                    chunk = bytes(chunk)   # refills (or a bytearray) would change under us
                batch.append(chunk)
                held += len(chunk)
                if held >= self._batch:
                    if not self._put(batch):
                        break
                    batch, held = [], 0
            else:
                if not batch or self._put(batch):
                    self._put(None)
                return
        except BaseException as exc:  # handed to the consumer, raised where it reaches it
            self._put(exc)
            return
        # Stopped early: close the source now (for the daemon's stream, its connection), not when
        # it is collected. The daemon keeps the container locked while its archive is open.
        close = getattr(source, "close", None)
        if close is not None:
            close()

    def _put(self, item: list[Piece] | BaseException | None) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Piece]:
        while (item := self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield from item

    def close(self) -> None:
        """Stop pulling (what was not read yet is dropped)."""
        self._stop.set()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundWriter(io.RawIOBase):
    """Writes to `target` from a background thread, so disk writes overlap with reading and hashing.

    Writes are handed over in batches of about `batch` bytes, one queue hand-over each, and a batch
    goes to a real file in one `writev` (a file system's cost per write call is high for small ones)
    without joining the pieces first. Bytes, and views of bytes, are queued as they are (they cannot
    change); anything mutable is copied. `guard` wraps every write of the thread (the store's
    `failing`, which turns a full disk into the store's clear error).
    """

    def __init__(self, target: IO[bytes], *, guard: Callable[[], AbstractContextManager[object]] | None = None,
                 depth: int = 16, batch: int = 1 << 20) -> None:
        import queue
        import threading

        super().__init__()
        self._target, self._guard = target, guard or contextlib.nullcontext
        self._fd = _file_descriptor(target)
        self._queue: queue.Queue[list[Piece] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._pos = 0
        self._batch, self._pending, self._held = batch, list[Piece](), 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="dtrun-writer")
        self._thread.start()

    def _run(self) -> None:
        while (pieces := self._queue.get()) is not None:
            if self._error is None:
                try:
                    with self._guard():
                        self._write(pieces)
                except BaseException as exc:  # reported by the next write or by finish()
                    self._error = exc

    def _write(self, pieces: list[Piece]) -> None:
        if self._fd is None:
            self._target.write(b"".join(pieces))
            return
        self._target.flush()  # nothing should be buffered there; if it is, it goes first
        while pieces:
            group = pieces[:_IOV_MAX]
            done = os.writev(self._fd, group)
            if done == 0:
                raise OSError("the file took none of the bytes written to it")
            for i, piece in enumerate(group):  # what a short write left, again
                size = len(piece)
                if done < size:
                    pieces = [memoryview(piece)[done:], *group[i + 1:], *pieces[len(group):]]
                    break
                done -= size
            else:
                pieces = pieces[len(group):]

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._error is not None:
            raise self._error
        piece: Piece
        if type(data) is bytes:
            piece = data
        elif isinstance(data, memoryview) and _immutable(data):
            piece = data.cast("B")
        else:  # it may change once this returns
            piece = bytes(data)
        size = len(piece)
        if size:
            self._pending.append(piece)
            self._held += size
            self._pos += size
            if self._held >= self._batch or len(self._pending) >= _IOV_MAX:
                self._queue.put(self._pending)
                self._pending, self._held = [], 0
        return size

    def tell(self) -> int:
        return self._pos

    def finish(self) -> None:
        """Wait until everything is written; raise what went wrong on the way."""
        if self._thread.is_alive():
            if self._pending and self._error is None:
                self._queue.put(self._pending)
            self._pending, self._held = [], 0
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error


def _immutable(data: object) -> bool:
    """Whether `data` is bytes, or a plain view of bytes: it cannot change while it is held."""
    return type(data) is bytes or (isinstance(data, memoryview) and type(data.obj) is bytes and data.contiguous)


#: Pieces per `writev` call (Linux takes at most 1024).
_IOV_MAX = 512


def _file_descriptor(target: IO[bytes]) -> int | None:
    """The descriptor of `target` if it is a regular file (where `writev` is safe), else None."""
    try:
        fd = target.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None
