from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dtrun.snapshot import repo_id_from_remote, take_snapshot
from tests.conftest import git


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTRUN_DATA_DIR", str(tmp_path / "data"))


def test_tracked_untracked_and_ignored(make_project: Callable[..., Path]) -> None:
    root = make_project({"a.py": "print(1)\n", ".gitignore": "secret.txt\n", "sub/b.txt": "b\n"})
    (root / "new.txt").write_text("untracked\n")
    (root / "secret.txt").write_text("ignored\n")
    (root / "a.py").write_text("print(2)\n")  # an uncommitted change
    snap = take_snapshot(root, root)
    assert snap.files == [".gitignore", "a.py", "new.txt", "sub/b.txt"]
    assert snap.dirty and snap.branch == "main" and snap.commit and len(snap.commit) == 40
    data, digest = snap.pack()
    with tarfile.open(fileobj=data) as tar:
        names = tar.getnames()
        content = tar.extractfile("a.py").read()  # type: ignore[union-attr]
    assert "secret.txt" not in names and "sub" in names and content == b"print(2)\n"
    assert digest == take_snapshot(root, root).digest
    (root / "new.txt").write_text("changed\n")
    assert take_snapshot(root, root).digest != digest


def test_executable_bit_is_kept(make_project: Callable[..., Path]) -> None:
    root = make_project({"run.sh": "#!/bin/sh\n"})
    (root / "run.sh").chmod(0o755)
    with tarfile.open(fileobj=take_snapshot(root, root).pack()[0]) as tar:
        assert tar.getmember("run.sh").mode == 0o755


def test_repo_id_from_remote_and_local(make_project: Callable[..., Path]) -> None:
    assert repo_id_from_remote("git@github.com:Owner/Name.git") == "github.com/owner/name"
    assert repo_id_from_remote("https://github.com/owner/name") == "github.com/owner/name"
    assert repo_id_from_remote("ssh://git@gitlab.example.com:2222/team/proj.git") == "gitlab.example.com/team/proj"
    assert repo_id_from_remote("/srv/git/x") is None
    root = make_project({"a": "1"})
    local = take_snapshot(root, root).repo_id
    assert local.startswith("local/") and local == take_snapshot(root, root).repo_id
    git(root, "remote", "add", "origin", "git@github.com:me/proj.git")
    assert take_snapshot(root, root).repo_id == "github.com/me/proj"


def test_digest_index_lives_in_the_data_folder_and_large_untracked_files_are_named(
        make_project: Callable[..., Path], tmp_path: Path) -> None:
    root = make_project({"a.py": "1", ".gitignore": "*.log\n"})
    (root / "data").mkdir()
    with (root / "data" / "huge.bin").open("wb") as handle:
        handle.truncate(101 * 1024 * 1024)
    (root / "x.log").write_text("ignored")
    for name in ("a.py", "data/huge.bin"):
        os.utime(root / name, (1e9, 1e9))  # older than the racy window, so the index keeps them
    snap = take_snapshot(root, root)
    assert snap.untracked == {"data/huge.bin"}
    notice = snap.large_untracked()
    assert notice is not None and notice.paths == [("data/huge.bin", 101 * 1024 * 1024)]
    assert list((tmp_path / "data" / "code-index").glob("*.json"))  # never inside the project
    assert snap.untracked_notice() == notice
    assert take_snapshot(root, root).untracked_notice() is None  # said once
    with (root / "data" / "more.bin").open("wb") as handle:
        handle.truncate(1)
    again = take_snapshot(root, root).untracked_notice()  # a new path: said again, with all of them
    assert again is not None and [p for p, _ in again.paths] == ["data/huge.bin", "data/more.bin"]
    (root / ".dtrunignore").write_text("data/\n")
    snap = take_snapshot(root, root)
    assert snap.large_untracked() is None and snap.files == [".dtrunignore", ".gitignore", "a.py"]


def test_chunks_leave_out_folders_where_inputs_mount(make_project: Callable[..., Path]) -> None:
    import io

    from dtrun.code.tarstream import ChunkReader

    root = make_project({"a.py": "1", "out/model.bin": "m", "outside.txt": "o"})
    snap = take_snapshot(root, root)
    with tarfile.open(fileobj=io.BufferedReader(ChunkReader(snap.chunks(["out/"]))), mode="r|") as tar:
        assert [m.name for m in tar] == ["a.py", "outside.txt"]


def test_a_snapshot_taken_in_the_background_is_the_same(make_project: Callable[..., Path], tmp_path: Path) -> None:
    from dtrun.errors import ProjectError
    from dtrun.snapshot import snapshot_soon

    root = make_project({"a.py": "1", "sub/b.py": "2"})
    (root / "new.py").write_text("untracked")
    expected = take_snapshot(root, root)
    background = snapshot_soon(root, root)()
    assert (background.files, background.untracked, background.commit, background.dirty, background.repo_id) == \
        (expected.files, expected.untracked, expected.commit, expected.dirty, expected.repo_id)
    assert background.digest == expected.digest
    with pytest.raises(ProjectError, match="git"):
        snapshot_soon(tmp_path / "nowhere", tmp_path / "nowhere")()
