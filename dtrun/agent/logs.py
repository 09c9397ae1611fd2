"""The job's log as the client stores it: masked, one `<RFC 3339 time> <text>` per line, in
`jobs/<job>/logs.txt`, uploaded whole every few seconds while the job runs (an object store has no
append; each upload is atomic, so a reader sees an older or a newer log, never half of one)."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from typing import IO

from dtrun.masking import Masker


def now_stamp() -> bytes:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


class LogWriter:
    """Masks and timestamps output into a local file; `echo` gets the masked text as it arrives."""

    def __init__(self, path: str, masker: Masker, echo: IO[bytes] | None = None) -> None:
        self.path = path
        self.masker = masker
        self.echo = echo
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._line_start = self._file.tell() == 0 or _ends_with_newline(path)
        self._lock = threading.Lock()
        self.version = 0

    def feed(self, chunk: bytes) -> None:
        self._emit(self.masker.feed(chunk))

    def close(self) -> None:
        self._emit(self.masker.flush())
        with self._lock:
            if not self._line_start:
                self._file.write(b"\n")
                self._line_start = True
                self.version += 1
            self._file.close()

    def _emit(self, text: bytes) -> None:
        if not text:
            return
        if self.echo is not None:
            self.echo.write(text)
            self.echo.flush()
        stamp = now_stamp()
        with self._lock:
            for line in text.splitlines(keepends=True):
                if self._line_start:
                    self._file.write(stamp + b" ")
                self._file.write(line)
                self._line_start = line.endswith(b"\n")
            self._file.flush()
            self.version += 1


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
