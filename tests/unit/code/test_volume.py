"""The tars that land trees in a code volume as stacked layers, extracted the way the daemon does (in
order, replacing what is there, hard links to files already there) into a folder standing in for the
volume; a tree is then read back as overlayfs shows its layers (whiteouts hide what lies below).
The real daemon and real overlay mounts: tests/integration/test_code_volume.py."""

from __future__ import annotations

import io
import itertools
import os
import random
import shutil
import tarfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from dtrun.backends.docker import codevolumes as dv
from dtrun.code import volume as cv
from dtrun.code.delta import compute_delta
from dtrun.code.index import DigestIndex
from dtrun.code.manifest import Manifest, build_manifest
from dtrun.code.tarstream import ChunkReader
from dtrun.code.volume import HEAD, Head, layer_dir, max_layers, object_path, overlay_options, volume_name
from tests.code_edits import apply_edits, write


class FolderAnchor:
    """The anchor's two API calls on a local folder. `devices=False` is a daemon in a user namespace:
    its extraction skips character devices without a word (a fault no test daemon here can show)."""

    name = "folder-anchor"

    def __init__(self, volume: Path, *, devices: bool = True) -> None:
        self.volume, self.devices = volume, devices
        self.id = uuid.uuid4().hex  # what the client's record of complete trees is keyed by
        self.whiteouts: set[str] = set()  # stand-ins for the 0:0 devices (mknod wants root)
        self.members: list[str] = []

    def put_archive(self, path: str, data: bytes | Iterable[bytes]) -> bool:
        assert path == cv.CODE_MOUNT
        chunks = [data] if isinstance(data, bytes) else data
        self.members = []
        with tarfile.open(fileobj=io.BufferedReader(ChunkReader(chunks)), mode="r|") as tar:
            for member in tar:
                self.members.append(member.name)
                target = self.volume / member.name
                if (target.exists() or target.is_symlink()) and not (target.is_dir() and member.isdir()):
                    shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
                self.whiteouts.discard(member.name)
                if member.ischr():
                    if self.devices and (member.devmajor, member.devminor) == (0, 0):
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(b"")
                        self.whiteouts.add(member.name)
                    continue
                tar.extract(member, self.volume, set_attrs=not member.isdir())
        return True

    def get_archive(self, path: str) -> tuple[list[bytes], dict[str, Any]]:
        from dtrun.backends.docker.engineapi import errors as api_errors

        rel = path.removeprefix(cv.CODE_MOUNT + "/")
        target = self.volume / rel
        if not target.exists():
            raise api_errors.NotFound("no such file", 404)
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            if rel in self.whiteouts:
                info = tarfile.TarInfo(target.name)
                info.type = tarfile.CHRTYPE
                tar.addfile(info)
            else:
                tar.add(target, arcname=target.name)
        return [out.getvalue()], {}

    def view(self, layers: str) -> dict[str, bytes | str]:
        """The tree as an overlay mount of its layers shows it (top first in `layers`)."""
        seen: dict[str, bytes | str] = {}
        for layer in reversed(cv.split_layers(layers)):
            base = self.volume / layer_dir(layer)
            assert base.is_dir(), f"layer {layer} is missing"
            for path in sorted(base.rglob("*")):
                rel = path.relative_to(base).as_posix()
                hidden = [p for p in seen if p == rel or p.startswith(rel + "/") or rel.startswith(p + "/")]
                if path.is_dir() and not path.is_symlink():
                    hidden = [p for p in hidden if not p.startswith(rel + "/")]  # folders merge
                for p in hidden:
                    del seen[p]
                if f"{layer_dir(layer)}/{rel}" in self.whiteouts or (path.is_dir() and not path.is_symlink()):
                    continue
                seen[rel] = os.readlink(path) if path.is_symlink() else path.read_bytes()
        return seen


