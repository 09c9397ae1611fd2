from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dtrun.code.listing import list_files


def test_dtrunignore_drops_tracked_and_untracked_paths(make_project: Callable[..., Path]) -> None:
    root = make_project({"a.py": "1", "data/tracked.csv": "x", ".gitignore": "*.log\n", "docs/x.md": "d"})
    (root / "data" / "big.bin").write_text("b")
    (root / "new.py").write_text("n")
    (root / "run.log").write_text("l")
    assert list_files(root).files == [".gitignore", "a.py", "data/big.bin", "data/tracked.csv", "docs/x.md",
                                      "new.py"]
    assert list_files(root).untracked == {"data/big.bin", "new.py"}
    (root / ".dtrunignore").write_text("data/\n# a comment\n*.md\n!keep.md\n")
    (root / "docs" / "keep.md").write_text("k")
    listing = list_files(root)
    assert listing.files == [".dtrunignore", ".gitignore", "a.py", "docs/keep.md", "new.py"]
    assert listing.untracked == {".dtrunignore", "docs/keep.md", "new.py"}


def test_a_deleted_tracked_file_is_not_listed(make_project: Callable[..., Path]) -> None:
    root = make_project({"a": "1", "b": "2"})
    (root / "b").unlink()
    assert list_files(root).files == ["a"]
