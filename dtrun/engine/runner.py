"""The engine: runs a plan's jobs on a backend, records every state, saves every output.

One run: its record and one record per job are written first (SUBMITTED), then the scheduler starts
each job once the jobs it needs have succeeded (independent ones in parallel; a GPU job only when GPUs
are free for it, `Backend.admission`). A job is one container (`container_job.py`: a workflow job) or
several steps in order on one workspace (`steps.py`: a flow job, whose dialect says what each step runs).
Workflows and flows compile to the same `Plan` and run here alike. Stopping goes through one mechanism for
Ctrl+C and `dtrun stop` alike: a request in the store, then SIGTERM (stop) or SIGKILL (abort); the job's
thread sees the request when the container exits. Containers are removed only after their outputs
are exported, so a run whose client is killed can be finished by any later command (reconcile.py).
A job that is a cache hit takes nothing of the host: only a job that has to run takes a `slot` and has
the run's resources checked (`check_host`), so a run whose jobs are all cached never connects to it.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import field
from typing import Any

from dtrun.backends.base import LABEL, Backend
from dtrun.config import Settings
from dtrun.engine import control
from dtrun.engine.collect import finish_run
from dtrun.engine.events import RESULT, RUN, STATUS, Event, Listener, ignore
from dtrun.engine.scheduler import Admission, Scheduler, parallel_limit
from dtrun.names import new_run_name
from dtrun.plan import Job, Plan
from dtrun.snapshot import Snapshot
from dtrun.store import ArtifactRecord, JobRecord, RunRecord, State, Store
from dtrun.structs import struct

STOP_GRACE = 10
EXIT_INTERRUPTED = 130


@struct
class RunResult:
    run: RunRecord
    jobs: list[JobRecord] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return self.run.exit_code or 0


def store_label(store: Store) -> str:
    from dtrun.store.store import store_label as label_of

    return label_of(store.url)


@struct
class _RunState:
    run: RunRecord
    records: dict[str, JobRecord]
    no_cache: bool = False
    restore: dict[str, list[ArtifactRecord]] = field(default_factory=dict)
    earlier_logs: dict[str, bytes] = field(default_factory=dict)
    containers: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the outputs of the multi-step jobs that ran (`jobs.<id>.outputs` for the jobs that need them)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: containers and workspaces being removed after their jobs' results were recorded (collect.finish_job)
    clean_ups: list[threading.Thread] = field(default_factory=list)


class Engine:
    def __init__(self, settings: Settings, store: Store, backend: Backend, snapshot: Snapshot,
                 listener: Listener = ignore, *, secrets: dict[str, str] | None = None,
                 admit: Admission | None = None) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.snapshot = snapshot
        self.emit = listener
        self.secrets = secrets or {}
        self.masker_values = list(self.secrets.values())
        self.admit = admit
        #: the snapshot's packed tar is one file object, shared by the jobs that copy it in
        self.code_lock = threading.Lock()
        from dtrun.engine.code import RunCode

        #: the run's code: hashed once, sent once into the backend's code volume, one view per job
        self.code = RunCode(self)
        #: the jobs whose resources the host has not been asked about yet (`check_host`)
        self._unchecked: list[Job] = []
        self._check_error: BaseException | None = None
        self._check_lock = threading.Lock()
        #: how many of the run's jobs use the host at once (`slot`), sized when the first one needs it
        self._slots: threading.Semaphore | None = None
        self._slots_lock = threading.Lock()
        #: whether the current thread holds a slot: a job asks again where its parts share one path
        self._holding = threading.local()
        self._jobs = 1

    def labels(self, **extra: str) -> dict[str, str]:
        return {LABEL: "1", f"{LABEL}.repo": self.store.repo, f"{LABEL}.store": store_label(self.store), **extra}

    def signal(self, container: Any, action: str) -> None:
        """Stop: SIGTERM and a grace period (in the background, so a second Ctrl+C can abort). Abort: SIGKILL."""
        if action == control.ABORT:
            self.backend.kill(container)
        else:
            threading.Thread(target=self.backend.stop, args=(container, STOP_GRACE), daemon=True).start()

    def check_host(self) -> None:
        """Refuse any job of the run that the host can never run (`Backend.check_resources`), before the
        first job that needs the host is built or started. Asked once per run, by the first job that is
        not a cache hit (the others wait for the answer), so a run whose jobs are all cached never
        reaches the host; the refusal fails that job and with it the run, and nothing was started."""
        with self._check_lock:
            jobs, self._unchecked = self._unchecked, []
            if self._check_error is None:
                try:
                    for job in jobs:
                        self.backend.check_resources(job.workflow, job.resources, _nodes(job))
                except BaseException as exc:
                    self._check_error = exc
            if self._check_error is not None:
                raise self._check_error

    def check_plan(self, plan: Plan) -> None:
        """Whether the host answers and could run every job of `plan`, asked now (a detached run's
        parent, before it returns) rather than by the first job that needs the host."""
        self.backend.check_reachable()
        self._unchecked = list(plan.jobs)
        self.check_host()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A place among the run's jobs that use the host at once, held while one does: the
        `max_parallel` setting, else one per CPU of the host. The host is asked for its CPUs only here,
        when the first job needs it and when jobs can overlap, so cache hits take no place and ask nothing."""
        if getattr(self._holding, "slot", False):  # this thread's job holds its place already
            yield
            return
        with self._slots_lock:
            if self._slots is None:
                cpus = self._host_cpus() if self._jobs > 1 else 1
                self._slots = threading.Semaphore(parallel_limit(self.settings.max_parallel, cpus))
        with self._slots:
            self._holding.slot = True
            try:
                yield
            finally:
                self._holding.slot = False

    # -- a whole run -----------------------------------------------------------------------------------
    def submit(self, plan: Plan, *, variables: dict[str, str] | None = None, args: list[str] | None = None,
               tag: str | None = None, name: str | None = None) -> RunRecord:
        """The run's record, written before anything runs (a detached run's parent writes it)."""
        run = RunRecord(name=name or new_run_name(self.store.run_names()), repo=self.store.repo,
                        workflow=plan.target, variables=variables or {}, args=args or [], tag=tag,
                        commit=self.snapshot.commit, branch=self.snapshot.branch, dirty=self.snapshot.dirty,
                        host=self.backend.host, user=_user())
        self.store.save_run(run)
        control.mark_active(self.store, run.name)
        return run

    def run(self, plan: Plan, *, variables: dict[str, str] | None = None, args: list[str] | None = None,
            tag: str | None = None, no_cache: bool = False, submitted: RunRecord | None = None,
            name: str | None = None) -> RunResult:
        self._unchecked = list(plan.jobs)  # checked once a job needs the host (`check_host`)
        if any(job.resources.gpu_count for job in plan.jobs):
            self.check_host()  # GPU jobs are admitted by asking the host (`admission`) before anything else
        run = submitted or self.submit(plan, variables=variables, args=args, tag=tag, name=name)
        control.claim(self.store, run.name)
        records = {job.workflow: self._new_job(run, job) for job in plan.jobs}
        run.jobs = [r.id for r in records.values()]
        run.state = State.RUNNING
        self.store.save_run(run)
        self.emit(Event(RUN, f"run {run.name}: {' -> '.join(records)}"
                        f"  (commit {(run.commit or 'none')[:8]}{', dirty' if run.dirty else ''})"))
        state = _RunState(run, records, no_cache=no_cache)
        self._drive(plan.jobs, state)
        if run.tag and run.state == State.DONE:
            from dtrun.store.tags import tag_run

            self.emit(Event(STATUS, f"tagged run {run.name} as {tag_run(self.store, run.tag, run.name).name}"))
        return RunResult(run, list(records.values()))

    def resume(self, plan: Plan, run: RunRecord, record: JobRecord) -> RunResult:
        """Run a stopped job again in its run, with its saved outputs put back where they were."""
        job = plan.job(record.workflow)
        self._unchecked = [job]
        self.check_host()  # a resumed job always runs
        control.clear(self.store, record.id)
        control.mark_active(self.store, run.name)
        control.claim(self.store, run.name)
        run.state, run.finished_at, run.exit_code = State.RUNNING, None, None
        self.store.save_run(run)
        saved, record.artifacts, record.exit_code, record.message = record.artifacts, [], None, None
        record.finished_at = None
        record.move(State.SUBMITTED)
        self.store.save_job(record)
        records = {r.workflow: r for r in (self.store.load_job(j) for j in run.jobs)}
        records[job.workflow] = record
        state = _RunState(run, records, no_cache=True, restore={job.workflow: saved})
        logs = self.store.job_path(record.id, "logs.txt")
        if self.store.exists(logs):  # the resumed job's log continues the stopped one's
            state.earlier_logs[job.workflow] = self.store.read_bytes(logs)
        self._drive([job], state, done={name: records[name].state.succeeded for name in job.needs if name in records})
        return RunResult(run, [record])

    def _drive(self, jobs: list[Job], state: _RunState, done: dict[str, bool] | None = None) -> None:
        # every ready job gets a thread (a cache hit is over in moments); the jobs that use the host wait
        # for a `slot`, whose size is asked of the host only then, and only when jobs can overlap
        parallel_limit(self.settings.max_parallel, 1)  # a bad setting fails now, before any job starts
        self._jobs = len(jobs)
        scheduler = Scheduler(jobs, lambda job: self._job(job, state), lambda job, why: self._skip(job, state, why),
                              limit=len(jobs), admit=self.admit or self.backend.admission(state.run.name),
                              done=done)
        pressed = [0]  # Ctrl+C presses, counted by the handler; acted on here, between two polls
        handled = 0
        try:
            with _counting_interrupts(pressed):
                while True:
                    try:
                        finished = scheduler.poll(0.2)
                    except KeyboardInterrupt:  # not the main thread, or another handler was kept
                        pressed[0] += 1
                        finished = False
                    while handled < pressed[0]:
                        handled += 1
                        self._interrupt(state, control.ABORT if handled > 1 else control.STOP)
                    if finished:
                        break
        finally:
            closing = self.code.close()  # the run's hold on its code tree goes, a prune it started is handed over
            jobs_all = [self.store.load_job(job_id) for job_id in state.run.jobs]
            if all(j.state.finished for j in jobs_all):
                finish_run(self.store, state.run, jobs_all)
            else:
                self.store.save_run(state.run)
            for thread in state.clean_ups:  # the run returns with nothing of its jobs left on the host
                thread.join()
            closing.join()
        if scheduler.errors:
            raise scheduler.errors[0]

    def _host_cpus(self) -> int | None:
        return None if self.settings.max_parallel else self.backend.host_cpus()

    def _interrupt(self, state: _RunState, action: str) -> None:
        """Ctrl+C: the same request `dtrun stop` makes, for every unfinished job of the run."""
        if action == control.STOP:
            self.emit(Event(STATUS, f"stopping (SIGTERM, {STOP_GRACE}s grace; Ctrl+C again to abort)"))
        else:
            self.emit(Event(STATUS, "aborting (outputs will not be saved)"))
        with state.lock:
            for record in state.records.values():
                if not record.state.finished:
                    control.request(self.store, record.id, action)
                if record.id in state.containers:  # running: its thread has not begun collecting it
                    record.move(State.ABORTING if action == control.ABORT else State.STOPPING)
                    self.store.save_job(record)
            containers = list(state.containers.values())
        for container in containers:
            self.signal(container, action)

    def _new_job(self, run: RunRecord, job: Job) -> JobRecord:
        record = JobRecord(id=uuid.uuid4().hex[:12], run=run.name, workflow=job.workflow, provider=job.provider,
                           host=self.backend.host, needs=job.needs, deps=[str(d) for d in job.inputs],
                           declared_artifacts=[a.path for a in job.artifacts])
        record.move(State.SUBMITTED)
        self.store.save_job(record)
        return record

    def _skip(self, job: Job, state: _RunState, why: str) -> None:
        record = state.records[job.workflow]
        upstream = [state.records[n].state for n in job.needs if n in state.records]
        halted = next((s for s in (State.ABORTED, State.STOPPED) if s in upstream), None)
        if job.program is not None:  # a flow job after a failed or skipped one: skipped, as flows say
            record.move(halted or State.SKIPPED, why)
            self.emit(Event(STATUS, why, job=job.workflow, step=""))
        else:
            record.move(halted or State.FAILED, why)
        self.store.save_job(record)

    # -- one job ----------------------------------------------------------------------------------------
    def _job(self, job: Job, state: _RunState) -> bool:
        from dtrun.errors import DtrunError

        record = state.records[job.workflow]
        try:
            from dtrun.backends.base import AgentBackend

            if job.program is not None:
                from dtrun.engine.steps import run_program

                with self.slot():
                    self.check_host()
                    run_program(self, job, record, state)
            elif isinstance(self.backend, AgentBackend):  # the job runs dtrun's agent (Slurm, Kubernetes)
                from dtrun.engine.agent_job import AgentJob

                AgentJob(self).run(job, record, state)  # takes its slot and checks the host as below
            else:  # a cache hit needs no slot and no host: it takes them once it knows (container_job.py)
                from dtrun.engine.container_job import ContainerJob

                ContainerJob(self).run(job, record, state)
        except BaseException as exc:
            if not record.state.finished:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                record.move(State.FAILED, message)
                self.store.save_job(record)
            if job.program is not None and isinstance(exc, DtrunError):  # a flow goes on with its other jobs
                self.emit(Event(RESULT, f"failed ({record.message})", job=job.workflow, step="",
                                state=record.state.value))
                return False
            raise
        return record.state.succeeded



def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER")


def wait_finished(store: Store, job_ids: list[str], timeout: float) -> list[JobRecord]:
    """Poll the store until the jobs are finished (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = [store.load_job(j) for j in job_ids]
        if all(j.state.finished for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.3)


def _nodes(job: Job) -> int:
    """How many nodes the job runs on (a multi-node torchrun's; one otherwise)."""
    return job.torchrun.nodes if job.torchrun is not None else 1


@contextmanager
def _counting_interrupts(pressed: list[int]) -> Iterator[None]:
    """While a run is driven, Ctrl+C (SIGINT) is counted, not raised.

    Python raises KeyboardInterrupt in the main thread wherever it happens to be: inside the scheduler's
    wait, that can be between a condition's lock being released and taken back, which breaks the lock
    ("release unlocked lock"): the run then ended with a traceback instead of stopping or aborting its
    jobs. A handler that only counts cannot land badly; the loop acts on the count at its next poll
    (0.2 s). Only the main thread can set a handler, and only a Python-level default one is replaced
    (a caller's own handler, or SIGINT ignored, stays as it was)."""
    import signal

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def count(signum: int, frame: Any) -> None:
        pressed[0] += 1

    signal.signal(signal.SIGINT, count)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