@pytest.fixture(autouse=True)
def client_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's record of complete trees (`coderecord`) in the test's own data folder."""
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "client"))


def _manifest(root: Path) -> Manifest:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return build_manifest(root, files, DigestIndex(None))


def _on_disk(root: Path) -> dict[str, bytes | str]:
    return {p.relative_to(root).as_posix(): os.readlink(p) if p.is_symlink() else p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def _layer_files(volume: Path, layers: str) -> set[str]:
    base = volume / layer_dir(cv.split_layers(layers)[0])
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if not p.is_dir() or p.is_symlink()}


def test_each_change_lands_as_a_thin_layer_and_the_stack_shows_the_project(tmp_path: Path) -> None:
    root, volume = tmp_path / "p", tmp_path / "v"
    volume.mkdir()
    for name, text in {"a.py": "a1", "same.py": "a1", "gone.txt": "bye", "pkg/x.py": "x", "pkg/sub/y.py": "y",
                       "data/big.bin": "B" * 50_000, "lib/m.py": "m", "f": "file"}.items():
        write(root, name, text)
    (root / "latest").symlink_to("data/big.bin")
    anchor = FolderAnchor(volume)
    layers, delta = dv.put_code(anchor, root, _manifest(root))
    assert delta is not None and len(delta.needed) == 7 and len(cv.split_layers(layers)) == 1
    assert anchor.view(layers) == _on_disk(root)
    assert dv.put_code(anchor, root, _manifest(root)) == (layers, None)  # nothing changed: nothing sent

    steps: list[tuple[str, list[tuple[str, ...]], set[str]]] = [  # (what, edits, the files the layer holds)
        ("changed", [("write", "a.py", "a2")], {"a.py"}),
        ("added", [("write", "new/n.py", "n")], {"new/n.py"}),
        ("deleted", [("rm", "gone.txt")], {"gone.txt"}),
        ("renamed", [("mv", "data/big.bin", "big.bin")], {"big.bin", "data"}),
        ("folder deleted", [("rm", "pkg")], {"pkg"}),
        ("folder became a file", [("rm", "lib"), ("write", "lib", "now a file")], {"lib"}),
        ("file became a folder", [("rm", "f"), ("write", "f/inside.py", "i")], {"f/inside.py"}),
        ("link retargeted", [("ln", "latest", "big.bin")], {"latest"}),
        ("deleted then back", [("write", "gone.txt", "back")], {"gone.txt"}),
    ]
    chain = cv.split_layers(layers)
    for what, edits, holds in steps:
        apply_edits(root, edits)
        layers, delta = dv.put_code(anchor, root, _manifest(root))
        assert delta is not None, what
        assert cv.split_layers(layers)[1:] == chain, f"{what}: not stacked on the latest tree"
        chain = cv.split_layers(layers)
        assert anchor.view(layers) == _on_disk(root), what
        assert _layer_files(volume, layers) == holds, what
    assert delta is not None and delta.bytes_to_send == len("back")
    moved = volume / layer_dir(chain[5]) / "big.bin"  # the rename sent nothing: a link to the object
    assert moved.stat().st_ino == (volume / object_path(_manifest(root).entries["big.bin"].object_name)).stat().st_ino
    head = Head.from_json((volume / HEAD).read_text())
    assert head is not None and head.layers == chain and head.whiteouts is True
    assert head.manifest.digest == _manifest(root).digest


def test_random_edits_through_stacks_and_compactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv, "MAX_LAYERS", 3)
    root, volume = tmp_path / "p", tmp_path / "v"
    volume.mkdir()
    anchor = FolderAnchor(volume)
    rng = random.Random(19)
    names = [f"{d}/{f}" for d in ("a", "a/b", "c", "c/d/e") for f in ("x", "y", "z")] + ["x", "y"]
    for i in range(30):  # files no step touches: a squashed layer stays smaller than the tree
        write(root, f"still/{i}", "same")
    depths = []
    for step in range(40):
        for _ in range(rng.randint(1, 4)):
            name = rng.choice(names)
            path = root / name
            if path.is_file() and rng.random() < 0.5:
                path.unlink()
            elif rng.random() < 0.2 and path.parent.is_dir() and path.parent != root:
                shutil.rmtree(path.parent)
            else:
                blocked = [p for p in path.parents if p.is_file()]  # a file where a folder must go
                for p in blocked:
                    p.unlink()
                if path.is_dir():
                    shutil.rmtree(path)
                write(root, name, rng.choice(["1", "2", "3", f"s{step}"]))
        if not _on_disk(root):
            write(root, "x", "keep")
        layers, _ = dv.put_code(anchor, root, _manifest(root))
        depths.append(len(cv.split_layers(layers)))
        assert anchor.view(layers) == _on_disk(root), f"step {step}"
    assert max(depths) == 3  # a full stack: the next tree squashed onto its full layer, views right throughout
    assert sum(pair == (3, 2) for pair in itertools.pairwise(depths)) >= 10


def test_a_full_stack_gets_one_thin_layer_of_everything_since_its_full_layer(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a stack is as deep as it may get, the next tree is not written whole (a link for every file
    of the repository): its layer holds what changed since the full layer at the bottom, and sits on it."""
    monkeypatch.setattr(cv, "MAX_LAYERS", 3)
    root, volume = tmp_path / "p", tmp_path / "v"
    volume.mkdir()
    for i in range(20):
        write(root, f"src/f{i}.py", f"{i}")
    write(root, "gone.py", "bye")
    anchor = FolderAnchor(volume)
    full, _ = dv.put_code(anchor, root, _manifest(root))
    [base] = cv.split_layers(full)
    edits: list[list[tuple[str, ...]]] = [[("write", "src/f1.py", "one")], [("rm", "gone.py")],
                                          [("write", "new.py", "new")], [("write", "src/f2.py", "two")]]
    depths = []
    for ops in edits:
        apply_edits(root, ops)
        layers, delta = dv.put_code(anchor, root, _manifest(root))
        depths.append(len(cv.split_layers(layers)))
        assert anchor.view(layers) == _on_disk(root)
        if len(depths) == 3:  # the stack was full: this tree sits on the full layer, not on a fourth layer
            assert cv.split_layers(layers)[1:] == [base]
            assert _layer_files(volume, layers) == {"src/f1.py", "gone.py", "new.py"}  # gone.py whited out
            assert delta is not None and delta.bytes_to_send == len("new")  # what the volume had: not again
    assert depths == [2, 3, 2, 3]
    head = Head.from_json((volume / HEAD).read_text())
    assert head is not None and head.layers == cv.split_layers(layers)

    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "other-client"))  # no full layer of its own
    depths = []
    for i in range(3):
        write(root, f"src/f{i + 10}.py", "by the other client")
        layers, _ = dv.put_code(anchor, root, _manifest(root))
        depths.append(len(cv.split_layers(layers)))
    assert depths == [1, 2, 3] and anchor.view(layers) == _on_disk(root)
    depths = []
    for i in range(12):  # most of the tree changes since that full layer: a full layer again
        write(root, f"src/f{i}.py", "rewritten")
        layers, _ = dv.put_code(anchor, root, _manifest(root))
        depths.append(len(cv.split_layers(layers)))
        assert anchor.view(layers) == _on_disk(root)
    assert depths == [2, 3, 2, 3, 2, 3, 2, 3, 1, 2, 3, 2]  # full again once over half the tree changed since


