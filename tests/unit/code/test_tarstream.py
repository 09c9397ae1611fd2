from __future__ import annotations

import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from dtrun.code.index import DigestIndex
from dtrun.code.manifest import build_manifest, large_untracked
from dtrun.code.tarstream import ChunkReader, tree_chunks
from dtrun.errors import ProjectError


def test_a_big_file_streams_in_flat_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(48 * 1024 * 1024)  # sparse: cheap to make, 48 MiB to read
    manifest = build_manifest(tmp_path, ["big.bin"], DigestIndex(None))
    tracemalloc.start()
    total = sum(len(chunk) for chunk in tree_chunks(tmp_path, manifest))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total >= 48 * 1024 * 1024
    assert peak < 6 * 1024 * 1024, f"peak {peak} bytes while streaming a 48 MiB file"


def test_the_stream_is_a_tar_of_the_tree(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "sub" / "run.sh").chmod(0o755)
    (tmp_path / "link").symlink_to("sub/run.sh")
    manifest = build_manifest(tmp_path, ["link", "sub/run.sh"], DigestIndex(None))
    with tarfile.open(fileobj=io.BufferedReader(ChunkReader(tree_chunks(tmp_path, manifest))), mode="r|") as tar:
        seen = {m.name: (m, tar.extractfile(m).read() if m.isfile() else None) for m in tar}  # type: ignore[union-attr]
    assert list(seen) == ["sub", "link", "sub/run.sh"]
    assert seen["sub/run.sh"][0].mode == 0o755 and seen["sub/run.sh"][1] == b"#!/bin/sh\n"
    assert seen["link"][0].linkname == "sub/run.sh"


def test_a_file_changed_after_the_snapshot_stops_the_stream(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"a" * 3000)
    manifest = build_manifest(tmp_path, ["f"], DigestIndex(None))
    (tmp_path / "f").write_bytes(b"b" * 3000)
    sent = bytearray()
    with pytest.raises(ProjectError, match="f changed while dtrun shipped it"):
        for chunk in tree_chunks(tmp_path, manifest):
            sent += chunk
    assert b"b" * 3000 not in sent  # the content that does not match the digest never went out whole


def test_large_untracked_files_are_pointed_out_biggest_first(tmp_path: Path) -> None:
    for name, size in (("data/a.bin", 70), ("data/b.bin", 40), ("small.txt", 1), ("tracked.bin", 500)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        with (tmp_path / name).open("wb") as handle:
            handle.truncate(size)
    manifest = build_manifest(tmp_path, ["data/a.bin", "data/b.bin", "small.txt", "tracked.bin"], DigestIndex(None))
    untracked = ["data/a.bin", "data/b.bin", "small.txt"]
    assert large_untracked(manifest, untracked, threshold=112) is None
    notice = large_untracked(manifest, untracked, threshold=100)
    assert notice is not None and notice.total == 111
    assert notice.paths == [("data/a.bin", 70), ("data/b.bin", 40), ("small.txt", 1)]
    assert ".dtrunignore" in notice.hint and "data/a.bin" in notice.hint


@pytest.mark.parametrize(("name", "kind", "link"), [
    ("a/b.py", tarfile.REGTYPE, ""), ("folder", tarfile.DIRTYPE, ""), ("l", tarfile.SYMTYPE, "../x"),
    ("h", tarfile.LNKTYPE, "objects/ab/cd"), ("d" * 99 + "x", tarfile.REGTYPE, ""), ("é.txt", tarfile.REGTYPE, ""),
    ("long/" * 30 + "name", tarfile.REGTYPE, ""),
])
def test_headers_are_the_ones_tarfile_writes(name: str, kind: bytes, link: str) -> None:
    from dtrun.code.tarstream import _header

    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode, info.mtime = kind, link, 4321, 0o640, 1_700_000_000
    assert _header(info) == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_an_old_file_unchanged_since_hashing_is_not_hashed_again_but_an_edit_is_caught(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib as real_hashlib
    import os

    from dtrun.code import tarstream

    (tmp_path / "f").write_bytes(b"a" * 3000)
    os.utime(tmp_path / "f", (1e9, 1e9))
    manifest = build_manifest(tmp_path, ["f"], DigestIndex(None))
    calls: list[int] = []

    class Counting:
        @staticmethod
        def sha256() -> object:
            calls.append(1)
            return real_hashlib.sha256()

    monkeypatch.setattr(tarstream, "hashlib", Counting)
    assert sum(len(c) for c in tree_chunks(tmp_path, manifest)) > 3000 and calls == []
    (tmp_path / "f").write_bytes(b"b" * 3000)  # same size...
    os.utime(tmp_path / "f", (1e9, 1e9))  # ...and mtime put back: the ctime tells
    with pytest.raises(ProjectError, match="changed while dtrun shipped it"):
        list(tree_chunks(tmp_path, manifest))
