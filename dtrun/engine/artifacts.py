"""Moving artifacts between containers, the store and the user: export, upload, mount, download.

One stored form for every artifact, however it was made: a tar of the folder's contents (names
relative to the folder, checked by `dtrun.store.archive`) under `jobs/<job>/artifacts/<key>-<digest>.tar`,
then the manifest `<key>.json` naming that tar. A declared path the job turned into one regular file
is stored as a tar of just that file (`ArtifactRecord.file`): copied into jobs that depend on it (a
volume cannot be mounted as a file), and downloaded as that file. The manifest is written last and is the completion
marker; because each tar is named by its content digest, a reader holding a manifest always finds the
matching tar, even while a checkpoint of the same artifact is being written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dtrun.backends.base import Backend, VolumeMount
from dtrun.errors import DtrunError
from dtrun.store import ArtifactRecord, Store
from dtrun.store.archive import (
    Manifest,
    NotAFolder,
    UnsafeArchive,
    folder_members,
    tar_members,
    write_members,
)
from dtrun.store.streams import BackgroundWriter
from dtrun.structs import struct

if TYPE_CHECKING:
    from dtrun.engine.progress import Progress, Transfers

Members = Iterable[tuple[Any, Any]]


def artifact_key(path: str) -> str:
    """A stable object name for a declared artifact path (`checkpoint`, `/out/models` ...)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", path.strip("/")) or "root"
    return f"{slug}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def tar_name(key: str, digest: str) -> str:
    return f"{key}-{digest[:16]}.tar"


def tar_path(store: Store, job_id: str, record: ArtifactRecord, repo: str | None = None) -> str:
    return store.job_path(job_id, "artifacts", tar_name(record.key, record.digest), repo=repo)


def save_members(store: Store, job_id: str, path: str, container_path: str, members: Members, *,
                 progress: Progress | None = None) -> ArtifactRecord:
    """Check and store one artifact; the manifest (completion marker) is written only at the very end."""
    key = artifact_key(path)
    folder = store.job_path(job_id, "artifacts")
    if store.local:
        os.makedirs(folder, exist_ok=True)
        tmp_name = os.path.join(folder, f".{key}.{uuid.uuid4().hex[:8]}.tmp")
        out: IO[bytes] = open(tmp_name, "wb")  # noqa: SIM115 - closed below
    else:
        tmp_name = ""
        out = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        # a full disk or a server that dies mid-upload is the store's clear error, not Python's
        writer = BackgroundWriter(out, guard=store.failing)
        try:
            if progress is None:
                manifest = write_members(members, writer, allow_file=True)
            else:  # the bytes of the tar as it is written: the export's progress
                from dtrun.engine.progress import MeteredWriter

                manifest = write_members(members, MeteredWriter(writer, progress), allow_file=True)  # type: ignore[arg-type]
        finally:
            writer.finish()
            if progress is not None:
                progress.close()
        final = posixpath.join(folder, tar_name(key, manifest.digest))
        with store.failing():
            if store.local:
                out.close()
                os.replace(tmp_name, final)
            else:
                out.flush()
                out.seek(0)
                with store.open(final, "wb") as remote:
                    while chunk := out.read(1 << 23):
                        remote.write(chunk)
    except BaseException:
        out.close()
        if tmp_name:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        raise
    finally:
        out.close()
    return _commit(store, job_id, key, path, container_path, manifest)


def _commit(store: Store, job_id: str, key: str, path: str, container_path: str,
            manifest: Manifest) -> ArtifactRecord:
    record = ArtifactRecord(path=path, container_path=container_path, key=key, digest=manifest.digest,
                            files=manifest.count, size=manifest.size, file=manifest.file)
    manifest_path = store.job_path(job_id, "artifacts", f"{key}.json")
    previous = None
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        previous = ArtifactRecord.from_dict(store.read_json(manifest_path)["artifact"])
    store.write_json(manifest_path, {"artifact": record.to_dict(), "files": manifest.files})
    if previous and previous.digest != record.digest:
        store.delete(tar_path(store, job_id, previous))
    return record


