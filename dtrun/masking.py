"""Masking secret values in job output, as it streams.

Every occurrence of a secret's value becomes `***`, in the terminal and in the stored logs. A
multi-line secret is masked line by line (a job that prints a key file prints it one line at a time,
and tools re-wrap lines). Output arrives in arbitrary chunks, so a value may be split across two
reads: the masker holds back the shortest tail that could still grow into a secret and releases it
once it cannot, which makes the streamed result identical to masking the whole text at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"***"


def patterns(values: Iterable[str]) -> list[bytes]:
    """What to look for: each value, and each non-blank line of a multi-line value (longest first)."""
    found: set[bytes] = set()
    for value in values:
        lines = [line.strip() for line in value.replace("\r", "\n").split("\n")]
        if len(lines) == 1 and value:
            found.add(value.encode())
        found.update(line.encode() for line in lines if line)
    return sorted(found, key=lambda p: (-len(p), p))


class Masker:
    """A streaming masker: `feed` chunks, then `flush` at the end of the stream."""

    def __init__(self, values: Iterable[str]) -> None:
        self.patterns = patterns(values)
        self._regex = re.compile(b"|".join(re.escape(p) for p in self.patterns)) if self.patterns else None
        self._longest = max((len(p) for p in self.patterns), default=0)
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        if self._regex is None:
            return chunk
        data = self._held + chunk
        out, pos = self._scan(data, final=False)
        self._held = data[pos:]
        return out

    def flush(self) -> bytes:
        data, self._held = self._held, b""
        if self._regex is None:
            return data
        return self._scan(data, final=True)[0]

    def mask(self, data: bytes) -> bytes:
        """Mask a complete text (no state is kept)."""
        if self._regex is None:
            return data
        return self._regex.sub(MASK, data)

    def _scan(self, data: bytes, *, final: bool) -> tuple[bytes, int]:
        """Mask what is certain; return it and where the undecided tail starts."""
        assert self._regex is not None
        parts: list[bytes] = []
        pos = 0
        while True:
            hold = len(data) if final else self._hold_from(data, pos)
            match = self._regex.search(data, pos)
            if match is not None and match.start() < hold:
                parts.append(data[pos:match.start()])
                parts.append(MASK)
                pos = match.end()
                continue
            parts.append(data[pos:hold])
            return b"".join(parts), hold

    def _hold_from(self, data: bytes, pos: int) -> int:
        """The first position from which the rest of `data` is a proper prefix of some secret."""
        for start in range(max(pos, len(data) - self._longest + 1), len(data)):
            tail = data[start:]
            if any(len(p) > len(tail) and p.startswith(tail) for p in self.patterns):
                return start
        return len(data)
