"""Job logs: Docker's timestamped frames -> masked text for the terminal and timestamped lines to store.

Docker is asked for logs with timestamps, so every frame starts with an RFC 3339 time and a space.
The terminal gets the bare, masked text as it arrives. The stored `logs.txt` keeps one time per line
(`<time> <text>`), so `dtrun logs --since` works on finished jobs exactly as on running ones.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import IO

from dtrun.errors import DtrunError
from dtrun.masking import Masker

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


class LogSink:
    """Where a job's output goes: masked to `show`, masked and timestamped into `stored`."""

    def __init__(self, stored: IO[bytes], show: Callable[[bytes], None], masker: Masker) -> None:
        self.stored = stored
        self.show = show
        self.masker = masker
        self._stamp = b""
        self._line_start = True

    def frame(self, frame: bytes) -> None:
        stamp, text = split_frame(frame)
        if stamp is not None:
            self._stamp = stamp
        self._emit(self.masker.feed(text))

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
