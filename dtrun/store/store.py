"""Durable state behind an fsspec URL: a local folder by default, S3 for teams.

Layout, one namespace per repository so many users and projects can share one bucket:

    <root>/repos/<repo-id>/runs/<run>.json
    <root>/repos/<repo-id>/jobs/<job>/job.json, logs.txt, artifacts/<n>.tar, artifacts/<n>.json
    <root>/repos/<repo-id>/tags/<tag>.json

Records are written atomically (a temporary object, then a rename), and an artifact's manifest is
its completion marker: an artifact whose manifest is missing was never saved.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Iterator
from typing import IO, Any, TypeVar

from pydantic import BaseModel

from dtrun.errors import DtrunError, NotFound
from dtrun.store.records import JobRecord, RunRecord

M = TypeVar("M", bound=BaseModel)


class Store:
    def __init__(self, url: str, repo: str) -> None:
        import fsspec

        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            hint = "install dtrun[s3] for S3 stores" if "s3" in url else "use a folder or an fsspec URL"
            raise DtrunError(f"cannot open the store {url}: {exc}", hint=hint) from None
        self.url = url
        self.root = root.rstrip("/")
        self.repo = repo
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    # -- paths ------------------------------------------------------------------------------------
    def repo_path(self, *parts: str, repo: str | None = None) -> str:
        return posixpath.join(self.root, "repos", repo or self.repo, *parts)

    def run_path(self, name: str) -> str:
        return self.repo_path("runs", f"{name}.json")

    def job_path(self, job: str, *parts: str, repo: str | None = None) -> str:
        return self.repo_path("jobs", job, *parts, repo=repo)

    # -- primitives --------------------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes) -> None:
        """Atomic: readers see the old object or the new one, never half of one."""
        parent = posixpath.dirname(path)
        if self.local:
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            with self.fs.open(tmp, "wb") as fh:
                fh.write(data)
            self.fs.mv(tmp, path)
        else:
            self.fs.pipe_file(path, data)

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(path))

    def write_model(self, path: str, model: BaseModel) -> None:
        self.write_bytes(path, model.model_dump_json(indent=1).encode())

    def read_model(self, path: str, model: type[M]) -> M:
        return model.model_validate_json(self.read_bytes(path))

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def open(self, path: str, mode: str = "rb") -> IO[bytes]:
        if "w" in mode and self.local:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        return self.fs.open(path, mode)  # type: ignore[no-any-return]

    def upload(self, local_path: str, path: str) -> None:
        if self.local:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            self.fs.put_file(local_path, tmp)
            self.fs.mv(tmp, path)
        else:
            self.fs.put_file(local_path, path)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(path, detail=False))
        except FileNotFoundError:
            return []

    # -- records -----------------------------------------------------------------------------------
    def save_run(self, run: RunRecord) -> None:
        self.write_model(self.run_path(run.name), run)

    def save_job(self, job: JobRecord) -> None:
        self.write_model(self.job_path(job.id, "job.json"), job)

    def load_run(self, name: str, repo: str | None = None) -> RunRecord:
        try:
            return self.read_model(self.repo_path("runs", f"{name}.json", repo=repo), RunRecord)
        except FileNotFoundError:
            raise NotFound(f"no run named '{name}'", hint="`dtrun status --last 10` lists recent runs") from None

    def load_job(self, job_id: str, repo: str | None = None) -> JobRecord:
        try:
            return self.read_model(self.job_path(job_id, "job.json", repo=repo), JobRecord)
        except FileNotFoundError:
            raise NotFound(f"no job with id '{job_id}'", hint="`dtrun status` lists job ids") from None

    def run_names(self, repo: str | None = None) -> list[str]:
        return [n[:-5] for n in self.listdir(self.repo_path("runs", repo=repo)) if n.endswith(".json")]

    def runs(self, repo: str | None = None) -> Iterator[RunRecord]:
        for name in self.run_names(repo):
            try:
                yield self.load_run(name, repo)
            except (NotFound, ValueError):
                continue

    def write_json(self, path: str, data: Any) -> None:
        self.write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())
