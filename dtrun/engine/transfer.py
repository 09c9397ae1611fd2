"""Artifacts between this machine and the store, outside any run: local folders uploaded as a tag, and
saved artifacts downloaded into a folder. The `Session` calls these; the CLI only renders."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dtrun.errors import DtrunError
from dtrun.store import ArtifactRecord, JobRecord, Store, TagRecord

#: (job, manifest) pairs: a saved artifact's record (`manifest["artifact"]`) and its file listing
Found = list[tuple[JobRecord, dict[str, Any]]]


def upload_tag(store: Store, root: Path, tag: str, paths: list[Path], *, replace: bool = False,
               uploaded: Callable[[ArtifactRecord], None] = lambda r: None) -> TagRecord:
    """Local folders -> the tag `tag`. Each is mounted in dependent jobs where it lies relative to the
    project `root` (a folder outside it: at its name), so a job reads it where the user had it."""
    from dtrun.engine.artifacts import upload_folder
    from dtrun.plan import WORKSPACE, container_path
    from dtrun.store.tags import new_upload_job, tag_upload

    job = new_upload_job(store, tag, replace=replace)
    root = root.resolve()
    seen: set[str] = set()
    for given in paths:
        folder = given.resolve()
        path = posixpath.normpath(folder.relative_to(root).as_posix()) if folder.is_relative_to(root) \
            else folder.name
        if path in (".", ""):
            raise DtrunError(f"{given} is the project folder itself", hint="upload a folder inside it")
        if path in seen:
            raise DtrunError(f"{given} is given twice")
        seen.add(path)
        record = upload_folder(store, job.id, folder, path, container_path(WORKSPACE, path))
        job.artifacts.append(record)
        uploaded(record)
    return tag_upload(store, tag, job)


def download(store: Store, found: Found, output: Path, *, advance: Callable[[str, int], None]) -> int:
    """Every artifact into OUTPUT/<its path> (absolute paths lose their leading '/'), checked on the way;
    `advance(path, bytes)` as it goes. Returns the bytes downloaded."""
    from dtrun.engine.artifacts import tar_path
    from dtrun.store.archive import extract

    targets: dict[str, str] = {}
    for job, manifest in found:
        path = manifest["artifact"]["path"].strip("/")
        if path in targets:
            raise DtrunError(f"jobs {targets[path]} and {job.id} both saved an artifact '{path}'",
                             hint="download one job at a time: dtrun artifacts JOB --output DIR")
        targets[path] = job.id
    total = 0
    for job, manifest in found:
        record = ArtifactRecord.from_dict(manifest["artifact"])
        path = record.path
        advance(path, 0)

        def moved(n: int, path: str = path) -> None:
            advance(path, n)

        with store.open(tar_path(store, job.output_id, record), "rb") as data:
            # A single-file artifact's tar holds the file, named as it: extracted into its folder.
            folder = output / path.strip("/")
            extract(data, folder.parent if record.file else folder, progress=moved)
        total += record.size
    return total
