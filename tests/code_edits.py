"""Edits to a project's files as a user makes them, for the code-shipping tests (unit and integration)."""

from __future__ import annotations

import shutil
from pathlib import Path


def write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def apply_edits(root: Path, ops: list[tuple[str, ...]]) -> None:
    """("write", path, text), ("rm", path: a file or a whole folder), ("mv", old, new), ("ln", path, target)."""
    for op, name, *rest in ops:
        path = root / name
        if op == "write":
            write(root, name, rest[0])
        elif op == "rm":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        elif op == "mv":
            path.rename(root / rest[0])
        else:
            path.unlink(missing_ok=True)
            path.symlink_to(rest[0])
