"""What a run ships: tracked files plus untracked files git does not ignore, minus `.dtrunignore`.

`.dtrunignore` sits at the project root and uses `.gitignore` syntax (git itself applies it, so the
rules match git's exactly); unlike `.gitignore` it also drops tracked files, as `.dockerignore` does.
`.gitignore` (and `.git/info/exclude`, `core.excludesFile`) keep applying to untracked files.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dtrun.errors import ProjectError

IGNORE_FILE = ".dtrunignore"


@dataclass(frozen=True)
class Listing:
    """Paths relative to the project root, sorted; `untracked` is the subset git does not track."""

    files: list[str]
    untracked: frozenset[str]


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


def list_files(root: Path) -> Listing:
    """One `git ls-files -t` for tracked (less deleted) and untracked files; one more only when
    `.dtrunignore` exists."""
    extra: list[str] = []
    has_ignore = (root / IGNORE_FILE).is_file()
    if has_ignore:
        extra = [f"--exclude-from={root / IGNORE_FILE}"]
    listing = git_output(root, "ls-files", "-z", "-t", "--cached", "--deleted", "--others", "--exclude-standard",
                         *extra)
    tracked: set[str] = set()
    untracked: set[str] = set()
    deleted: set[str] = set()  # tracked, gone from disk, not yet staged (git lists them twice: H and R)
    for item in listing.split("\0"):
        if len(item) < 3:
            continue
        tag, name = item[0], item[2:]
        (untracked if tag == "?" else deleted if tag == "R" else tracked).add(name)
    if has_ignore:  # tracked files are listed whatever the excludes say; drop the ones .dtrunignore names
        dropped = git_output(root, "ls-files", "-z", "--cached", "--ignored", *extra)
        tracked -= set(dropped.split("\0"))
    present = (tracked - deleted) | untracked  # git's own lstat of each tracked file, not a second one here
    return Listing(sorted(present), frozenset(untracked))
