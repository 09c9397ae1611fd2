"""The agent's view of the store: the client's `dtrun.store.Store` (the same layout, atomic writes and
clear errors; standard library plus fsspec for object stores, all shipped in the agent layer), seen
from one job.

Paths: `<root>/repos/<repo>/jobs/<job>/...` for this job's logs, artifacts and status; manifest paths
(code, inputs) are relative to `<root>`.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from pathlib import Path
from typing import IO, Any

from dtrun.agent import formats
from dtrun.agent.manifest import check_store_path
from dtrun.store.store import Store


class AgentStore:
    def __init__(self, url: str, repo: str, job: str) -> None:
        self.store = Store(url, repo)
        self.job = job

    def path(self, relative: str) -> str:
        """A manifest's store path (relative to the root) as a full path."""
        return posixpath.join(self.store.root, check_store_path(relative))

    def job_path(self, *parts: str) -> str:
        return self.store.job_path(self.job, *parts)

    def write_json(self, path: str, data: Any) -> None:
        self.store.write_json(path, data)

    def read_json(self, path: str) -> Any:
        return self.store.read_json(path)

    def upload(self, local: str, path: str) -> None:
        self.store.upload(local, path)

    def download(self, path: str, local: str) -> None:
        self.store.fs.get_file(path, local)

    def open(self, path: str, mode: str = "rb") -> IO[bytes]:
        return self.store.open(path, mode)

    def exists(self, path: str) -> bool:
        return self.store.exists(path)

    def unpack(self, path: str, target: Path) -> int:
        """Extract a stored tar (checked member by member, as the client extracts) into `target`."""
        with self.open(path, "rb") as data:
            return len(formats.extract(data, target))

    def save_artifact(self, folder: Path, path: str, container_path: str) -> dict[str, Any] | None:
        """Store one output folder as the client does: tar named by digest, manifest last.

        None when the job never created the folder; `formats.UnsafeArchive`/`NotAFolder` when refused.
        """
        if not os.path.lexists(folder):
            return None
        key = formats.artifact_key(path)
        with tempfile.NamedTemporaryFile() as out:
            manifest = formats.write_members(formats.folder_members(folder, folder.name or "root"), out)
            out.flush()
            self.upload(out.name, self.job_path("artifacts", formats.tar_name(key, manifest.digest)))
        record = {"path": path, "container_path": container_path, "key": key, "digest": manifest.digest,
                  "files": manifest.count, "size": manifest.size}
        manifest_path = self.job_path("artifacts", f"{key}.json")
        previous = None
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            previous = self.read_json(manifest_path)["artifact"]["digest"]
        self.write_json(manifest_path, {"artifact": record, "files": manifest.files})
        if previous and previous != manifest.digest:
            self.store.delete(self.job_path("artifacts", formats.tar_name(key, previous)))
        return record

    def saved_artifact(self, path: str) -> dict[str, Any] | None:
        """The record of this job's saved artifact `path` (a checkpoint of an earlier attempt), if any."""
        try:
            return self.read_json(self.job_path("artifacts", f"{formats.artifact_key(path)}.json"))["artifact"]  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