def export_artifact(backend: Backend, container: object, store: Store, job_id: str, path: str,
                    container_path: str, *, running: bool = False, progress: Progress | None = None,
                    source: str | None = None, job: str | None = None) -> ArtifactRecord | None:
    """Save one output folder of a container; None when the job never created it. `source`: where the
    folder is in the container when that is not `container_path` (one node's copy of a `node: all` one);
    `job`: the job's name, for errors (else its id). A stream that breaks off or ends early is an
    `ArtifactExportError` (`dtrun.engine.exportcheck`), and nothing of it is stored.

    Through the Docker API (works on a remote daemon); on the daemon's own host a stopped container's
    volume folder is read directly instead, which skips the daemon's tar stream (same checks).
    """
    source = source or container_path
    local = None if running else backend.local_path(container, source)
    if local is not None:
        if not os.path.lexists(local):
            return None
        try:
            return save_members(store, job_id, path, container_path, folder_members(local, local.name),
                                progress=progress)
        except PermissionError:
            pass  # a file this user may not read: the daemon can, through the API
    stream = backend.get_archive(container, source)
    if stream is None:
        return None
    from dtrun.engine.exportcheck import Received, broken_export
    from dtrun.store.streams import Prefetch

    received = Received(stream)
    # The daemon's stream is read ahead by a thread while this one checks, hashes and writes. Up to
    # 48 MiB ahead (plus 16 MiB queued for the disk): when this process is descheduled on a busy
    # machine the daemon keeps sending; 16 MiB ahead measured ~10% slower for a 1 GiB file, and one
    # thread doing it all (no read-ahead, no writer) used the same CPU but was 10-20% slower under load.
    try:
        with Prefetch(received, depth=48) as chunks:
            return save_members(store, job_id, path, container_path, tar_members(chunks), progress=progress)
    except Exception as exc:
        error = broken_export(exc, received, job=job or job_id, path=path, source=source)
        if error is None:
            raise
        raise error from None


def upload_folder(store: Store, job_id: str, folder: Path, path: str, container_path: str) -> ArtifactRecord:
    """Local data (`dtrun tags add TAG -a PATH`) into the store, checked like a job's outputs."""
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise DtrunError(f"{folder} {what}", hint="upload folders; put single files in a folder")
    return save_members(store, job_id, path, container_path, folder_members(folder, folder.name or "data"))


@struct
class SaveResult:
    saved: list[ArtifactRecord]
    refused: list[str]


def save_outputs(backend: Backend, store: Store, job_id: str, artifacts: list[tuple[str, str, str]],
                 container: object, say: Callable[[str], None], *, progress: Transfers | None = None,
                 job: str | None = None) -> SaveResult:
    """Export every declared artifact of a finished job; an unsafe or malformed one is refused by name."""
    result = SaveResult([], [])
    for path, cpath, source in artifacts:  # source: where it is in the container (usually cpath)
        try:
            item = export_artifact(backend, container, store, job_id, path, cpath, source=source, job=job,
                                   progress=progress(f"artifact {path}") if progress else None)
        except (UnsafeArchive, NotAFolder) as exc:
            say(f"  artifact {path} refused: {exc.message}")
            result.refused.append(f"artifact {path}: {exc.message}")
            continue
        if item is None:
            say(f"  artifact {path} was not created by the job")
            continue
        result.saved.append(item)
        what = "one file" if item.file else f"{item.files} files"
        say(f"  saved artifact {path}: {what}, {human_size(item.size)}")
    return result


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


@struct(frozen=True)
class InputArtifact:
    """An artifact of an upstream job that a job receives, read-only, where it was produced."""

    repo: str
    job_id: str
    record: ArtifactRecord


def input_volume(item: InputArtifact) -> str:
    return f"dtrun-art-{item.record.digest[:32]}"


def mount_inputs(backend: Backend, store: Store, inputs: list[InputArtifact], image: str,
                 labels: dict[str, str], *, progress: Transfers | None = None) -> list[VolumeMount]:
    """Materialise each input once per daemon (volumes keyed by content) and return the mounts.

    A volume that is already complete is reused as it is: mounting it costs two API calls, no copy.
    """
    mounts: list[VolumeMount] = []
    targets: set[str] = set()
    for item in inputs:
        if item.record.container_path in targets:
            raise DtrunError(f"two dependencies both provide {item.record.container_path}",
                             hint="a job can receive only one artifact per path; drop one of the deps")
        targets.add(item.record.container_path)
        if item.record.file:
            continue  # copied into the job by `copy_file_inputs`
        volume = input_volume(item)
        source = tar_path(store, item.job_id, item.record, repo=item.repo)
        def open_tar(p: str = source, name: str = f"dep {item.record.path}") -> IO[bytes]:
            data = store.open(p, "rb")
            if progress is None:
                return data
            from dtrun.engine.progress import MeteredReader

            return MeteredReader(data, progress(name))  # type: ignore[return-value]

        backend.materialize_once(volume, image, {**labels, "dev.dtrun.artifact": item.record.digest}, open_tar)
        mounts.append(VolumeMount(volume=volume, target=item.record.container_path, read_only=True))
    return mounts


def copy_file_inputs(backend: Backend, store: Store, container: object, inputs: list[InputArtifact]) -> None:
    """Put each single-file input into the created job where it was produced (after the code, which it
    replaces if the repository has a file there too)."""
    from dtrun.store.archive import under

    for item in inputs:
        if item.record.file:
            source = tar_path(store, item.job_id, item.record, repo=item.repo)
            with store.open(source, "rb") as data, under(item.record.restore_at, data) as tar:
                backend.put_archive(container, "/", tar)
