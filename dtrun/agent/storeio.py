"""The agent's view of the store: the same layout and write rules as `dtrun.store.Store`, standard
library plus fsspec only (the client's Store brings pydantic, which a job image need not have).

Paths: `<root>/repos/<repo>/jobs/<job>/...` for this job's logs, artifacts and status; manifest paths
(code, inputs) are relative to `<root>`. Writes are atomic as the client's are: locally a temporary
file renamed into place, on object stores one PUT.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any

from dtrun.agent import formats
from dtrun.agent.manifest import check_store_path


class AgentStore:
    def __init__(self, url: str, repo: str, job: str) -> None:
        import fsspec

        options: dict[str, Any] = {}
        if url.startswith(("s3://", "s3a://")):
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                options["endpoint_url"] = endpoint
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip("/")
        protocol = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = "file" in protocol
        self.job_root = posixpath.join(self.root, "repos", repo, "jobs", job)

    def path(self, relative: str) -> str:
        """A manifest's store path (relative to the root) as a full path."""
        return posixpath.join(self.root, check_store_path(relative))

    def job_path(self, *parts: str) -> str:
        return posixpath.join(self.job_root, *parts)

    def write_bytes(self, path: str, data: bytes) -> None:
        if self.local:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            with self.fs.open(tmp, "wb") as fh:
                fh.write(data)
            self.fs.mv(tmp, path)
        else:
            self.fs.pipe_file(path, data)

    def write_json(self, path: str, data: Any) -> None:
        self.write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())

    def read_json(self, path: str) -> Any:
        return json.loads(self.fs.cat_file(path))

    def upload(self, local: str, path: str) -> None:
        if self.local:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            self.fs.put_file(local, tmp)
            self.fs.mv(tmp, path)
        else:
            self.fs.put_file(local, path)

    def open(self, path: str, mode: str = "rb") -> IO[bytes]:
        return self.fs.open(path, mode)  # type: ignore[no-any-return]

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

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
        with tempfile.TemporaryFile() as out:
            manifest = formats.write_members(formats.folder_members(folder, folder.name or "root"), out)
            out.seek(0)
            final = self.job_path("artifacts", formats.tar_name(key, manifest.digest))
            if self.local:
                self.fs.makedirs(posixpath.dirname(final), exist_ok=True)
            tmp = f"{final}.tmp-{uuid.uuid4().hex[:8]}" if self.local else final
            with self.fs.open(tmp, "wb") as remote:
                while chunk := out.read(1 << 23):
                    remote.write(chunk)
            if self.local:
                self.fs.mv(tmp, final)
        record = {"path": path, "container_path": container_path, "key": key, "digest": manifest.digest,
                  "files": manifest.count, "size": manifest.size}
        manifest_path = self.job_path("artifacts", f"{key}.json")
        previous = None
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            previous = self.read_json(manifest_path)["artifact"]["digest"]
        self.write_json(manifest_path, {"artifact": record, "files": manifest.files})
        if previous and previous != manifest.digest:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self.job_path("artifacts", formats.tar_name(key, previous)))
        return record

    def saved_artifact(self, path: str) -> dict[str, Any] | None:
        """The record of this job's saved artifact `path` (a checkpoint of an earlier attempt), if any."""
        try:
            return self.read_json(self.job_path("artifacts", f"{formats.artifact_key(path)}.json"))["artifact"]  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
