"""The job cache: a job whose inputs are all unchanged is not run again; its result is reused.

A job's key is a hash of everything that decides what it does: the code snapshot's digest, the
resolved job (`Job.fingerprint`: command, env, image spec, resources, artifacts, deps), the run's
variables, the image id, the digests of the artifacts it receives, and its secrets. The store maps a
key to the job that produced it (`repos/<repo>/cache/<key>.json`); a hit counts only while that job is
DONE and all of its artifacts are complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from dtrun.engine.artifacts import InputArtifact
from dtrun.errors import NotFound
from dtrun.plan import Job
from dtrun.store import JobRecord, State, Store


def cache_key(*, code: str, job: Job, variables: dict[str, str], image_id: str,
              inputs: Iterable[InputArtifact], secrets: dict[str, str]) -> str:
    data = {
        "code": code,
        "job": job.fingerprint(),
        "variables": variables,
        "image": image_id,
        "inputs": sorted(f"{i.record.container_path}={i.record.digest}" for i in inputs),
        "secrets": hashlib.sha256(json.dumps(secrets, sort_keys=True).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _path(store: Store, key: str) -> str:
    return store.repo_path("cache", f"{key}.json")


def lookup(store: Store, key: str) -> JobRecord | None:
    """The DONE job that produced `key`, if its artifacts are all still in the store."""
    try:
        source = json.loads(store.read_bytes(_path(store, key)))["job"]
        record = store.load_job(source)
    except (FileNotFoundError, ValueError, KeyError, NotFound):
        return None
    if record.state != State.DONE:
        return None
    for artifact in record.artifacts:
        if not store.exists(store.job_path(record.id, "artifacts", f"{artifact.key}.json")):
            return None
    return record


def remember(store: Store, key: str, record: JobRecord) -> None:
    store.write_json(_path(store, key), {"job": record.id, "workflow": record.workflow})
