"""Parsing YAML with PyYAML into a `Document` that knows the position of every value.

Kept apart from `dtrun.spec.yamlpos` so that PyYAML (~9 ms to import) loads only when a file has to
be parsed: a file parsed before comes from `dtrun.spec.yamlcache`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dtrun.errors import Position, SpecError
from dtrun.spec.yamlpos import Document, PathKey, RawFloat


def _position(file: Path, node: yaml.Node) -> Position:
    mark = node.start_mark
    return Position(file, mark.line + 1, mark.column + 1)


def parse(file: Path, text: str) -> Document:
    """Parse one YAML text into a `Document`; syntax errors become a `SpecError` with the line."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        doc = Document(file, None)
        if root is not None:
            doc.data = _convert(loader, root, (), doc, set())
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file)
        problem = exc.problem or exc.context or "invalid YAML"
        line = text.splitlines()[pos.line - 1] if 0 < pos.line <= len(text.splitlines()) else ""
        hint = ("inside [ ] or { }, a value with ${{ ... }} must be quoted: [\"echo ${{ name }}\"]"
                if "${{" in line else "check the indentation and quoting on this line and the one before it")
        raise SpecError(f"YAML syntax error: {problem}", position=pos, hint=hint) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(file, text, exc) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error: {exc}", position=Position(file)) from None
    finally:
        if loader is not None:
            loader.dispose()


def _reader_error(file: Path, text: str, exc: yaml.reader.ReaderError) -> SpecError:
    """A character YAML does not allow (a control character, say): point at it."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return SpecError(f"YAML does not allow the character #x{code:04x} here", position=Position(file, line, column),
                     hint="remove it, or write it as an escape (\\x..) inside double quotes")


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: PathKey, doc: Document, active: set[int]) -> Any:
    doc.positions.setdefault(path, _position(doc.file, node))
    if id(node) in active:
        raise SpecError("recursive YAML alias", position=_position(doc.file, node))
    if isinstance(node, yaml.MappingNode):
        active.add(id(node))
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("a mapping key must be a plain value", position=_position(doc.file, key_node))
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                raise SpecError(f"duplicate key '{key}'", position=_position(doc.file, key_node))
            where: PathKey = (*path, key)
            doc.keys[where] = _position(doc.file, key_node)
            result[key] = _convert(loader, value_node, where, doc, active)
        active.discard(id(node))
        return result
    if isinstance(node, yaml.SequenceNode):
        active.add(id(node))
        items = [_convert(loader, item, (*path, i), doc, active) for i, item in enumerate(node.value)]
        active.discard(id(node))
        return items
    value = loader.construct_object(node, deep=True)
    if isinstance(node, yaml.ScalarNode) and isinstance(value, str):
        doc.styles[path] = node.style or ""
        if node.style == "|":
            doc.indents[path] = _block_indent(node)
    if isinstance(value, float) and isinstance(node, yaml.ScalarNode):
        return RawFloat(value, node.value)
    return value


def _block_indent(node: yaml.ScalarNode) -> int:
    """The indentation of a `|` block's first content line (where its text starts)."""
    buffer = node.start_mark.buffer
    if not buffer:
        return 0
    newline = buffer.find("\n", node.start_mark.index)
    if newline < 0:
        return 0
    line = buffer[newline + 1 :].split("\n", 1)[0]
    return len(line) - len(line.lstrip(" "))
