"""Durable state behind an fsspec URL: a local folder by default, S3 for teams.

Layout, one namespace per repository so many users and projects can share one bucket:

    <root>/repos/<repo-id>/runs/<run>.json
    <root>/repos/<repo-id>/jobs/<job>/job.json, logs.txt, artifacts/<n>.tar, artifacts/<n>.json
    <root>/repos/<repo-id>/tags/<tag>.json

Records are written atomically (locally a temporary file, then a rename; on S3 one PUT, which is
atomic there), and an artifact's manifest is its completion marker: an artifact whose manifest is
missing was never saved.

An S3 store is `s3://bucket/prefix`; credentials, region and endpoint come from the standard AWS
settings (`AWS_ACCESS_KEY_ID`, `~/.aws/credentials`, `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for
MinIO, moto or any other S3-compatible server), which botocore reads itself.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

from dtrun.errors import DtrunError, NotFound
from dtrun.store.failures import CorruptRecord, describe_failure, is_storage_error, probe
from dtrun.store.guarded import entry_mtime, local_folder, storage_options
from dtrun.store.records import JobRecord, RunRecord, TagRecord

if TYPE_CHECKING:
    from dtrun.store.guarded import Guarded

#: The records kept as one JSON object each.
M = TypeVar("M", RunRecord, JobRecord, TagRecord)

__all__ = ["Store", "check_tag_name", "storage_options", "store_label"]


def store_label(url: str) -> str:
    """The `dev.dtrun.store` label value of everything made for the store at `url`, so commands (and
    tests sharing one daemon) find and clean only their own."""
    import hashlib

    return hashlib.sha256(url.encode()).hexdigest()[:12]


class Store:
    """The records and files of runs, in a local folder or behind any fsspec URL.

    Every primitive below goes through `fs`, one filesystem interface for all stores: a local folder is
    `LocalFiles` (plain file calls: `dtrun status`, a cache hit and a run do not pay for importing
    fsspec), any other URL fsspec's filesystem for it; both behind `Guarded`, so a storage fault is the
    same clear `StoreUnavailable` whatever the store.
    """

    def __init__(self, url: str, repo: str) -> None:
        self.url = url
        self.repo = repo
        folder = local_folder(url)
        #: Whether the store is a folder on this machine (what a job may read in place).
        self.local = folder is not None
        self._fs: Guarded | None = None
        if folder is None:
            self._fs, root = self._connect()
        else:
            from dtrun.store.guarded import Guarded
            from dtrun.store.localfiles import LocalFiles

            self._fs, root = Guarded(LocalFiles(), url), folder
        self.root = root.rstrip("/")
        #: Messages about damaged records that listings skipped (see `skip`).
        self.skipped: list[str] = []

    def _connect(self) -> tuple[Guarded, str]:
        from dtrun.store.guarded import connect

        return connect(self.url)

    @property
    def fs(self) -> Guarded:
        """The store's filesystem (errors made clear by `Guarded`)."""
        if self._fs is None:
            self._fs, _ = self._connect()
        return self._fs

    def check(self) -> None:
        """Write, read back and delete a probe object: a store that cannot hold a run's records
        fails here, with the reason and the fix, before any job starts."""
        probe(self)

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
        self.fs.pipe_file(path, data)

    def create_once(self, path: str, data: bytes) -> bool:
        """Write `path` only if no object is there: True if this call made it, False if one was there.

        Atomic where the store can make it so (a local folder; S3 and servers with conditional writes,
        `If-None-Match: *`), so of two processes racing, exactly one gets True. `NotImplementedError`
        from a server that refuses conditional writes (the caller decides what it does instead).
        """
        try:
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        return True

    @contextlib.contextmanager
    def failing(self, action: str = "write to") -> Iterator[None]:
        """Storage faults raised inside (by a file object the store handed out, which `Guarded` does not
        see: its writes and its close) become the store's one clear `StoreUnavailable`."""
        try:
            yield
        except (DtrunError, FileNotFoundError):
            raise
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            raise describe_failure(exc, self.url, action) from None

    def guarded_writes(self, target: IO[bytes]) -> IO[bytes]:
        """`target`, whose `write` reports a full disk or a dead server as the store's error."""
        from dtrun.store.guarded import GuardedWrites

        return GuardedWrites(target, self)  # type: ignore[return-value]

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(path))

    def write_model(self, path: str, model: RunRecord | JobRecord | TagRecord) -> None:
        self.write_bytes(path, json.dumps(model.to_dict(), indent=1, ensure_ascii=False).encode())

    def read_model(self, path: str, model: type[M]) -> M:
        """A record, or `CorruptRecord` when the object is truncated or not a record of that kind
        (a half-written file from an older dtrun, a disk that filled up, a hand edit)."""
        data = self.read_bytes(path)
        try:
            return model.from_dict(json.loads(data))
        except ValueError as exc:  # not JSON, not UTF-8, or not the record (records.RecordError)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CorruptRecord(f"the record {path} in the store {self.url} is damaged ({first})",
                                hint="it is skipped; delete it if it stays unreadable") from None

    def skip(self, error: DtrunError) -> None:
        """Remember an unreadable record that a listing passed over; the CLI shows one warning each."""
        if error.message not in self.skipped:
            self.skipped.append(error.message)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def delete(self, path: str, recursive: bool = False) -> None:
        """Remove an object (or, `recursive`, everything under a prefix); one already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(path, recursive=recursive)

    def size(self, path: str) -> int:
        return int(self.fs.size(path))

    def open(self, path: str, mode: str = "rb") -> IO[bytes]:
        return self.fs.open(path, mode)  # type: ignore[no-any-return]

    def upload(self, local_path: str, path: str) -> None:
        self.fs.put_file(local_path, path)

    def listdir(self, path: str) -> list[str]:
        """The names in the folder (or under the prefix) `path`; none when it does not exist."""
        try:
            return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(path, detail=False))
        except FileNotFoundError:
            return []

    def modified(self, path: str) -> dict[str, float]:
        """The names in the folder (or under the prefix) `path`, each with when it was last written
        (seconds since the epoch): one listing, no object read."""
        try:
            found = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return {}
        return {posixpath.basename(str(e["name"]).rstrip("/")): entry_mtime(e) for e in found}

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
        """Every readable run; a damaged record is skipped and remembered in `skipped`."""
        for name in self.run_names(repo):
            try:
                yield self.load_run(name, repo)
            except NotFound:
                continue
            except CorruptRecord as exc:
                self.skip(exc)

    def load_jobs(self, job_ids: list[str], repo: str | None = None) -> list[JobRecord]:
        """The readable jobs among `job_ids`, in order; missing or damaged ones are skipped (and
        remembered in `skipped`), so one bad file never hides the rest of a run."""
        out = []
        for job_id in job_ids:
            try:
                out.append(self.load_job(job_id, repo))
            except (NotFound, CorruptRecord) as exc:
                self.skip(exc)
        return out

    def write_json(self, path: str, data: Any) -> None:
        self.write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    # -- repositories ----------------------------------------------------------------------------------
    def repos(self) -> list[str]:
        """Every repository id with records in this store (`github.com/owner/name`, `local/...`).

        Ids are 2 to 4 segments deep; one glob per depth keeps S3 listings to the top of the tree.
        """
        base = posixpath.join(self.root, "repos")
        found: set[str] = set()
        for depth in range(1, 5):
            for leaf in ("runs", "tags"):
                pattern = posixpath.join(base, *["*"] * depth, leaf)
                try:
                    found.update(posixpath.dirname(p.rstrip("/")) for p in self.fs.glob(pattern))
                except FileNotFoundError:
                    continue
        prefix = base.rstrip("/") + "/"
        return sorted(p.split(prefix, 1)[1] for p in found if prefix in p)

    def resolve_repo(self, name: str) -> str:
        """`owner/name` (as written in a dep) -> the full id it has in this store (`github.com/owner/name`).

        An exact id wins; otherwise the one stored repository whose id is `<host>/name`.
        """
        name = name.strip("/").lower()
        if name == self.repo or self.exists(self.repo_path(repo=name)):
            return name
        prefix = posixpath.join(self.root, "repos").rstrip("/") + "/"
        matches = sorted(p.split(prefix, 1)[1] for p in self.fs.glob(posixpath.join(prefix, "*", name))
                         if prefix in p)
        if len(matches) == 1:
            return str(matches[0])
        if len(matches) > 1:
            raise DtrunError(f"'{name}' matches several repositories in the store: {', '.join(matches)}",
                             hint="write the full id, e.g. " + matches[0])
        known = self.repos()
        raise NotFound(f"no repository '{name}' in the store {self.url}",
                       hint="repositories here: " + (", ".join(known) or "none") +
                       "; is DTRUN_STORE the store the other project uses?")

    # -- tags ------------------------------------------------------------------------------------------
    def tag_path(self, name: str, repo: str | None = None) -> str:
        return self.repo_path("tags", f"{name}.json", repo=repo)

    def save_tag(self, tag: TagRecord) -> None:
        check_tag_name(tag.name)
        self.write_model(self.tag_path(tag.name, tag.repo), tag)

    def load_tag(self, name: str, repo: str | None = None) -> TagRecord:
        try:
            return self.read_model(self.tag_path(name, repo), TagRecord)
        except FileNotFoundError:
            where = f" in {repo}" if repo and repo != self.repo else ""
            raise NotFound(f"no tag '{name}'{where}",
                           hint="`dtrun tags` lists tags; `dtrun tags add TAG RUN` creates one") from None

    def tags(self, repo: str | None = None) -> list[TagRecord]:
        out = []
        for entry in self.listdir(self.repo_path("tags", repo=repo)):
            if entry.endswith(".json"):
                try:
                    out.append(self.load_tag(entry[:-5], repo))
                except NotFound:
                    continue
                except CorruptRecord as exc:
                    self.skip(exc)
        return sorted(out, key=lambda t: t.created_at)

    def delete_tag(self, name: str, repo: str | None = None) -> None:
        path = self.tag_path(name, repo)
        if not self.exists(path):
            raise NotFound(f"no tag '{name}'", hint="`dtrun tags` lists tags")
        self.delete(path)

    # -- artifacts -------------------------------------------------------------------------------------
    def artifact_path(self, job_id: str, key: str, suffix: str, repo: str | None = None) -> str:
        return self.job_path(job_id, "artifacts", f"{key}{suffix}", repo=repo)

    def manifests(self, job_id: str, repo: str | None = None) -> list[dict[str, Any]]:
        """The saved artifacts of a job: only those whose manifest (the completion marker) exists."""
        folder = self.job_path(job_id, "artifacts", repo=repo)
        out = []
        for entry in self.listdir(folder):
            if entry.endswith(".json"):
                try:
                    out.append(self.read_json(posixpath.join(folder, entry)))
                except (FileNotFoundError, ValueError):
                    continue
        return sorted(out, key=lambda m: str(m["artifact"]["path"]))


_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_tag_name(name: str) -> None:
    if not _TAG.match(name) or len(name) > 128:
        raise DtrunError(f"'{name}' is not a valid tag name",
                         hint="use letters, digits, '.', '_' and '-' (a '/' separates another repository)")
