"""Managing runs after they started, for any of them (workflow or flow, attached or not): finding a run or
a job by the name a user typed, picking the runs to show, stopping, reading logs, checking a resume.

The API's `Session` calls these; the CLI renders what they return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from dtrun.engine import control
from dtrun.errors import DtrunError, NotFound
from dtrun.store import JobRecord, RunRecord, State, Store

if TYPE_CHECKING:
    from dtrun.backends.base import Backend


def find(store: Store, name: str) -> tuple[RunRecord | None, list[JobRecord]]:
    """A run name or a job id (or a unique prefix of one) -> (the run, if a run was named; its jobs)."""
    if store.exists(store.run_path(name)):
        run = store.load_run(name)
        return run, [store.load_job(j) for j in run.jobs]
    if store.exists(store.job_path(name, "job.json")):
        return None, [store.load_job(name)]
    matches = [j for j in store.listdir(store.repo_path("jobs")) if j.startswith(name)]
    if len(name) >= 4 and len(matches) == 1:
        return None, [store.load_job(matches[0])]
    raise NotFound(f"no run or job named '{name}'" + (" (the prefix is ambiguous)" if len(matches) > 1 else ""),
                   hint="`dtrun status --last 10` lists recent runs and their job ids")

def select_jobs(store: Store, name: str) -> list[JobRecord]:
    """A run name, a job id or a tag -> the jobs whose artifacts it stands for."""
    from dtrun.errors import NotFound

    if store.exists(store.run_path(name)):
        return [store.load_job(j) for j in store.load_run(name).jobs]
    if store.exists(store.job_path(name, "job.json")):
        return [store.load_job(name)]
    if "/" not in name and store.exists(store.tag_path(name)):
        return [store.load_job(j) for j in store.load_tag(name).jobs]
    raise NotFound(f"no run, job or tag named '{name}'",
                   hint="`dtrun status` lists runs and job ids, `dtrun tags` lists tags")


def pick_runs(store: Store, last: int | None) -> list[RunRecord]:
    from dtrun.engine.control import active_runs
    from dtrun.errors import NotFound
    from dtrun.store.failures import CorruptRecord

    def load(names: list[str]) -> list[RunRecord]:
        out = []
        for name in names:
            try:
                out.append(store.load_run(name))
            except NotFound:
                continue
            except CorruptRecord as exc:
                store.skip(exc)
        return out

    if last is None:
        active = load(active_runs(store))
        if active:
            return sorted(active, key=lambda r: r.submitted_at, reverse=True)
        candidates = load(recent_run_names(store, 5))
        done = sorted(candidates, key=lambda r: r.finished_at or r.submitted_at, reverse=True)
        return done[:1]
    runs = load(recent_run_names(store, last + 10))
    return sorted(runs, key=lambda r: r.submitted_at, reverse=True)[:last]


def recent_run_names(store: Store, count: int) -> list[str]:
    """The names of the `count` most recently written run files (one listing, no file read)."""
    written = store.modified(store.repo_path("runs"))
    names = sorted((n for n in written if n.endswith(".json")), key=written.__getitem__, reverse=True)
    return [n[:-5] for n in names[:count]]


def resumable(record: JobRecord) -> bool:
    """Stopped by the user, or cut short by its host (the daemon restarted under it): either way its
    outputs were saved and its program did not fail on its own."""
    from dtrun.errors import DaemonRestarted

    return record.state == State.STOPPED or (
        record.state == State.FAILED and (record.message or "").startswith(DaemonRestarted.REASON))


def check_resumable(store: Store, name: str, run: RunRecord | None,
                    jobs: list[JobRecord]) -> tuple[RunRecord, JobRecord]:
    """Only a job that was stopped (or whose daemon restarted under it), and that no other job depends on,
    can be resumed. A run name stands for its one such job."""
    if run is not None:
        candidates = [j for j in jobs if resumable(j)]
        if len(candidates) != 1:
            which = "none of its jobs" if not candidates else f"{len(candidates)} of its jobs"
            raise DtrunError(f"'{name}' is a run, and {which} can be resumed; resume takes a job id",
                             hint=f"`dtrun status --last 5` shows the job ids of {name}")
        jobs = candidates
    record = jobs[0]
    if not resumable(record):
        raise DtrunError(f"job {record.id} ({record.workflow}) is {record.state.value}; only a stopped job can "
                         "be resumed", hint="stop a running job with `dtrun stop JOB` (not -a: an aborted job "
                         "saved no outputs to resume from)")
    run = store.load_run(record.run)
    if record.provider == "flow":
        raise DtrunError(f"job {record.id} is a flow job; flows are run again, not resumed",
                         hint=f"dtrun flow run {run.variables.get('flow_file', 'FLOW')}")
    others = [store.load_job(j) for j in run.jobs if j != record.id]
    dependents = [j for j in others if record.workflow in j.needs]
    if dependents:
        raise DtrunError(f"job {record.id} ({record.workflow}) cannot be resumed: "
                         f"{', '.join(f'{j.workflow} ({j.id})' for j in dependents)} depend"
                         f"{'s' if len(dependents) == 1 else ''} on it",
                         hint=f"run the workflow again instead: dtrun run {run.workflow}")
    return run, record


def stop(store: Store, backend: Backend, target: str, jobs: list[JobRecord], *, abort: bool,
         secrets: list[str], say: Callable[[str], None]) -> list[JobRecord]:
    """The request goes to the store (the process running the job sees it when the container exits),
    then the container gets SIGTERM with a grace period, or SIGKILL for an abort. If no process runs the
    job any more, the reconcile that follows finishes it. Returns once the jobs are settled."""
    from dtrun.backends.base import LABEL
    from dtrun.engine.reconcile import reconcile
    from dtrun.engine.runner import STOP_GRACE, store_label, wait_finished

    live = [j for j in jobs if not j.state.finished]
    if not live:
        states = ", ".join(f"{j.workflow} {j.state.value}" for j in jobs)
        raise DtrunError(f"nothing to stop: {target} has finished ({states})",
                         hint="`dtrun status` shows what is still running")
    action = control.ABORT if abort else control.STOP
    for job in live:
        control.request(store, job.id, action)
    say(f"{'aborting' if abort else 'stopping'} {', '.join(f'{j.workflow} ({j.id})' for j in live)}")
    containers = {c.labels.get(f"{LABEL}.job"): c for c in backend.find({f"{LABEL}.store": store_label(store)})}
    for job in live:
        container = containers.get(job.id)
        if container is None:
            continue
        if abort:
            backend.kill(container)
        else:
            backend.stop(container, STOP_GRACE)
    reconcile(store, lambda: backend, lambda: secrets, status=say)
    return wait_finished(store, [j.id for j in live], timeout=STOP_GRACE + 120)


def job_logs(store: Store, backend: Callable[[], Backend], job: JobRecord, secrets: list[str], *,
             since: float | None, follow: bool) -> Iterator[bytes]:
    """One job's masked output: live from its container(s) while it runs (a flow job has one per step),
    then what the store has that was not shown yet."""
    from dtrun.engine.logs import split_frame, stamp_seconds, stored_lines
    from dtrun.engine.reconcile import app_token
    from dtrun.masking import Masker

    shown: set[str] = set()
    after = since
    while True:
        while follow and not job.state.finished and (not job.container or job.container in shown):
            time.sleep(0.3)  # submitted or building, or between two steps: no new container yet
            job = store.load_job(job.id)
        if job.state.finished or not job.container or job.container in shown:
            break
        shown.add(job.container)
        container = backend().get(job.container)
        if container is None:
            break
        masker = Masker([*secrets, *app_token(job.id)])  # a dev environment's token too, where it is known
        try:
            for frame in backend().logs(container, follow=follow, since=after, timestamps=True):
                stamp, text = split_frame(frame)
                if stamp is not None:
                    after = stamp_seconds(stamp)
                yield masker.feed(text)
        except NotFound:
            pass
        yield masker.flush()
        if not follow:
            return
        job = store.load_job(job.id)
    if shown:  # what ran after the last line shown (a fast step), once the store has it
        job = wait_finished_one(store, job.id)
        if after is not None:
            after = after + 1e-6
    try:
        handle = store.open(store.job_path(job.output_id, "logs.txt"), "rb")
    except FileNotFoundError:
        return
    with handle:
        for _, text in stored_lines(handle, after):
            yield text


def wait_finished_one(store: Store, job_id: str) -> JobRecord:
    from dtrun.engine.runner import wait_finished

    return wait_finished(store, [job_id], timeout=30)[0]
