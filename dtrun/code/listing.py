"""What a run ships: tracked files plus untracked files git does not ignore, minus `.dtrunignore`.

`.dtrunignore` sits at the project root and uses `.gitignore` syntax (git itself applies it, so the
rules match git's exactly); unlike `.gitignore` it also drops tracked files, as `.dockerignore` does.
`.gitignore` (and `.git/info/exclude`, `core.excludesFile`) keep applying to untracked files.

The worktree is scanned once per run: `git status` (which a run asks anyway, for its commit, branch and
whether the tree is dirty) names the untracked files and the tracked ones deleted from disk, and
`git ls-files --cached` reads the tracked paths from the index without touching the worktree. Two
commands that each scanned it (an `ls-files --deleted --others` beside the status) cost a 10,000-file
repository twice the `lstat`s and directory reads. Only with a `.dtrunignore` is the untracked walk
made by `ls-files` itself, the one command that applies those patterns with git's own precedence.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from dtrun.errors import ProjectError
from dtrun.structs import struct

IGNORE_FILE = ".dtrunignore"


@struct(frozen=True)
class Listing:
    """Paths relative to the project root, sorted; `untracked` is the subset git does not track."""

    files: list[str]
    untracked: frozenset[str]


@struct(frozen=True)
class Scan:
    """A listing and what `git status` said of the repository: its commit (None before the first), its
    branch (None when detached) and whether anything differs from the commit (untracked files count)."""

    listing: Listing
    commit: str | None
    branch: str | None
    dirty: bool


def git_output(root: Path, *args: str, check: bool = True) -> str:
    return git_started(root, *args, check=check)()


def git_started(root: Path, *args: str, check: bool = True) -> Callable[[], str]:
    """Start a git command; the call returned waits for its output. Independent git commands of one
    run (the listing, the status) then overlap instead of following each other."""
    try:
        proc = subprocess.Popen(["git", "-C", str(root), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    except FileNotFoundError:
        raise ProjectError("git is not installed", hint="install git: dtrun tracks code with it") from None

    def output() -> str:
        stdout, stderr = proc.communicate()
        if check and proc.returncode != 0:
            raise ProjectError(f"git {' '.join(args)} failed: {stderr.strip()}")
        return stdout if proc.returncode == 0 else ""

    return output


def find_git_root(start: Path) -> Path | None:
    """The nearest folder from `start` up that holds `.git`, as git finds its repository; None outside one."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def list_files(root: Path) -> Listing:
    return scan(root).listing


def scan(root: Path, git_root: Path | None = None) -> Scan:
    """The listing and the status of the project at `root` (the top of its repository or a folder in it);
    `git_root`: its repository's top, when the caller knows it already."""
    has_ignore = (root / IGNORE_FILE).is_file()
    extra = [f"--exclude-from={root / IGNORE_FILE}"] if has_ignore else []
    # whole repository, as the dirty flag always was; paths relative to the repository's top
    status_output = git_started(root, "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all")
    tracked_output = git_started(root, "ls-files", "-z", "--cached")  # the index only: no lstat, no walk
    dropped_output = others_output = None
    if has_ignore:  # tracked files are listed whatever the excludes say: the ones .dtrunignore names go
        dropped_output = git_started(root, "ls-files", "-z", "--cached", "--ignored", *extra)
        others_output = git_started(root, "ls-files", "-z", "--others", "--exclude-standard", *extra)
    status = parse_status(status_output(), _prefix(root, git_root or find_git_root(root) or root))
    tracked = tracked_output().split("\0")
    tracked.pop()  # the empty string after the last NUL (or of no output at all)
    gone = status.deleted
    if dropped_output is not None:
        gone = gone | set(dropped_output().split("\0"))
    if gone:
        tracked = [name for name in tracked if name not in gone]
    untracked = status.untracked if others_output is None else [n for n in others_output().split("\0") if n]
    files = [*tracked, *untracked] if untracked else tracked
    files = list(dict.fromkeys(files))  # an unmerged path is in the index once per stage
    files.sort()  # both parts are sorted already (the index by its bytes): timsort merges them in one pass
    return Scan(Listing(files, frozenset(untracked)), status.commit, status.branch, status.dirty)


def _prefix(root: Path, git_root: Path) -> str:
    """`root` relative to the repository's top, with a trailing slash; "" at the top. `git status` names
    paths from the top, wherever it runs."""
    rel = os.path.relpath(os.path.realpath(root), os.path.realpath(git_root))
    return "" if rel == "." else rel.replace(os.sep, "/") + "/"


@struct(frozen=True)
class Status:
    commit: str | None
    branch: str | None
    dirty: bool
    deleted: set[str]  # tracked, gone from disk (deletion not staged), relative to the project root
    untracked: list[str]  # untracked and not ignored, relative to the project root, sorted


def parse_status(text: str, prefix: str = "") -> Status:
    """`git status --porcelain=v2 -z --branch` output; paths outside `prefix` (the project's folder in
    the repository) are left out of `deleted` and `untracked`, though they still make the tree dirty."""
    commit = branch = None
    dirty = False
    deleted: set[str] = set()
    untracked: list[str] = []
    items = iter(text.split("\0"))
    for item in items:
        kind = item[:2]
        if kind == "# ":
            if item.startswith("# branch.oid "):
                oid = item[len("# branch.oid "):]
                commit = None if oid == "(initial)" else oid
            elif item.startswith("# branch.head "):
                head = item[len("# branch.head "):]
                branch = None if head == "(detached)" else head
            continue
        if not item:
            continue
        dirty = True
        path = None
        if kind == "? ":
            if item.startswith(prefix, 2):
                untracked.append(item[2 + len(prefix):])
            continue
        if kind == "1 ":  # 1 XY sub mH mI mW hH hI path
            path = item.split(" ", 8)[8]
        elif kind == "2 ":  # 2 XY sub mH mI mW hH hI Xscore path, then the original path as its own item
            path = item.split(" ", 9)[9]
            next(items, None)
        if path is not None and item[3] == "D" and path.startswith(prefix):
            deleted.add(path[len(prefix):])
    untracked.sort()
    return Status(commit, branch, dirty, deleted, untracked)
