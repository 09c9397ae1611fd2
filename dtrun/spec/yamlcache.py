"""Parsed YAML files kept for the next command, read back without PyYAML.

A command that loads the same workflows file as the last one gets its `Document` from the client's
cache folder with `marshal` (built into Python: nothing to import) instead of importing PyYAML and
parsing the text again: ~10 ms of a ~0.4 s `dtrun run` (issue 19).

An entry holds the whole text it was made from, and is used only for exactly that text at that path:
nothing stale can come back, whatever the file's timestamps say. It also holds the Python version
(marshal's format may change between them) and a format number, raised whenever the parser's output
changes. A missing, damaged or foreign entry is a miss; a failed write is ignored (it is a cache). The
folder keeps the `KEEP` entries written last, one per file path.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
import zlib
from pathlib import Path
from typing import Any

from dtrun.errors import Position
from dtrun.spec.yamlpos import Document, PathKey, RawFloat

#: raise when `dtrun.spec.yamlparse` makes different Documents from the same text
FORMAT = 1
#: entries kept; the least recently written go first (a CI job in a fresh folder each time adds one per run)
KEEP = 256
_HEADER = (FORMAT, tuple(sys.version_info[:2]))


class _Unkept(Exception):
    """A value marshal cannot hold as it is (a YAML timestamp, binary, a set): the file is not kept."""


def read(file: Path, text: str) -> Document | None:
    """The Document parsed earlier from exactly `text` at `file`, or None."""
    where = os.path.abspath(file)
    try:
        entry = marshal.loads(_entry(where).read_bytes())
        header, path, source, data, positions, styles, indents, keys = entry
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if header != _HEADER or path != where or source != text:
        return None
    return Document(file, _decode(data), _positions(file, positions), styles, indents, _positions(file, keys))


def write(doc: Document, text: str) -> None:
    """Keep `doc`, parsed from `text`, for the next command that reads the same text there."""
    from dtrun.cachefile import write_bytes

    where = os.path.abspath(doc.file)
    try:
        entry = (_HEADER, where, text, _encode(doc.data), _lines(doc.positions), doc.styles, doc.indents,
                 _lines(doc.keys))
        path = _entry(where)
        write_bytes(path, marshal.dumps(entry))
        _trim(path.parent, KEEP)
    except (_Unkept, OSError, ValueError):
        return


def _trim(folder: Path, keep: int) -> None:
    """Remove all but the `keep` most recently written entries."""
    with os.scandir(folder) as found:
        entries = [e for e in found if e.name.endswith(".bin")]
    if len(entries) <= keep:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in entries[:-keep]:
        with contextlib.suppress(FileNotFoundError):  # another command trimmed it first
            os.unlink(entry.path)


def _entry(path: str) -> Path:
    from dtrun.cachefile import cache_path

    return cache_path("yaml") / f"{zlib.crc32(path.encode()):08x}.bin"


def _encode(value: Any) -> Any:
    """YAML data as marshal keeps it: a float with its source text (`RawFloat`) becomes a tuple (YAML
    data has no tuples of its own)."""
    kind = type(value)
    if kind is dict:
        return {k: _encode(v) for k, v in value.items()}
    if kind is list:
        return [_encode(v) for v in value]
    if kind is RawFloat:
        return (float(value), value.raw)
    if value is None or kind in (str, int, bool):
        return value
    raise _Unkept(kind.__name__)


def _decode(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _decode(v) for k, v in value.items()}
    if kind is list:
        return [_decode(v) for v in value]
    if kind is tuple:
        return RawFloat(value[0], value[1])
    return value


def _lines(positions: dict[PathKey, Position]) -> dict[PathKey, tuple[int, int]]:
    return {key: (p.line, p.column) for key, p in positions.items()}


def _positions(file: Path, lines: dict[PathKey, tuple[int, int]]) -> dict[PathKey, Position]:
    return {key: Position(file, line, column) for key, (line, column) in lines.items()}
