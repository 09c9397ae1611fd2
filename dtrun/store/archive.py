"""Tar streams in and out of containers, checked member by member.

Outputs come out of a container as the Docker API's tar stream (or, on the daemon's own host, straight
from a volume's folder). `repack` and `pack_folder` rewrite either into the stored form (names relative
to the artifact's folder) while checking every member, so a hostile or broken job cannot plant an
absolute path, a `..`, a link leading outside, a hard link or a device file in anybody's store or
download folder. `extract` applies the same rules again when writing to disk, and also refuses to
write through a symlink that leads out of the target.

Accepted: regular files (with their modes), folders (empty ones too) and symlinks whose target stays
inside the artifact. `extract` writes permission bits only (`& 0o777`): setuid, setgid and sticky bits
are dropped, and every file belongs to the user who downloads, so an untrusted job cannot plant a
setuid-root program in the folder of someone who runs `dtrun artifacts --output` as root.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import field
from pathlib import Path
from typing import IO

from dtrun.errors import DtrunError
from dtrun.structs import struct

#: Read and write in large blocks: tarfile's default (10 KiB) makes Python the bottleneck on big files.
BUFSIZE = 1 << 20


class UnsafeArchive(DtrunError):
    """An archive holds members that would escape the folder it is extracted into."""


class NotAFolder(DtrunError):
    """An artifact path names a single file where only folders are taken (`allow_file` unset)."""


@struct
class Manifest:
    files: list[dict[str, object]] = field(default_factory=list)
    size: int = 0
    digest: str = ""
    #: The artifact is one regular file (its only member, named as the file), not a folder.
    file: bool = False

    @property
    def count(self) -> int:
        return sum(1 for f in self.files if f["type"] == "file")


def check_member(member: tarfile.TarInfo, name: str, links: set[str] | None = None) -> str | None:
    """Why `member` (already renamed to `name`) is refused, or None if it is safe.

    `links` are the symlinks met so far in the same archive: a member below one of them would be
    written wherever that link leads, so it is refused too.
    """
    if name.startswith("/") or os.path.isabs(name) or member.name.startswith("/"):
        return "absolute path"
    if ".." in name.split("/") or ".." in member.name.split("/"):
        return "path with '..'"
    if links:
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                return f"path through the symlink {'/'.join(parts[:i])}"
    if member.islnk():
        return f"hard link (to {member.linkname})"
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        return "device or special file"
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            return f"symlink to an absolute path ({target})"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if resolved == ".." or resolved.startswith("../"):
            return f"symlink pointing outside the artifact ({target})"
    elif not (member.isreg() or member.isdir()):
        return "unsupported member type"
    return None


Member = tuple[tarfile.TarInfo, "IO[bytes] | io.RawIOBase | None"]


def tar_members(source: IO[bytes] | Iterable[bytes | memoryview]) -> Iterator[Member]:
    """The members of a tar (a file, or the chunks of a stream), each with its data (valid until the
    next member is taken); regular files' data as `StreamData`, whose pieces are not copied."""
    from dtrun.store.tarstream import file_chunks, stream_members

    chunks = file_chunks(source) if hasattr(source, "read") else source  # type: ignore[arg-type]
    yield from stream_members(chunks)


