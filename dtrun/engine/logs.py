"""Job logs: Docker's timestamped frames -> masked text for the terminal and timestamped lines to store.

Docker is asked for logs with timestamps, so every frame starts with an RFC 3339 time and a space.
The terminal gets the bare, masked text as it arrives. The stored `logs.txt` keeps one time per line
(`<time> <text>`), so `dtrun logs --since` works on finished jobs exactly as on running ones.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from dtrun.errors import DtrunError
from dtrun.masking import Masker

if TYPE_CHECKING:
    from dtrun.backends.base import Backend, Exit

_STAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")


def split_frame(frame: bytes) -> tuple[bytes | None, bytes]:
    """`b"2024-01-01T00:00:00.1Z text"` -> (the time, the text); (None, frame) when it has no time."""
    match = _STAMP.match(frame)
    if match is None:
        return None, frame
    return match.group(1), frame[match.end():]


def stamp_seconds(stamp: bytes | str) -> float:
    """An RFC 3339 time with nanoseconds (Docker's) as epoch seconds."""
    text = stamp.decode() if isinstance(stamp, bytes) else stamp
    text = text.strip().replace("Z", "+00:00")
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if match:  # Python before 3.11 parses at most 6 fraction digits
        text = match.group(1) + (match.group(2) or "")[:7] + match.group(3)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def now_stamp() -> bytes:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


def stamp_nanos(stamp: bytes) -> int:
    """An RFC 3339 time as integer nanoseconds: exact, so two frames' times compare as the daemon wrote
    them (Docker trims trailing zeros, so the texts themselves do not sort)."""
    text = stamp.decode()
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$", text)
    if match is None:
        return int(stamp_seconds(stamp) * 1e9)
    whole = stamp_seconds(match.group(1) + match.group(3))
    return int(whole) * 1_000_000_000 + int((match.group(2) or "0")[:9].ljust(9, "0"))


class LogSink:
    """Where a job's output goes: masked to `show`, masked and timestamped into `stored`.

    The live stream (`follow=True`) can end before it delivered the last frames the daemon logged (a
    short job's only output, a last line without a newline). So the sink remembers where the stream
    got to (the last frame's time, and the frames seen at that time), and `catch_up` feeds it the
    whole log read again after the exit: what was already streamed is skipped, the rest is shown and
    stored, so nothing is lost and nothing doubled.
    """

    def __init__(self, stored: IO[bytes], show: Callable[[bytes], None], masker: Masker) -> None:
        self.stored = stored
        self.show = show
        self.masker = masker
        self._stamp = b""
        self._line_start = True
        self._last: int | None = None  # the time of the last frame streamed, in nanoseconds
        self._at_last: list[bytes] = []  # the frames streamed with that time (a long line comes in parts)
        self._untimed = 0  # frames without a time (a log read without timestamps): counted instead

    def frame(self, frame: bytes) -> None:
        stamp, text = split_frame(frame)
        if stamp is not None:
            self._stamp = stamp
            nanos = stamp_nanos(stamp)
            if nanos != self._last:
                self._last, self._at_last = nanos, []
            self._at_last.append(frame)
        else:
            self._untimed += 1
        self._emit(self.masker.feed(text))

    def catch_up(self, frames: Iterable[bytes]) -> int:
        """Feed the frames of the complete log (read after the exit) that the stream missed; how many."""
        fed, untimed, at_last = 0, 0, list(self._at_last)
        last = self._last
        for frame in frames:
            stamp, _ = split_frame(frame)
            if stamp is None:
                untimed += 1
                if untimed <= self._untimed:
                    continue
            elif last is not None:
                nanos = stamp_nanos(stamp)
                if nanos < last:
                    continue
                if nanos == last and frame in at_last:
                    at_last.remove(frame)
                    continue
            self.frame(frame)
            fed += 1
        return fed

    def close(self) -> None:
        self._emit(self.masker.flush())
        if not self._line_start:
            self.stored.write(b"\n")
            self._line_start = True
        self.stored.flush()

    def _emit(self, text: bytes) -> None:
        if not text:
            return
        self.show(text)
        stamp = self._stamp or now_stamp()
        for line in text.splitlines(keepends=True):
            if self._line_start:
                self.stored.write(stamp + b" ")
            self.stored.write(line)
            self._line_start = line.endswith(b"\n")


def stream_until_exit(backend: Backend, container: Any, sink: LogSink) -> Exit:
    """Stream the job's log into `sink` while it runs; after the exit, read the whole log once more and
    feed what the live stream missed (see `LogSink`). The exit is returned."""
    for frame in backend.logs(container, follow=True, timestamps=True):
        sink.frame(frame)
    exit_info = backend.wait(container)
    with contextlib.suppress(DtrunError):  # the container went with its log: the stream is all there is
        sink.catch_up(backend.logs(container, follow=False, timestamps=True))
    return exit_info


def parse_since(value: str, now: float | None = None) -> float:
    """`5m`, `2h`, `30s`, `1d` before now, or an ISO 8601 time -> epoch seconds."""
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
    if match:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return now - float(match.group(1)) * unit
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DtrunError(f"cannot read --since '{value}'",
                         hint="give a relative time (30s, 5m, 2h, 1d) or an ISO 8601 time "
                         "(2024-05-01T12:00:00Z)") from None
    if when.tzinfo is None:
        when = when.astimezone()  # a time without zone is the user's local time
    return when.timestamp()


def stored_lines(lines: Iterable[bytes], since: float | None = None) -> Iterator[tuple[float, bytes]]:
    """The (time, text) of each stored line at or after `since`."""
    last = 0.0
    for line in lines:
        stamp, text = split_frame(line)
        if stamp is not None:
            last = stamp_seconds(stamp)
        if since is None or last >= since:
            yield last, text
