"""Container output as the daemon streams it: multiplexed frames, or the raw bytes of a tty.

Without a tty the daemon wraps every write of the container in a frame: one byte for the stream (0 stdin,
1 stdout, 2 stderr), three zero bytes, the payload's length (4 bytes, big-endian), the payload. Frames do
not follow the body's chunks: a frame may span chunks and a chunk may hold many frames. A tty's output is
sent as it is. API 1.42 and later say which by the content type; older daemons do not, so the first eight
bytes decide (no tty's output starts with a stream byte followed by three zero bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from dtrun.backends.docker.engineapi.errors import DaemonUnreachable

HEADER = 8
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


def looks_multiplexed(head: bytes) -> bool:
    """Whether a stream's first bytes are a frame header."""
    return len(head) >= 4 and head[0] in (0, 1, 2) and head[1:4] == b"\0\0\0"


def demultiplex(pieces: Iterable[bytes], *, streams: tuple[int, ...] = (1, 2)) -> Iterator[bytes]:
    """The payload of each frame of `streams`, in order, from the body's pieces however they are cut."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        start = 0
        while len(buffer) - start >= HEADER:
            size = int.from_bytes(buffer[start + 4:start + 8], "big")
            end = start + HEADER + size
            if end > len(buffer):
                break
            if buffer[start] in streams and size:
                yield bytes(buffer[start + HEADER:end])
            start = end
        if start:
            del buffer[:start]
    if buffer:
        raise DaemonUnreachable(f"the log stream ended inside a frame ({len(buffer)} bytes left over)")


def output(pieces: Iterable[bytes], *, multiplexed: bool | None = None) -> Iterator[bytes]:
    """The container's output: demultiplexed when `multiplexed` (None: decided from the first bytes)."""
    source = iter(pieces)
    if multiplexed is None:
        head = b""
        for piece in source:
            head += piece
            if len(head) >= 4:
                break
        if not head:
            return
        multiplexed = looks_multiplexed(head)
        source = _prepend(head, source)
    if multiplexed:
        yield from demultiplex(source)
    else:
        yield from (piece for piece in source if piece)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
