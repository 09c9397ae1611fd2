from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dtrun.code import manifest as manifest_mod
from dtrun.code.index import DigestIndex, index_path
from dtrun.code.manifest import build_manifest

OLD = time.time() - 3600


def _age(root: Path, *names: str) -> None:
    for name in names:
        os.utime(root / name, (OLD, OLD))


def _digests(root: Path, files: list[str], index: DigestIndex) -> dict[str, str]:
    manifest = build_manifest(root, files, index)
    index.save()
    return {p: e.digest for p, e in manifest.entries.items()}


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = manifest_mod.file_digest

    def counted(path: Path, size: int) -> str:
        reads.append(path.name)
        return real(path, size)

    monkeypatch.setattr(manifest_mod, "file_digest", counted)
    return reads


def test_unchanged_files_are_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "p"
    root.mkdir()
    for name in ("a", "b", "c"):
        (root / name).write_text(name * 10)
    _age(root, "a", "b", "c")
    reads = _counting(monkeypatch)
    path = index_path(root)
    first = _digests(root, ["a", "b", "c"], DigestIndex(path))
    assert sorted(reads) == ["a", "b", "c"] and path.is_file()
    reads.clear()
    assert _digests(root, ["a", "b", "c"], DigestIndex(path)) == first
    assert reads == []
    # same size, mtime put back: the ctime still tells the file changed
    (root / "b").write_text("B" * 10)
    _age(root, "b")
    second = _digests(root, ["a", "b", "c"], DigestIndex(path))
    assert reads == ["b"] and second["b"] != first["b"] and second["a"] == first["a"]


def test_a_file_written_just_now_is_not_trusted_next_time(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "fresh").write_text("x")
    reads = _counting(monkeypatch)
    path = index_path(root)
    _digests(root, ["fresh"], DigestIndex(path))
    _digests(root, ["fresh"], DigestIndex(path))
    assert reads == ["fresh", "fresh"]  # racily clean: hashed again until it is older than the window


def test_a_damaged_index_costs_a_rehash_not_an_error(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "a").write_text("a")
    path = index_path(root)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert _digests(root, ["a"], DigestIndex(path))["a"]


def test_entries_of_files_gone_are_dropped(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    for name in ("a", "b"):
        (root / name).write_text(name)
    _age(root, "a", "b")
    path = index_path(root)
    _digests(root, ["a", "b"], DigestIndex(path))
    _digests(root, ["a"], DigestIndex(path))
    assert '"b"' not in path.read_text() and '"a"' in path.read_text()


def test_a_pass_over_part_of_the_project_keeps_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    for name in ("a", "b", "c"):
        (root / name).write_text(name)
    _age(root, "a", "b", "c")
    path = index_path(root)
    _digests(root, ["a", "b", "c"], DigestIndex(path, root))
    (root / "c").unlink()
    _digests(root, ["a"], DigestIndex(path, root))  # e.g. the code without the folders inputs mount on
    assert '"b"' in path.read_text() and '"c"' not in path.read_text()
