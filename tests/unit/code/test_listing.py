from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dtrun.code.listing import list_files, parse_status, scan
from tests.conftest import git


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


def _two_scans(root: Path) -> list[str]:
    """What the listing was before it scanned the worktree once (`ls-files --deleted --others`, tagged), less
    the tracked paths that are folders now (neither listing ships a folder: `build_manifest` skips them)."""
    out = git(root, "ls-files", "-z", "-t", "--cached", "--deleted", "--others", "--exclude-standard")
    tracked: set[str] = set()
    deleted: set[str] = set()
    untracked: set[str] = set()
    for item in out.split("\0"):
        if len(item) > 2:
            (untracked if item[0] == "?" else deleted if item[0] == "R" else tracked).add(item[2:])
    return sorted(p for p in (tracked - deleted) | untracked if not (root / p).is_dir() or (root / p).is_symlink())


def test_one_scan_lists_what_two_did_in_every_state_of_the_worktree(make_project: Callable[..., Path]) -> None:
    """Deleted but not staged, deletion staged, renamed by hand and by `git mv`, reverted, a file that
    became a folder, untracked folders, ignored files, names with spaces: each run lists what git would."""
    root = make_project({"a.py": "1", "b.py": "2", "c.py": "3", "f": "was a file", "d/e.py": "4", "keep me.txt": "k",
                         "old name.py": "o", "staged.py": "s", ".gitignore": "*.log\nbuild/\n"})
    (root / "a.py").unlink()  # deleted, not staged
    git(root, "rm", "-q", "b.py")  # deletion staged
    (root / "c.py").write_text("changed")
    (root / "c.py").write_text("3")  # reverted
    (root / "f").unlink()
    (root / "f").mkdir()
    (root / "f" / "inside.py").write_text("now a folder")
    (root / "old name.py").rename(root / "new name.py")  # renamed by hand: old deleted, new untracked
    git(root, "mv", "staged.py", "moved.py")
    (root / "moved.py").write_text("and changed")
    (root / "new" / "deep").mkdir(parents=True)
    (root / "new" / "deep" / "x.py").write_text("x")
    (root / "run.log").write_text("ignored")
    (root / "build").mkdir()
    (root / "build" / "out.bin").write_text("ignored")
    listing = list_files(root)
    assert listing.files == _two_scans(root)
    assert listing.files == [".gitignore", "c.py", "d/e.py", "f/inside.py", "keep me.txt", "moved.py",
                             "new name.py", "new/deep/x.py"]
    assert listing.untracked == {"f/inside.py", "new name.py", "new/deep/x.py"}


def test_a_project_in_a_folder_of_the_repository_lists_its_own_files(make_project: Callable[..., Path]) -> None:
    repo = make_project({"top.py": "t", "proj/a.py": "a", "proj/gone.py": "g", "other/b.py": "b"})
    root = repo / "proj"
    (root / "gone.py").unlink()
    (root / "new.py").write_text("n")
    (repo / "other" / "new.py").write_text("outside the project")
    found = scan(root)
    assert found.listing.files == ["a.py", "new.py"] == _two_scans(root)
    assert found.listing.untracked == {"new.py"}
    assert found.dirty and found.branch == "main" and found.commit is not None
    assert scan(root.resolve()).listing == found.listing


def test_dirty_commit_and_branch_come_from_the_same_scan(make_project: Callable[..., Path]) -> None:
    fresh = make_project({"a.py": "1"}, commit=False)
    found = scan(fresh)
    assert (found.commit, found.branch, found.dirty) == (None, "main", True)
    assert found.listing.files == ["a.py"] and found.listing.untracked == {"a.py"}
    root = make_project({"a.py": "1"})
    clean = scan(root)
    assert clean.commit is not None and len(clean.commit) == 40 and not clean.dirty
    (root / "outside.log").write_text("x")
    git(root, "checkout", "-q", "--detach")
    assert scan(root).dirty and scan(root).branch is None


def test_dtrunignore_is_applied_by_git_with_its_own_precedence(make_project: Callable[..., Path]) -> None:
    """Its patterns rank as `--exclude-from` ranks them (below `.gitignore`): a `!` there does not bring back
    a file `.gitignore` ignores; it drops tracked files, and untracked ones `.gitignore` lets through."""
    root = make_project({"a.py": "1", "b.py": "2", ".gitignore": "*.log\n"})
    (root / "keep.log").write_text("ignored by .gitignore")
    (root / "scratch.py").write_text("untracked")
    (root / "b.py").unlink()
    (root / ".dtrunignore").write_text("!keep.log\na.py\nscratch.py\n")
    listing = list_files(root)
    assert listing.files == [".dtrunignore", ".gitignore"]
    assert listing.untracked == {".dtrunignore"}


def test_a_conflicted_path_is_listed_once(make_project: Callable[..., Path]) -> None:
    root = make_project({"a.py": "base\n"})
    git(root, "checkout", "-q", "-b", "other")
    (root / "a.py").write_text("other\n")
    git(root, "commit", "-qam", "other")
    git(root, "checkout", "-q", "main")
    (root / "a.py").write_text("main\n")
    git(root, "commit", "-qam", "main")
    with pytest.raises(subprocess.CalledProcessError):
        git(root, "merge", "-q", "other")
    assert list_files(root).files == ["a.py"]


def test_status_records_are_read_whole() -> None:
    """`-z` records: a rename carries its original path as a record of its own; paths keep their spaces."""
    text = "\0".join([
        "# branch.oid 0123", "# branch.head main",
        "1 .D N... 100644 100644 000000 aa aa gone file.py",
        "2 RD N... 100644 100644 000000 aa aa R100 moved and gone.py", "1 .D N... original.py",
        "1 M. N... 100644 100644 100644 aa bb staged.py",
        "? sub/new file.py", "? elsewhere.py", ""])
    status = parse_status(text, "sub/")
    assert (status.commit, status.branch, status.dirty) == ("0123", "main", True)
    assert status.untracked == ["new file.py"] and status.deleted == set()
    status = parse_status(text)
    assert status.deleted == {"gone file.py", "moved and gone.py"}
    assert status.untracked == ["elsewhere.py", "sub/new file.py"]
    fresh = parse_status("# branch.oid (initial)\0# branch.head (detached)\0")
    assert (fresh.commit, fresh.branch, fresh.dirty, fresh.deleted, fresh.untracked) == (None, None, False, set(), [])