def folder_members(folder: Path, arcname: str) -> Iterator[Member]:
    """A folder on disk as tar members named `arcname/...`, as the Docker API would stream it.

    A second path to an inode already seen becomes a hard-link member, devices stay devices: the
    checks then treat a folder read directly exactly like the daemon's tar stream of it.
    """
    seen: dict[tuple[int, int], str] = {}

    def info(path: Path, name: str) -> tarfile.TarInfo:
        st = path.lstat()
        item = tarfile.TarInfo(name)
        item.mode, item.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            item.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            item.type, item.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            inode = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and inode in seen:
                item.type, item.linkname = tarfile.LNKTYPE, seen[inode]
            else:
                seen[inode] = name
                item.size = st.st_size
        elif stat.S_ISFIFO(st.st_mode):
            item.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(st.st_mode):
            item.type = tarfile.CHRTYPE
        elif stat.S_ISBLK(st.st_mode):
            item.type = tarfile.BLKTYPE
        else:
            item.type = b"?"
        return item

    top = info(folder, arcname)
    yield top, (open(folder, "rb") if top.isreg() else None)  # noqa: SIM115 - closed by the consumer
    if not top.isdir():
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        rel = os.path.relpath(dirpath, folder)
        prefix = arcname if rel == "." else f"{arcname}/{rel}"
        for entry in [*sorted(filenames), *dirnames]:
            path = Path(dirpath) / entry
            item = info(path, f"{prefix}/{entry}")
            yield item, (open(path, "rb") if item.isreg() else None)  # noqa: SIM115


def repack(source: IO[bytes], target: IO[bytes], *, strip_first: bool = True) -> Manifest:
    """Copy a tar stream to `target`, names made relative to its top folder, refusing unsafe members."""
    return write_members(tar_members(source), target, strip_first=strip_first)


def pack_folder(folder: Path, target: IO[bytes]) -> Manifest:
    """Pack a local folder into the stored form, with the same checks as a container's outputs."""
    return write_members(folder_members(folder, folder.name or "root"), target, strip_first=True)


def write_members(members: Iterable[Member], target: IO[bytes] | io.RawIOBase, *,
                  strip_first: bool = True, allow_file: bool = False) -> Manifest:
    """Write checked members to `target` as a tar; raise `UnsafeArchive` naming every refused member.

    The manifest lists every member (path, type, mode, size, sha256) and its digest is the artifact's
    content key: two artifacts with the same digest have the same names, modes, links and bytes,
    whatever order the members came in (the daemon's tar and a folder walk differ).

    A declared path that is one regular file (the daemon's tar of it, or a folder walk of it, holds just
    that file at the top) is `NotAFolder` unless `allow_file`; then it is stored as that one member,
    named as the file, with `Manifest.file` set (and in the digest, so it never equals a folder's).
    """
    manifest = Manifest()
    digest = hashlib.sha256()
    problems: list[str] = []
    links: set[str] = set()
    first = True
    from dtrun.store.tarstream import TarWriter

    dst = TarWriter(target)
    for member, data in members:
        try:
            name = member.name
            if strip_first and first and not member.isdir() and "/" not in name.strip("/"):
                if not (allow_file and member.isreg()):
                    what = "a file" if member.isreg() else "not a folder"
                    raise NotAFolder(f"'{name}' is {what}; an artifact here is a folder",
                                     hint="put it in a folder and declare the folder as the artifact")
                manifest.file = True
            elif strip_first:
                _, _, name = name.partition("/")
            first = False
            name = name.rstrip("/")
            if not name:
                continue
            reason = check_member(member, name, links)
            if reason:
                problems.append(f"{member.name}: {reason}")
                continue
            if member.issym():
                links.add(name)
            member.name = name
            member.mode &= 0o7777
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.pax_headers = {}
            entry: dict[str, object] = {"path": name, "mode": member.mode}
            if member.isreg():
                hasher = hashlib.sha256()
                dst.add(member, _pieces(data, member.size), hasher)
                entry.update(type="file", size=member.size, sha256=hasher.hexdigest())
                manifest.size += member.size
            elif member.isdir():
                dst.add(member)
                entry["type"] = "dir"
            else:
                dst.add(member)
                entry.update(type="symlink", target=member.linkname)
            manifest.files.append(entry)
        finally:
            if data is not None:
                data.close()
    dst.close()
    if problems:
        raise UnsafeArchive("refused unsafe members in the archive:\n  " + "\n  ".join(problems),
                            hint="outputs may hold only regular files, folders and symlinks that stay inside")
    if manifest.file:
        digest.update(b"single file\0")
    for entry in sorted(manifest.files, key=lambda e: str(e["path"])):
        digest.update(repr(sorted(entry.items())).encode())
    manifest.digest = digest.hexdigest()
    return manifest


