"""A transfer's progress as events: code uploads, artifact exports and dep materialisations count the
bytes that pass and report them as `progress` events (at most a few a second), so a terminal can draw
a bar with bytes and rate for the ones that take a while (dtrun/cli/live_view.py). The engine never
draws anything; without a listener that cares, the events cost a dataclass each.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import IO, Any

from dtrun.engine.events import PROGRESS, Event, Listener

#: Seconds between two events of one transfer.
INTERVAL = 0.2


class Progress:
    """One transfer: `add` the bytes that passed; `close` says it is over (the bar goes away)."""

    def __init__(self, emit: Listener, name: str, *, job: str | None = None, total: int | None = None) -> None:
        self.emit, self.name, self.job, self.total = emit, name, job, total
        self.done = 0
        self._last = 0.0
        self._closed = False

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= INTERVAL:
            self._last = now
            self.emit(Event(PROGRESS, self.name, job=self.job, done=self.done, total=self.total))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.emit(Event(PROGRESS, self.name, job=self.job, done=self.done, total=self.total, state="done"))


#: A transfer's progress by the name it is shown under (`artifact model`, `dep data`).
Transfers = Callable[[str], "Progress"]


def size_of(stream: IO[bytes]) -> int | None:
    """The bytes left in a seekable stream, else None."""
    try:
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
        return end - here
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


class MeteredReader:
    """A readable stream that reports what is read through it. Everything else (`tell`, `seek`, `fileno`,
    `mode`) is the wrapped stream's, so an HTTP client still finds its length; used as a context manager
    it closes the wrapped stream, as `with open_tar() as data` expects; otherwise it leaves it open (the
    snapshot's tar is shared by the jobs)."""

    def __init__(self, inner: IO[bytes], progress: Progress) -> None:
        self.inner, self.progress = inner, progress

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        if data:
            self.progress.add(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> MeteredReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.close()
        self.inner.close()


class MeteredWriter:
    """A write-only stream that reports what is written through it (the store's side of an export)."""

    def __init__(self, inner: Any, progress: Progress) -> None:
        self.inner, self.progress = inner, progress

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written: int = self.inner.write(data)
        self.progress.add(len(data))
        return written

    def __getattr__(self, name: str) -> Any:  # flush, close, finish ... as the wrapped one
        return getattr(self.inner, name)
