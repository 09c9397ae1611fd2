"""Byte-stream adapters for tar streams: chunks as a file, and a writer that runs in the background.

Split from `archive.py` (which checks tar members) so each module has one job.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import IO


class ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (what docker-py's `get_archive` returns).

    `read` hands out the chunks themselves (sliced only when asked for less): the generic
    `RawIOBase.read` would allocate and zero a buffer of the requested size for every small chunk.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while not self._buffer:
            try:
                self._buffer = bytes(next(self._chunks))
            except StopIteration:
                return False
        return True

    def read(self, size: int | None = -1) -> bytes:
        if not self._fill():
            return b""
        if size is None or size < 0:
            parts = [self._buffer]
            self._buffer = b""
            parts.extend(bytes(c) for c in self._chunks)
            return b"".join(parts)
        if size >= len(self._buffer):
            out, self._buffer = self._buffer, b""
            return out
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


class BackgroundWriter(io.RawIOBase):
    """Writes to `target` from a background thread, so disk writes overlap with reading and hashing."""

    def __init__(self, target: IO[bytes], depth: int = 16) -> None:
        import queue
        import threading

        super().__init__()
        self._target = target
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._pos = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="dtrun-writer")
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._target.write(chunk)
                except BaseException as exc:  # reported by the next write or by finish()
                    self._error = exc

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._error is not None:
            raise self._error
        self._queue.put(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def finish(self) -> None:
        """Wait until everything is written; raise what went wrong on the way."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error