def _pieces(data: IO[bytes] | io.RawIOBase | None, size: int) -> Iterator[bytes | memoryview]:
    """A member's data as pieces: a stream's own views, or a file read in large blocks (at most
    `size` bytes: a file that grew while it was read is cut where its header says)."""
    if data is None:
        return iter(())
    from dtrun.store.tarstream import StreamData

    if isinstance(data, StreamData):
        return data.pieces()  # not wrapped in another generator: this runs once per 32 KiB chunk
    return _file_pieces(data, size)


def _file_pieces(data: IO[bytes] | io.RawIOBase, size: int) -> Iterator[bytes]:
    left = size
    while left and (chunk := data.read(min(BUFSIZE, left))):
        left -= len(chunk)
        yield chunk


#: The mode bits `extract` keeps: read, write and execute; never setuid, setgid or sticky.
_PERMISSIONS = 0o777


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def extract(source: IO[bytes], dest: Path, *, progress: Callable[[int], None] | None = None) -> list[Path]:
    """Extract a stored artifact into `dest`, with the same checks as `repack`; nothing lands outside.

    Every refused member is named in the error; the safe ones are still written (inside `dest`).
    """
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    problems: list[str] = []
    links: set[str] = set()
    with tarfile.open(fileobj=source, mode="r|", bufsize=BUFSIZE) as tar:
        for member in tar:
            name = member.name.rstrip("/")
            if name in ("", "."):
                continue
            reason = check_member(member, name, links)
            path = dest / name
            if not reason:
                parent = path.parent.resolve()
                if not _inside(parent, dest):
                    reason = "path leads outside through a symlink"
                elif member.issym() and not _inside(Path(os.path.normpath(parent / member.linkname)), dest):
                    reason = f"symlink pointing outside the target ({member.linkname})"
                elif path.is_symlink() and not member.issym():
                    reason = "would replace a symlink"
            if reason:
                problems.append(f"{member.name}: {reason}")
                continue
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(_PERMISSIONS & member.mode | 0o700)
            elif member.issym():
                links.add(name)
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_symlink() or path.is_file():
                    path.unlink()
                path.symlink_to(member.linkname)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                data = tar.extractfile(member)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    while data and (chunk := data.read(1 << 20)):
                        fh.write(chunk)
                        if progress:
                            progress(len(chunk))
                path.chmod(_PERMISSIONS & member.mode)
                os.utime(path, (member.mtime, member.mtime))
            written.append(path)
    if problems:
        raise UnsafeArchive("refused unsafe members while extracting:\n  " + "\n  ".join(problems),
                            hint="nothing was written outside the target folder")
    return written


def under(prefix: str, source: IO[bytes] | bytes | None = None) -> IO[bytes]:
    """A tar whose members are `source`'s re-rooted under `prefix`, led by `prefix`'s folders.

    Backends extract archives at an existing path only (Docker's `put_archive`), so anything meant for
    a folder that may not exist yet (an action's files, a restored artifact, a step's output file) is
    put at `/` through this. With no `source`, just the folders (to make `prefix` exist).
    """
    import tempfile

    parts = [p for p in prefix.split("/") if p]
    out = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, closed by the reader
    with tarfile.open(fileobj=out, mode="w") as dst:
        for i in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:i]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            dst.addfile(info)
        if source is not None:
            stream = io.BytesIO(source) if isinstance(source, bytes) else source
            with tarfile.open(fileobj=stream, mode="r|") as src:
                for member in src:
                    name = member.name.removeprefix("./").strip("/")
                    if not name:
                        continue
                    member.name = "/".join([*parts, name])
                    dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    out.seek(0)
    return out
