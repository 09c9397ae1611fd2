"""The code snapshot: what git sees in the project folder, as it is on disk right now.

Tracked files and untracked files that git does not ignore (minus `.dtrunignore`), with uncommitted
changes included, packed as a tar stream for the Docker API (never a bind mount: the daemon may be
remote). The manifest's digest is part of every job's cache key. The parts live in `dtrun.code`.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from dtrun.code.listing import git_output as _git
from dtrun.structs import struct

if TYPE_CHECKING:  # hashing and packing are imported when used: `dtrun status` only needs the repo id
    from dtrun.code.manifest import LargeUntracked, Manifest


def repo_id_from_remote(url: str) -> str | None:
    """`git@github.com:owner/name.git` and `https://github.com/owner/name` -> `github.com/owner/name`.

    Local remotes (a path, `file://`) name no shared repository, so they give None.
    """
    from urllib.parse import urlsplit

    url = url.strip()
    if not url or url.startswith(("/", ".", "file://")):
        return None
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    else:
        match = re.match(r"^(?:[^@/]+@)?([^/:]+):(.+)$", url)  # scp-like: user@host:owner/name
        if not match:
            return None
        host, path = match.group(1), match.group(2)
    path = re.sub(r"\.git$", "", path.strip("/")).strip("/")
    if not host or not path:
        return None
    return f"{host}/{path}".lower()


@struct
class Snapshot:
    """What a run ships. `files` as listed; `manifest` (digests) computed on first use, through the
    per-project digest index so unchanged files are not read again; `pack()` streams files into the
    tar, so memory stays flat whatever their size."""

    root: Path
    files: list[str]
    commit: str | None
    branch: str | None
    dirty: bool
    repo_id: str
    untracked: frozenset[str] = frozenset()
    index_file: Path | None = None  # None: the project's index under the data folder
    use_index: bool = True  # False: hash every file, keep no index
    _manifest: Manifest | None = field(default=None, repr=False)
    _packed: IO[bytes] | None = field(default=None, repr=False)

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            from dtrun.code.index import DigestIndex, index_path
            from dtrun.code.manifest import build_manifest

            path = (self.index_file or index_path(self.root)) if self.use_index else None
            index = DigestIndex(path, self.root)
            self._manifest = build_manifest(self.root, self.files, index)
            index.save()
        return self._manifest

    @property
    def digest(self) -> str:
        """The content identity of the snapshot (names, modes, contents, symlink targets)."""
        return self.manifest.digest

    def pack(self) -> tuple[IO[bytes], str]:
        """The tar (rewound, in a spooled temp file) and the snapshot's digest."""
        if self._packed is None:
            from dtrun.code.tarstream import spool, tree_chunks

            self._packed = spool(tree_chunks(self.root, self.manifest))
        self._packed.seek(0)
        return self._packed, self.digest

    def chunks(self, skip: list[str] | None = None) -> Iterator[bytes]:
        """The tar as a stream of chunks (for a chunked upload), without files under `skip` folders."""
        from dtrun.code.tarstream import tree_chunks

        return tree_chunks(self.root, self.manifest.without(skip or []))

    def large_untracked(self) -> LargeUntracked | None:
        """Untracked, unignored files over 100 MB in total that this snapshot ships (the CLI tells)."""
        from dtrun.code.manifest import large_untracked

        return large_untracked(self.manifest, self.untracked)

    def untracked_notice(self) -> LargeUntracked | None:
        """`large_untracked()`, but only the first time these paths are seen in this project."""
        from dtrun.code.index import index_path
        from dtrun.code.notice import first_notice, record_path

        return first_notice(record_path(self.index_file or index_path(self.root)), self.large_untracked())


def take_snapshot(root: Path, git_root: Path, *, index: bool = True, repo: str | None = None) -> Snapshot:
    """`repo`: the repository's id when the caller has it already (`Session.store`), else asked of git."""
    from dtrun.code.listing import scan

    found = scan(root, git_root)
    return Snapshot(root, found.listing.files, found.commit, found.branch, found.dirty,
                    repo or _repo_id(git_root, found.commit), found.listing.untracked, use_index=index)


def snapshot_soon(root: Path, git_root: Path, *, repo: str | None = None) -> Callable[[], Snapshot]:
    """Start git's scan of the worktree (`take_snapshot`) in a background thread; the call returned waits
    for it. A run starts this before it loads its workflows: git walks the worktree in its own process
    meanwhile. The digests are left to the run (`engine.code`): a pass of `lstat`s in a thread beside the
    main thread's work hands the interpreter lock back and forth at every file, which cost more CPU than
    the overlap saved (measured in a 10,000-file repository)."""
    done = threading.Event()
    result: list[Snapshot | BaseException] = []

    def work() -> None:
        try:
            result.append(take_snapshot(root, git_root, repo=repo))
        except BaseException as exc:  # re-raised to the caller
            result.append(exc)
        done.set()

    threading.Thread(target=work, name="dtrun-snapshot", daemon=True).start()

    def wait() -> Snapshot:
        done.wait()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    return wait


def _repo_id(git_root: Path, commit: str | None) -> str:
    remote = _git(git_root, "config", "--get", "remote.origin.url", check=False)
    named = repo_id_from_remote(remote)
    if named:
        return named
    first = _git(git_root, "rev-list", "--max-parents=0", "HEAD", check=False).split()
    seed = first[-1] if first else str(git_root.resolve())
    return f"local/{git_root.name.lower()}-{hashlib.sha256(seed.encode()).hexdigest()[:10]}"
