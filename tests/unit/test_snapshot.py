from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

from dtrun.snapshot import repo_id_from_remote, take_snapshot
from tests.conftest import git


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