def test_a_daemon_without_whiteouts_gets_whole_trees_where_something_was_deleted(tmp_path: Path) -> None:
    root, volume = tmp_path / "p", tmp_path / "v"
    volume.mkdir()
    write(root, "a", "1")
    write(root, "b", "1")
    anchor = FolderAnchor(volume, devices=False)
    dv.put_code(anchor, root, _manifest(root))
    write(root, "a", "2")
    layers, _ = dv.put_code(anchor, root, _manifest(root))
    assert len(cv.split_layers(layers)) == 2  # no deletion: a thin layer, no need to ask
    (root / "b").unlink()
    layers, _ = dv.put_code(anchor, root, _manifest(root))
    assert len(cv.split_layers(layers)) == 1 and anchor.view(layers) == {"a": b"2"}
    head = Head.from_json((volume / HEAD).read_text())
    assert head is not None and head.whiteouts is False  # asked once per volume
    write(root, "c", "3")
    write(root, "a", "3")
    layers, _ = dv.put_code(anchor, root, _manifest(root))
    (root / "c").unlink()
    layers, _ = dv.put_code(anchor, root, _manifest(root))
    assert cv.WHITEOUT_PROBE not in anchor.members and len(cv.split_layers(layers)) == 1
    assert anchor.view(layers) == {"a": b"3"}


