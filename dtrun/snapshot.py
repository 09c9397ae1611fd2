"""The code snapshot: what git sees in the project folder, as it is on disk right now.

Tracked files and untracked files that git does not ignore, with uncommitted changes included,
packed as a tar stream for the Docker API (never a bind mount: the daemon may be remote). The
content digest is part of every job's cache key.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from dtrun.errors import ProjectError


def _git(root: Path, *args: str, check: bool = True) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ProjectError("git is not installed", hint="install git: dtrun tracks code with it") from None
    if check and proc.returncode != 0:
        raise ProjectError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout if proc.returncode == 0 else ""


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


@dataclass
class Snapshot:
    root: Path
    files: list[str]
    commit: str | None
    branch: str | None
    dirty: bool
    repo_id: str
    _packed: tuple[IO[bytes], str] | None = field(default=None, repr=False)

    def pack(self) -> tuple[IO[bytes], str]:
        """The tar (rewound, in a spooled temp file) and the sha256 of names, modes and contents."""
        if self._packed is None:
            self._packed = _pack(self.root, self.files)
        data, digest = self._packed
        data.seek(0)
        return data, digest

    @property
    def digest(self) -> str:
        return self.pack()[1]


def take_snapshot(root: Path, git_root: Path) -> Snapshot:
    listing = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    files = sorted({f for f in listing.split("\0") if f and os.path.lexists(root / f)})
    status = _git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=normal", check=False)
    commit = branch = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[-1]
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split()[-1]
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    return Snapshot(root, files, commit, branch, dirty, _repo_id(git_root, commit))


def _repo_id(git_root: Path, commit: str | None) -> str:
    remote = _git(git_root, "config", "--get", "remote.origin.url", check=False)
    named = repo_id_from_remote(remote)
    if named:
        return named
    first = _git(git_root, "rev-list", "--max-parents=0", "HEAD", check=False).split()
    seed = first[-1] if first else str(git_root.resolve())
    return f"local/{git_root.name.lower()}-{hashlib.sha256(seed.encode()).hexdigest()[:10]}"


def _pack(root: Path, files: list[str]) -> tuple[IO[bytes], str]:
    digest = hashlib.sha256()
    out = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115 - returned open
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name in files:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i])
                if folder not in dirs:
                    dirs.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            path = root / name
            st = path.lstat()
            info = tarfile.TarInfo(name)
            info.mode = stat.S_IMODE(st.st_mode)
            info.mtime = int(st.st_mtime)
            if stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                digest.update(f"L{name}\0{info.linkname}\0".encode())
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                content = path.read_bytes()
                info.size = len(content)
                digest.update(f"F{name}\0{info.mode:o}\0".encode() + hashlib.sha256(content).digest())
                tar.addfile(info, io.BytesIO(content))
    out.seek(0)
    return out, digest.hexdigest()
