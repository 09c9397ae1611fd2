"""YAML loading that remembers where every value came from.

Validation (`dtrun.spec.typed`) reports problems by location path (``("workflows", 0, "provider")``);
this loader records the file position of every path so that any problem can be reported as
``file:line:col``. Float scalars keep their source text, so ``python: 3.10`` can mean "3.10" and not 3.1.
The parsing itself is in `dtrun.spec.yamlparse`; a file parsed before comes from `dtrun.spec.yamlcache`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import field
from pathlib import Path
from typing import Any

from dtrun.errors import Position, SpecError
from dtrun.structs import struct

PathKey = tuple[str | int, ...]


class RawFloat(float):
    """A float that remembers how it was written (``3.10`` stays ``"3.10"``)."""

    raw: str

    def __new__(cls, value: float, raw: str) -> RawFloat:
        obj = super().__new__(cls, value)
        obj.raw = raw
        return obj


@struct
class Document:
    """One loaded file: its plain data and the position of every value in it."""

    file: Path
    data: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)
    #: Scalar style of each string ("" plain, "'", '"', "|", ">") and the indentation of `|` blocks,
    #: so that a position inside a string (a bad `${{ x }}`) can be pointed at exactly.
    styles: dict[PathKey, str] = field(default_factory=dict)
    indents: dict[PathKey, int] = field(default_factory=dict)
    #: Where each mapping key itself was written (an unknown property is reported at its key).
    keys: dict[PathKey, Position] = field(default_factory=dict)

    def position(self, path: Iterable[str | int]) -> Position:
        """The position of `path`, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.positions:
                return self.positions[key]
            key = key[:-1]
        return self.positions.get((), Position(self.file, 1, 1))

    def key_position(self, path: Iterable[str | int]) -> Position:
        """Where the key of `path` was written, else where its value is."""
        key = tuple(path)
        return self.keys.get(key) or self.position(key)


def load_yaml(file: Path, text: str | None = None) -> Document:
    """One YAML file as a `Document`; syntax errors become a `SpecError` with the line. A text parsed
    before (the same bytes at the same path) is read back from the client's cache without PyYAML."""
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read {file}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise SpecError(f"{file} is not UTF-8 text", position=Position(file)) from exc
    from dtrun.spec import yamlcache

    doc = yamlcache.read(file, text)
    if doc is None:
        from dtrun.spec.yamlparse import parse

        doc = parse(file, text)
        yamlcache.write(doc, text)
    return doc


def side_files(spec_dirs: list[Path], stem: str) -> list[Path]:
    """The project's `<stem>.yaml` / `<stem>.yml` files beside its workflows (variables, providers)."""
    return [d / f"{stem}.{s}" for d in spec_dirs for s in ("yaml", "yml") if (d / f"{stem}.{s}").is_file()]


def documents(files: list[Path], errors: list[SpecError]) -> Iterator[Document]:
    """Each file that parses and is not empty; a file that does not parse adds its error to `errors`
    (every broken file is reported, not only the first)."""
    for file in files:
        try:
            doc = load_yaml(file)
        except SpecError as exc:
            errors.append(exc)
            continue
        if doc.data is not None:
            yield doc
