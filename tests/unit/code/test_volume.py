"""The tar that lands a delta in a code volume, extracted the way the daemon does (in order, hard links
to files already there), into a folder standing in for the volume."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from dtrun.code.delta import compute_delta
from dtrun.code.index import DigestIndex
from dtrun.code.manifest import Manifest, build_manifest
from dtrun.code.tarstream import ChunkReader
from dtrun.code.volume import HEAD, land_chunks, object_path, overlay_options, tree_dir, volume_name


def _land(volume: Path, root: Path, new: Manifest, old: Manifest | None, txn: str) -> list[tuple[str, bool]]:
    """(name, holds bytes) of every member, extracted in order."""
    delta = compute_delta(old, new)
    with tarfile.open(fileobj=io.BufferedReader(ChunkReader(land_chunks(root, new, delta, txn))),
                      mode="r|") as tar:
        names = []
        for member in tar:
            names.append((member.name, member.isfile()))
            target = volume / member.name
            if (target.exists() or target.is_symlink()) and not (target.is_dir() and member.isdir()):
                target.unlink()  # as the daemon does: an existing file is replaced, not written through
            tar.extract(member, volume, set_attrs=member.isdir() is False)
    return names


def _tree(volume: Path, build: str) -> dict[str, bytes | str]:
    base = volume / tree_dir(build)
    out: dict[str, bytes | str] = {}
    for path in sorted(p for p in base.rglob("*") if not p.is_dir() or p.is_symlink()):
        rel = path.relative_to(base).as_posix()
        out[rel] = os.readlink(path) if path.is_symlink() else path.read_bytes()
    return out


def test_a_delta_lands_as_a_new_tree_beside_the_old_one(tmp_path: Path) -> None:
    root, volume = tmp_path / "project", tmp_path / "volume"
    (root / "data").mkdir(parents=True)
    volume.mkdir()
    (root / "a.py").write_text("print(1)\n")
    (root / "same.py").write_text("print(1)\n")
    (root / "data" / "big.bin").write_bytes(b"x" * 100_000)
    (root / "gone.txt").write_text("bye")
    (root / "latest").symlink_to("data/big.bin")
    files = ["a.py", "data/big.bin", "gone.txt", "latest", "same.py"]
    first = build_manifest(root, files, DigestIndex(None))
    names = _land(volume, root, first, None, "t1")
    assert sum(data and n.startswith(f"trees/{first.digest}-t1/") for n, data in names) == 3  # a.py = same.py
    assert [n for n, _ in names[-3:]] == [f"trees/{first.digest}.json", f"trees/{first.digest}.ok", HEAD]
    assert (volume / f"trees/{first.digest}.ok").read_text() == f"{first.digest}-t1"
    assert _tree(volume, f"{first.digest}-t1") == {"a.py": b"print(1)\n", "data/big.bin": b"x" * 100_000,
                                    "gone.txt": b"bye", "latest": "data/big.bin", "same.py": b"print(1)\n"}

    (root / "a.py").write_text("print(2)\n")
    (root / "data" / "big.bin").rename(root / "moved.bin")
    (root / "gone.txt").unlink()
    (root / "new.py").write_text("new\n")
    second = build_manifest(root, ["a.py", "latest", "moved.bin", "new.py", "same.py"], DigestIndex(None))
    names = _land(volume, root, second, Manifest.from_json((volume / HEAD).read_text()), "t2")
    sent = [n for n, data in names if data and n.startswith(f"trees/{second.digest}-t2/")]
    assert len(sent) == 2  # a.py's and new.py's bytes: not the 100 kB file that moved
    assert _tree(volume, f"{second.digest}-t2") == {"a.py": b"print(2)\n", "latest": "data/big.bin",
                                                   "moved.bin": b"x" * 100_000, "new.py": b"new\n",
                                                   "same.py": b"print(1)\n"}
    assert _tree(volume, f"{first.digest}-t1")["a.py"] == b"print(1)\n"  # a running job's tree is never touched
    moved = volume / tree_dir(f"{second.digest}-t2") / "moved.bin"
    assert moved.stat().st_ino == (volume / object_path(second.entries["moved.bin"].object_name)).stat().st_ino
    assert json.loads((volume / HEAD).read_text()) == json.loads(second.to_json())


def test_a_stream_cut_short_marks_no_tree_complete(tmp_path: Path) -> None:
    root, volume = tmp_path / "project", tmp_path / "volume"
    root.mkdir()
    volume.mkdir()
    (root / "f").write_bytes(b"1" * 5000)
    manifest = build_manifest(root, ["f"], DigestIndex(None))
    (root / "f").write_bytes(b"2" * 5000)  # edited after the snapshot
    with pytest.raises(Exception, match="changed while dtrun shipped it"):
        _land(volume, root, manifest, None, "t1")
    assert not (volume / "objects").exists() and not (volume / HEAD).exists()


def test_names_and_overlay_options() -> None:
    assert volume_name("github.com/a/b") == volume_name("github.com/a/b")
    assert volume_name("github.com/a/b") != volume_name("github.com/a/b", store="s3://team")
    assert volume_name("x").startswith("dtrun-code-") and len(volume_name("x")) == len("dtrun-code-") + 24
    options = overlay_options("/v/code/_data/trees/t", "/v/up/_data", "/v/work/_data")
    assert options == {"type": "overlay", "device": "overlay",
                       "o": "lowerdir=/v/code/_data/trees/t,upperdir=/v/up/_data,workdir=/v/work/_data"}
    with pytest.raises(ValueError, match="overlay"):
        overlay_options("/a,b", "/u", "/w")


def test_two_uploads_of_one_tree_never_touch_each_others_folder(tmp_path: Path) -> None:
    root, volume = tmp_path / "project", tmp_path / "volume"
    root.mkdir()
    volume.mkdir()
    (root / "a.py").write_text("a\n")
    manifest = build_manifest(root, ["a.py"], DigestIndex(None))
    _land(volume, root, manifest, None, "t1")
    in_use = volume / tree_dir(f"{manifest.digest}-t1") / "a.py"
    inode = in_use.stat().st_ino
    _land(volume, root, manifest, None, "t2")  # a second client that did not see the first finish
    assert in_use.stat().st_ino == inode and in_use.read_text() == "a\n"
    assert (volume / f"trees/{manifest.digest}.ok").read_text() == f"{manifest.digest}-t2"
