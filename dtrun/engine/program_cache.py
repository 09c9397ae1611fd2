"""The job cache for multi-step jobs (flow jobs): a deterministic job whose key is unchanged is not run
again; its result (what the dialect saved: step outcomes, outputs) is reused and its log replayed.

The key is made like a workflow job's (`engine.cache`): the code snapshot's digest, the resolved plan
job, and the secrets, plus the dialect's `JobProgram.fingerprint()` (its resolved steps, their inputs
and image ids, the upstream outputs it reads). A dialect that says its job is not deterministic
(fingerprint None) is run every time. Entries share the store's `cache/` map with workflow jobs; the
dialect's result lives next to the job that produced it (`jobs/<id>/program.json`).

A hit replays the stored log as the first run showed it, each line under its step (`[job/step]`).
`logs.txt` keeps one time and the text per line, nothing else (`dtrun logs` prints it as it is), so
where each step's output began is kept beside it: `jobs/<id>/log-steps.json`, `[[byte offset, step
label], ...]`, written with the cache entry (`remember`). A job stored before that file existed is
replayed under the job's name alone, as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dtrun.engine import cache
from dtrun.engine.events import OUTPUT, RESULT, Event
from dtrun.plan import Job
from dtrun.store import JobRecord, State

if TYPE_CHECKING:
    from dtrun.engine.program import JobProgram
    from dtrun.engine.runner import Engine
    from dtrun.store import Store

SAVED = "program.json"
#: Where each step's output begins in the job's `logs.txt` (see the module's docstring).
LOG_STEPS = "log-steps.json"


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
    replay_log(engine.store, engine.emit, job.workflow, hit.output_id, step="")
    return True


def remember(engine: Engine, record: JobRecord, program: JobProgram,
             log_steps: Sequence[tuple[int, str]] = ()) -> None:
    """After a DONE job with a key: its result and where each step's output begins in its log
    (`log_steps`: byte offset, step label), then the key's entry (so a hit always finds both)."""
    assert record.cache_key
    engine.store.write_json(engine.store.job_path(record.id, SAVED), program.saved())
    if log_steps:
        engine.store.write_json(engine.store.job_path(record.id, LOG_STEPS),
                                [[offset, label] for offset, label in log_steps])
    cache.remember(engine.store, record.cache_key, record)


def _load(engine: Engine, job_id: str) -> dict[str, Any] | None:
    path = engine.store.job_path(job_id, SAVED)
    try:
        data = engine.store.read_json(path) if engine.store.exists(path) else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _log_steps(store: Store, job_id: str) -> list[tuple[int, str]]:
    """`LOG_STEPS` of a job, in order; none when it has none or it is not what `remember` writes."""
    path = store.job_path(job_id, LOG_STEPS)
    try:
        data = store.read_json(path) if store.exists(path) else None
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    pairs = [(pair[0], pair[1]) for pair in data if isinstance(pair, list) and len(pair) == 2
             and isinstance(pair[0], int) and isinstance(pair[1], str)]
    return sorted(pairs) if len(pairs) == len(data) else []


def replay_log(store: Store, emit: Callable[[Event], None], workflow: str, job_id: str,
               step: str | None) -> None:
    """A cache hit still shows what the job printed, as the run that produced it did: each stored line
    under the step that printed it (`LOG_STEPS`), else under `step` ("" for a flow job, None for a
    workflow's job). Used for both kinds of job (`ContainerJob` and `reuse` here)."""
    from dtrun.engine.logs import split_frame

    try:
        handle = store.open(store.job_path(job_id, "logs.txt"), "rb")
    except FileNotFoundError:
        return
    starts = _log_steps(store, job_id) if step is not None else []
    offset, following = 0, 0
    with handle:
        for line in handle:
            while following < len(starts) and starts[following][0] <= offset:
                step = starts[following][1]
                following += 1
            offset += len(line)
            emit(Event(OUTPUT, job=workflow, step=step, data=split_frame(line)[1]))