def test_a_stream_cut_short_marks_no_tree_complete(tmp_path: Path) -> None:
    root, volume = tmp_path / "project", tmp_path / "volume"
    volume.mkdir()
    write(root, "f", "1" * 5000)
    manifest = _manifest(root)
    (root / "f").write_bytes(b"2" * 5000)  # edited after the snapshot
    with pytest.raises(Exception, match="changed while dtrun shipped it"):
        FolderAnchor(volume).put_archive(cv.CODE_MOUNT, cv.land_chunks(root, manifest, compute_delta(None, manifest),
                                                                        "0" * 16, None))
    assert not (volume / "objects").exists() and not (volume / HEAD).exists()
    assert not (volume / "trees").exists()


def test_two_uploads_of_one_tree_never_touch_each_others_layer(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root, volume = tmp_path / "project", tmp_path / "volume"
    volume.mkdir()
    write(root, "a.py", "a\n")
    manifest = _manifest(root)
    anchor = FolderAnchor(volume)
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "client-1"))
    first, _ = dv.put_code(anchor, root, manifest)
    in_use = volume / layer_dir(first) / "a.py"
    inode = in_use.stat().st_ino
    # a second client (its own record) that did not see the first finish
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "client-2"))
    (volume / cv.tree_marker(manifest.digest)).unlink()
    second, _ = dv.put_code(anchor, root, manifest)
    assert second != first and in_use.stat().st_ino == inode and in_use.read_text() == "a\n"
    assert (volume / cv.tree_marker(manifest.digest)).read_text() == second


def test_names_options_and_the_depth_limit() -> None:
    assert volume_name("github.com/a/b") == volume_name("github.com/a/b")
    assert volume_name("github.com/a/b") != volume_name("github.com/a/b", store="s3://team")
    assert volume_name("x").startswith("dtrun-code-") and len(volume_name("x")) == len("dtrun-code-") + 24
    options = overlay_options(["/v/code/_data/layers/t2", "/v/code/_data/layers/t1"], "/v/up/_data", "/v/work/_data")
    assert options == {"type": "overlay", "device": "overlay", "o": "lowerdir=/v/code/_data/layers/t2:"
                       "/v/code/_data/layers/t1,upperdir=/v/up/_data,workdir=/v/work/_data"}
    with pytest.raises(ValueError, match="overlay"):
        overlay_options(["/a,b"], "/u", "/w")
    with pytest.raises(ValueError, match="overlay"):
        overlay_options(["/a:b"], "/u", "/w")
    assert max_layers("/var/lib/docker/volumes/dtrun-code-0123456789abcdef01234567/_data") == cv.MAX_LAYERS
    deep = "/" + "d" * 400
    assert 1 <= max_layers(deep) < cv.MAX_LAYERS
    assert len("lowerdir=" + ":".join([f"{deep}/layers/{'0' * 16}"] * max_layers(deep))) <= cv.LOWERDIR_BUDGET
    assert cv.split_layers("0123456789abcdef:fedcba9876543210") == ["0123456789abcdef", "fedcba9876543210"]
    assert cv.split_layers("../../etc") == [] and cv.split_layers("") == []
    assert Head.from_json('{"version":1,"entries":[]}') is None  # a HEAD of the earlier layout: a full put
