"""The archive rules: what a tar may hold, checked when packing and again when extracting."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dtrun.store.archive import NotAFolder, UnsafeArchive, extract, pack_folder, repack


def snapshot_tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def crafted(*members: tuple[str, bytes, str | None]) -> io.BytesIO:
    """A tar of (name, type, linkname) members; regular files hold b'evil'."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if link is not None:
                info.linkname = link
            if kind == tarfile.REGTYPE:
                info.size = 4
                tar.addfile(info, io.BytesIO(b"evil"))
            else:
                tar.addfile(info)
    buffer.seek(0)
    return buffer


HOSTILE: dict[str, list[tuple[str, bytes, str | None]]] = {
    "absolute path": [("/tmp/dtrun-evil-abs", tarfile.REGTYPE, None)],
    "dotdot": [("../evil", tarfile.REGTYPE, None)],
    "dotdot in the middle": [("a/../../evil", tarfile.REGTYPE, None)],
    "absolute symlink": [("link", tarfile.SYMTYPE, "/etc"), ("link/evil", tarfile.REGTYPE, None)],
    "symlink up": [("up", tarfile.SYMTYPE, "../"), ("up/evil", tarfile.REGTYPE, None)],
    "symlink through a symlinked folder": [
        ("here", tarfile.SYMTYPE, "."), ("here/up", tarfile.SYMTYPE, "../outside"),
        ("up/evil", tarfile.REGTYPE, None)],
    "hard link": [("hard", tarfile.LNKTYPE, "/etc/passwd")],
    "char device": [("null", tarfile.CHRTYPE, None)],
    "block device": [("disk", tarfile.BLKTYPE, None)],
    "fifo": [("pipe", tarfile.FIFOTYPE, None)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_extract_refuses_hostile_members_and_writes_nothing_outside(tmp_path: Path, case: str) -> None:
    target = tmp_path / "box" / "target"
    (tmp_path / "outside").mkdir()
    before = snapshot_tree(tmp_path)
    with pytest.raises(UnsafeArchive) as err:
        extract(crafted(*HOSTILE[case]), target)
    assert "refused" in err.value.message
    after = snapshot_tree(tmp_path)
    outside = {p for p in after - before if not p.startswith("box/target")}
    assert outside == {"box"} or outside == set(), outside
    assert not Path("/tmp/dtrun-evil-abs").exists()
    for path in target.rglob("*"):
        if path.is_symlink():
            resolved = path.resolve()
            assert resolved == target.resolve() or target.resolve() in resolved.parents, path


def test_extract_names_every_refused_member(tmp_path: Path) -> None:
    data = crafted(("ok.txt", tarfile.REGTYPE, None), ("../a", tarfile.REGTYPE, None),
                   ("b", tarfile.LNKTYPE, "ok.txt"), ("c", tarfile.SYMTYPE, "/x"))
    with pytest.raises(UnsafeArchive) as err:
        extract(data, tmp_path / "t")
    text = err.value.message
    assert "../a: path with '..'" in text
    assert "b: hard link" in text
    assert "c: symlink to an absolute path (/x)" in text
    assert (tmp_path / "t" / "ok.txt").read_bytes() == b"evil"


def test_extract_does_not_write_through_a_symlink_already_in_the_target(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    (tmp_path / "victim").write_text("keep")
    os.symlink(tmp_path / "victim", target / "file")
    with pytest.raises(UnsafeArchive):
        extract(crafted(("file", tarfile.REGTYPE, None)), target)
    assert (tmp_path / "victim").read_text() == "keep"


def test_repack_refuses_the_same_members(tmp_path: Path) -> None:
    for case, members in HOSTILE.items():
        source = crafted(("top", tarfile.DIRTYPE, None), *((f"top/{n}" if not n.startswith("/") else n, k, ln)
                                                           for n, k, ln in members))
        with pytest.raises(UnsafeArchive):
            repack(source, io.BytesIO())
        assert case


def test_a_single_file_is_not_an_artifact(tmp_path: Path) -> None:
    with pytest.raises(NotAFolder):
        repack(crafted(("model.pt", tarfile.REGTYPE, None)), io.BytesIO())


def test_a_single_file_is_taken_as_that_file_where_allowed(tmp_path: Path) -> None:
    """A job's declared path turned into one file: stored as that file, never equal to a folder holding it."""
    from dtrun.store.archive import tar_members, write_members

    out = io.BytesIO()
    manifest = write_members(tar_members(crafted(("model.pt", tarfile.REGTYPE, None))), out, allow_file=True)
    assert (manifest.file, manifest.count, manifest.size) == (True, 1, 4)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar] == [("model.pt", b"evil")]  # type: ignore[union-attr]
    holding = crafted(("top", tarfile.DIRTYPE, None), ("top/model.pt", tarfile.REGTYPE, None))
    folder = write_members(tar_members(holding), io.BytesIO(), allow_file=True)
    assert not folder.file and folder.digest != manifest.digest
    with pytest.raises(NotAFolder, match="not a folder"):  # a link is still refused
        write_members(tar_members(crafted(("model.pt", tarfile.SYMTYPE, "elsewhere"))), io.BytesIO(), allow_file=True)


def make_tree(root: Path) -> None:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o750)
    (root / "secret").write_text("s")
    (root / "secret").chmod(0o600)
    (root / "sub" / "deep" / "data.bin").write_bytes(os.urandom(70000))
    os.symlink("run.sh", root / "link")
    os.symlink("../run.sh", root / "sub" / "up")
    os.symlink("sub", root / "dirlink")


def test_pack_folder_round_trips_modes_links_and_empty_folders(tmp_path: Path) -> None:
    source = tmp_path / "out"
    make_tree(source)
    stored = io.BytesIO()
    manifest = pack_folder(source, stored)
    assert manifest.count == 3 and manifest.size == 70000 + len("#!/bin/sh\necho hi\n") + 1
    stored.seek(0)
    target = tmp_path / "copy"
    extract(stored, target)
    assert (target / "run.sh").stat().st_mode & 0o777 == 0o750
    assert (target / "secret").stat().st_mode & 0o777 == 0o600
    assert (target / "empty").is_dir() and not any((target / "empty").iterdir())
    assert os.readlink(target / "link") == "run.sh"
    assert os.readlink(target / "sub" / "up") == "../run.sh"
    assert os.readlink(target / "dirlink") == "sub"
    assert (target / "sub" / "deep" / "data.bin").read_bytes() == (source / "sub" / "deep" / "data.bin").read_bytes()


def test_same_content_same_digest_and_a_change_changes_it(tmp_path: Path) -> None:
    source = tmp_path / "out"
    make_tree(source)
    first = pack_folder(source, io.BytesIO()).digest
    assert pack_folder(source, io.BytesIO()).digest == first
    (source / "secret").chmod(0o644)
    assert pack_folder(source, io.BytesIO()).digest != first


@pytest.mark.parametrize("plant", ["hardlink", "fifo", "abs-symlink", "escaping-symlink"])
def test_pack_folder_refuses_what_a_container_could_plant(tmp_path: Path, plant: str) -> None:
    source = tmp_path / "out"
    source.mkdir()
    (source / "a").write_text("a")
    if plant == "hardlink":
        os.link(source / "a", source / "b")
    elif plant == "fifo":
        os.mkfifo(source / "p")
    elif plant == "abs-symlink":
        os.symlink("/etc/passwd", source / "p")
    else:
        os.symlink("../../x", source / "p")
    with pytest.raises(UnsafeArchive):
        pack_folder(source, io.BytesIO())


def test_extract_drops_setuid_setgid_and_sticky_bits(tmp_path: Path) -> None:
    """An untrusted job's artifact cannot plant a setuid program in the downloader's folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo("shared")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(folder)
        for name, mode in (("shared/suid", 0o4755), ("shared/sgid", 0o2750), ("shared/plain", 0o640)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = 4, mode
            tar.addfile(info, io.BytesIO(b"#!/x"))
    buffer.seek(0)
    extract(buffer, tmp_path / "out")
    modes = {p.name: p.stat().st_mode & 0o7777 for p in (tmp_path / "out").rglob("*")}
    assert modes == {"shared": 0o777, "suid": 0o755, "sgid": 0o750, "plain": 0o640}
    assert all(p.stat().st_uid == os.getuid() for p in (tmp_path / "out").rglob("*"))
