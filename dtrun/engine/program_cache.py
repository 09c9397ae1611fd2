"""The job cache for multi-step jobs (flow jobs): a deterministic job whose key is unchanged is not run
again; its result (what the dialect saved: step outcomes, outputs) is reused and its log replayed.

The key is made like a workflow job's (`engine.cache`): the code snapshot's digest, the resolved plan
job, and the secrets, plus the dialect's `JobProgram.fingerprint()` (its resolved steps, their inputs
and image ids, the upstream outputs it reads). A dialect that says its job is not deterministic
(fingerprint None) is run every time. Entries share the store's `cache/` map with workflow jobs; the
dialect's result lives next to the job that produced it (`jobs/<id>/program.json`).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from dtrun.engine import cache
from dtrun.engine.events import OUTPUT, RESULT, Event
from dtrun.plan import Job
from dtrun.store import JobRecord, State

if TYPE_CHECKING:
    from dtrun.engine.program import JobProgram
    from dtrun.engine.runner import Engine

SAVED = "program.json"


def job_key(engine: Engine, job: Job, program: JobProgram) -> str | None:
    """The job's cache key, or None when its dialect says it must run every time."""
    fingerprint = program.fingerprint()
    if fingerprint is None:
        return None
    data = {
        "code": engine.code.digest(),
        "job": job.fingerprint(),
        "program": fingerprint,
        "secrets": hashlib.sha256(json.dumps(engine.secrets, sort_keys=True).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def reuse(engine: Engine, job: Job, program: JobProgram, record: JobRecord) -> bool:
    """On a hit: the program restored, the record CACHED, the earlier log shown again. False on a miss."""
    assert record.cache_key
    hit = cache.lookup(engine.store, record.cache_key)
    if hit is None:
        return False
    saved = _load(engine, hit.output_id)
    if saved is None:
        return False
    program.restore(saved)
    record.exit_code, record.cached_from, record.image = hit.exit_code, hit.output_id, hit.image
    record.move(State.CACHED, f"reused job {hit.output_id} (unchanged code, steps, inputs, images)")
    engine.store.save_job(record)
    engine.emit(Event(RESULT, f"CACHED {job.workflow} (reusing job {hit.output_id}); its output then:",
                      job=job.workflow, step="", state=State.CACHED.value))
    _replay(engine, job.workflow, hit.output_id)
    return True


def remember(engine: Engine, record: JobRecord, program: JobProgram) -> None:
    """After a DONE job with a key: its result, then the key's entry (so a hit always finds the result)."""
    assert record.cache_key
    engine.store.write_json(engine.store.job_path(record.id, SAVED), program.saved())
    cache.remember(engine.store, record.cache_key, record)


def _load(engine: Engine, job_id: str) -> dict[str, Any] | None:
    path = engine.store.job_path(job_id, SAVED)
    try:
        data = engine.store.read_json(path) if engine.store.exists(path) else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _replay(engine: Engine, workflow: str, job_id: str) -> None:
    """A cache hit still shows what the job printed, as the run that produced it did."""
    from dtrun.engine.logs import stored_lines

    try:
        handle = engine.store.open(engine.store.job_path(job_id, "logs.txt"), "rb")
    except FileNotFoundError:
        return
    with handle:
        for _, text in stored_lines(handle):
            engine.emit(Event(OUTPUT, job=workflow, step="", data=text))
