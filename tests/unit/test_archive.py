from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from dtrun.store.archive import UnsafeArchive, extract, repack


def make_tar(members: list[tuple[str, str, str]]) -> io.BytesIO:
    """(name, kind, payload): kind is file, dir, sym, hard or dev."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                info.mode = 0o640
                tar.addfile(info, io.BytesIO(payload.encode()))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "dev": tarfile.CHRTYPE}[kind]
            info.linkname = payload
            tar.addfile(info)
    buffer.seek(0)
    return buffer


def test_repack_strips_the_top_folder_and_keeps_modes(tmp_path: Path) -> None:
    source = make_tar([("out", "dir", ""), ("out/a.txt", "file", "hello"), ("out/empty", "dir", ""),
                       ("out/link", "sym", "a.txt")])
    target = io.BytesIO()
    manifest = repack(source, target)
    assert [f["path"] for f in manifest.files] == ["a.txt", "empty", "link"]
    assert manifest.size == 5 and manifest.count == 1 and manifest.digest
    target.seek(0)
    extract(target, tmp_path / "x")
    assert (tmp_path / "x" / "a.txt").read_text() == "hello"
    assert (tmp_path / "x" / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "x" / "empty").is_dir()
    assert (tmp_path / "x" / "link").is_symlink()


@pytest.mark.parametrize(("member", "reason"), [
    (("out/../../evil", "file", "x"), "'..'"),
    (("out/abs", "sym", "/etc/passwd"), "absolute path"),
    (("out/up", "sym", "../../etc"), "outside the artifact"),
    (("out/hard", "hard", "out/a"), "hard link"),
    (("out/dev", "dev", ""), "device"),
])
def test_hostile_members_are_refused_by_name(member: tuple[str, str, str], reason: str) -> None:
    source = make_tar([("out", "dir", ""), ("out/ok", "file", "fine"), member])
    with pytest.raises(UnsafeArchive) as info:
        repack(source, io.BytesIO())
    assert member[0] in str(info.value) and reason in str(info.value)


def test_extract_writes_nothing_outside(tmp_path: Path) -> None:
    source = make_tar([("../outside.txt", "file", "x"), ("/abs.txt", "file", "x"), ("ok.txt", "file", "y")])
    with pytest.raises(UnsafeArchive):
        extract(source, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dest", "ok.txt"]
