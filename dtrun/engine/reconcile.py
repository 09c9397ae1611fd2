"""Finishing runs whose client is gone (killed, even with SIGKILL; or a detached run's process).

Every command that reads state calls `reconcile` first. It looks only at runs still marked active
whose owner process is dead, so when nothing is unfinished it costs one listing and no Docker call.
For those runs, the containers found by their labels are the ground truth: one that has exited gets
its logs stored (masked), its outputs saved unless it was aborted, its exit recorded, and is removed;
one still running is left alone. Jobs that never got a container are marked as not run, and the run
is settled once all its jobs are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dtrun.engine import control
from dtrun.errors import NotFound
from dtrun.store import JobRecord, State, Store

if TYPE_CHECKING:
    from dtrun.backends.base import Backend

#: A run without an owner record this young may be a detached run whose process is just starting.
OWNERLESS_GRACE = 60.0


def orphaned_runs(store: Store) -> list[str]:
    out = []
    for name in control.active_runs(store):
        if control.owner_alive(store, name):
            continue
        if not store.exists(store.repo_path("owners", f"{name}.json")):
            try:
                if time.time() - store.load_run(name).submitted_at < OWNERLESS_GRACE:
                    continue
            except NotFound:
                control.mark_finished(store, name)
                continue
        out.append(name)
    return out


def reconcile(store: Store, backend: Callable[[], Backend], secrets: Callable[[], list[str]],
              status: Callable[[str], None] = lambda m: None) -> list[str]:
    """Settle what can be settled; the names of the runs that were looked at.

    The modules needed to settle a run load only once there is one: with none, as for most commands,
    this costs a listing and not the import of the backend and provider modules."""
    runs = orphaned_runs(store)
    if not runs:
        return []
    docker = backend()
    values = secrets()
    from dtrun.backends.base import CREATED, LABEL, RUNNING
    from dtrun.engine.collect import WORKSPACE_LABEL, finish_run
    from dtrun.engine.runner import store_label

    for name in runs:
        try:
            run = store.load_run(name)
        except NotFound:
            control.mark_finished(store, name)
            continue
        containers = {c.labels.get(f"{LABEL}.job"): c for c in docker.find(
            {f"{LABEL}.run": name, f"{LABEL}.store": store_label(store)})}
        jobs: list[JobRecord] = []
        busy = False
        for job_id in run.jobs:
            job = store.load_job(job_id)
            if not job.state.finished:
                container = containers.get(job.id)
                phase = docker.phase(container) if container is not None else None
                if phase == RUNNING:
                    busy = True
                elif container is not None and phase == CREATED:  # never started
                    docker.remove(container)
                    docker.remove_volume(container.labels.get(WORKSPACE_LABEL, ""))
                elif container is not None:
                    adopt(store, docker, container, job, values, status)
            jobs.append(job)
        if busy:
            continue
        for job in jobs:
            if not job.state.finished:
                action = control.requested(store, job.id)
                state = State.ABORTED if action == control.ABORT else State.STOPPED if action else State.FAILED
                job.move(state, _why_unfinished(job.state))
                store.save_job(job)
        finish_run(store, run, jobs)
        _release_holds(docker, name, store_label(store))
        status(f"run {run.name}: finished while no dtrun process watched it: {run.state.value}")
    return runs


def _why_unfinished(state: State) -> str:
    """Why a job the dead client left unfinished, without a container to finish it from, did not end."""
    ended = "the dtrun process running this run ended"
    if state == State.BUILDING:
        return f"not run: the build of its image was cut short ({ended} while it built)"
    if state == State.RUNNING:
        return f"{ended} before this job finished"
    if state == State.UPLOADING:
        return f"{ended} while it saved this job's outputs, and the job's container is gone"
    return f"not run: {ended} before this job started"


def app_token(job_id: str) -> list[str]:
    """A dev environment's token, masked like a secret: kept on the client of the user who started it."""
    from dtrun.providers import devenv

    token = devenv.load_token(job_id)
    return [token] if token else []


def adopt(store: Store, backend: Backend, container: Any, job: JobRecord, secrets: list[str],
          status: Callable[[str], None]) -> bool:
    """Collect one exited container; False if another process is already collecting it."""
    import tempfile

    from dtrun.engine.collect import declared_from_labels, finish_job
    from dtrun.engine.logs import LogSink
    from dtrun.masking import Masker
    from dtrun.providers import devenv

    if not backend.claim(container):  # only one reconciling process wins the container
        return False
    from dtrun.engine.steps import STEPS_LEFT_LABEL, WORKSPACE_VOLUME

    exit_info = backend.wait(container)
    logs = store.job_path(job.id, "logs.txt")
    with tempfile.NamedTemporaryFile(prefix="dtrun-log-", suffix=".txt") as log:
        if WORKSPACE_VOLUME in container.labels and store.exists(logs):
            log.write(store.read_bytes(logs))  # a flow job's earlier steps, stored as each one ended
        sink = LogSink(log, lambda chunk: None, Masker([*secrets, *app_token(job.id)]))
        for frame in backend.logs(container, follow=False, timestamps=True):
            sink.frame(frame)
        sink.close()
        store.upload(log.name, logs)
    devenv.forget(job.id)
    if job.state in (State.SUBMITTED, State.BUILDING):
        job.move(State.RUNNING)
    finish_job(store, backend, container, job, exit_info, declared_from_labels(container.labels), status=status)

    left = int(container.labels.get(STEPS_LEFT_LABEL) or 0)
    if left:  # a flow job whose client died before its last step: its remaining steps never ran
        if job.state == State.DONE:
            job.move(State.FAILED, f"the dtrun process running this flow ended before its last {left} "
                     f"step{'s' if left > 1 else ''} ran")
            store.save_job(job)
        backend.remove_volume(container.labels.get(WORKSPACE_VOLUME, ""))
    return True


def _release_holds(backend: Backend, run: str, store: str) -> None:
    """A settled run's hold on its code tree (its client died before releasing it): no longer kept
    from a prune (`dtrun.code.retention`)."""
    from dtrun.backends.base import LABEL, code_volumes

    codes = code_volumes(backend)
    if codes is not None:
        codes.release_holds({f"{LABEL}.run": run, f"{LABEL}.store": store})
